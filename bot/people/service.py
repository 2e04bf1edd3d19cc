"""People: CSV import, Telegram invitations (deep links) and linking."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import texts
from bot.clock import Clock
from bot.common import Sender, Waker, alert_admins, audit, enqueue
from bot.config import Config
from bot.domain import AWAITING, DeliveryState, Invite, Person
from bot.forms.versions import FormService
from bot.people.importing import ImportResult, ImportRow, import_rows, parse_csv
from bot.ports import OnLinked, UnitOfWorkFactory

log = logging.getLogger(__name__)

# A return still awaiting the person: a block makes it unreachable (not an answered one).


@dataclass(frozen=True)
class InviteLink:
    """A personal deep link for one person."""

    person: Person
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Invitations:
    """What ``invites`` issued, and who was skipped because they are already linked (a link for
    them would move their account to whoever uses it: that needs ``relink``)."""

    links: list[InviteLink]
    skipped: list[Person]
    #: People left out of a run for everyone because the link they were sent earlier is still
    #: unused and unexpired (it keeps working; ``reissue`` replaces it).
    kept: list[Person] = field(default_factory=list)


@dataclass
class LinkResult:
    """Outcome of ``/start <token>``."""

    person: Person | None
    message: str = ""
    sent_returns: list[str] = field(default_factory=list)


def hash_token(token: str) -> str:
    """Invitation tokens are stored only as hashes."""
    return hashlib.sha256(token.encode()).hexdigest()


class PeopleService:
    """Who may use the bot."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        on_linked: OnLinked,
        wake: Waker,
    ) -> None:
        self.config = config
        self.wake = wake
        self.uow_factory = uow_factory
        self.clock = clock
        self.forms = forms
        self.on_linked = on_linked  # the open returns meant for them (the campaign service)

    # ----------------------------------------------------------------- import

    def parse_csv(self, text: str, source: str) -> list[ImportRow]:
        """Validate a people CSV completely; raise with every problem found."""
        return parse_csv(text, source, self.config.partnership.wards)

    async def import_csv(self, text: str, *, source: str, actor: str) -> ImportResult:
        """Create or update people from CSV (keyed by email); all or nothing.

        One query reads everyone already stored; the new and the changed are then written in
        bulk, so the time grows with the file, not with its square. Every problem names its
        line only: never a name or an email (they are personal data, and an error message ends
        up in terminals and logs)."""
        rows = self.parse_csv(text, source)
        now = self.clock.now()
        async with self.uow_factory() as uow:
            result = await import_rows(uow, rows, source=source, actor=actor, now=now)
            await uow.commit()
        return result

    async def set_active(self, email: str, active: bool, *, actor: str) -> Person | None:
        """Mark a person as having left (a councillor not re-elected, a leader who stepped
        down) or as back again; None for an unknown email.

        An inactive person gets no forms, reminders, invitations or summaries, and the bot
        answers them as it answers a stranger. ``updated_at`` records when they left: after
        ``privacy.personal_data_months`` the retention tick anonymises them. A people import
        that lists them makes them active again."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await uow.people.by_email(email.strip().lower())
            if person is None or person.id is None:
                return None
            if person.active != active:
                person.active = active
                person.updated_at = now
                action = "people.reactivate" if active else "people.deactivate"
                await audit(uow, now, actor, action, f"person:{person.id}")
                await uow.commit()
            return person

    async def everyone(self) -> Sequence[Person]:
        """Everyone, by name."""
        async with self.uow_factory() as uow:
            return await uow.people.all()

    async def export_list(self, *, actor: str) -> Sequence[Person]:
        """Everyone, by name, to leave the system (``people list``): audited as
        ``people.list`` with the count, as every export is."""
        async with self.uow_factory() as uow:
            people = await uow.people.all()
            await audit(uow, self.clock.now(), actor, "people.list", "", people=len(people))
            await uow.commit()
        return people

    # ----------------------------------------------------------------- invitations

    async def issue_invites(self, *, actor: str, email: str | None = None) -> list[InviteLink]:
        """Fresh single-use links for everyone not yet linked (or one person by email, unless
        already linked); see :meth:`invite`."""
        return (await self.invite(actor=actor, email=email)).links

    async def invite(
        self,
        *,
        actor: str,
        email: str | None = None,
        relink: bool = False,
        reissue: bool = False,
    ) -> Invitations:
        """Fresh single-use links for everyone not yet linked, or for one person by email.

        A run for everyone leaves out people whose earlier link is still unused and unexpired
        (it was sent to them and keeps working; re-running must not cancel links already
        emailed out) unless ``reissue``. A link issued for one person by email replaces their
        earlier one. Whenever a new link is issued, earlier unused links of the same person
        stop working: only the newest is valid. A
        person already linked is skipped: whoever used a new link would take over their
        account, their reports and their future forms. Only ``relink`` (one person, by email)
        issues one; using it moves the account and tells the old chat (see
        :meth:`link`). Since linking revokes every other unused link, an unused link of
        a linked person can only be one issued with ``relink``.
        """
        if relink and email is None:
            raise ValueError("relink moves one person's account: name them by email")
        now = self.clock.now()
        expires = now + timedelta(days=self.config.invites.expires_days)
        username = self.config.telegram.bot_username
        if username is None:  # the CLI fills it in from getMe; a link to no bot helps no one
            raise ValueError("telegram.bot_username is not known: invitation links need it")
        links: list[InviteLink] = []
        async with self.uow_factory() as uow:
            if email is not None:
                person = await uow.people.by_email(email)
                if person is None:
                    raise LookupError(f"no person with email {email!r}")
                people: Sequence[Person] = [person]
            else:
                people = [p for p in await uow.people.all() if p.active]
            skipped = [p for p in people if p.linked and not relink]
            kept: list[Person] = []
            for person in people:
                if person in skipped:
                    continue
                assert person.id is not None
                unused = await uow.invites.unused_for(person.id)
                if email is None and not reissue and any(i.expires_at > now for i in unused):
                    kept.append(person)
                    continue
                for old in unused:
                    old.revoked_at = now
                token = secrets.token_urlsafe(24)  # 32 URL-safe characters; deep links allow 64
                await uow.invites.add(
                    Invite(
                        person_id=person.id,
                        token_hash=hash_token(token),
                        created_at=now,
                        expires_at=expires,
                    )
                )
                url = f"https://t.me/{username}?start={token}"
                links.append(InviteLink(person, url, expires))
            # Ids only in the audit log, never the email.
            subject = f"person:{people[0].id}" if email is not None else "all-unlinked"
            action = "invites.relink" if relink and links and links[0].person.linked else None
            await audit(
                uow,
                now,
                actor,
                action or "invites.issue",
                subject,
                count=len(links),
                skipped=len(skipped),
                kept=len(kept),
            )
            await uow.commit()
        return Invitations(links, skipped, kept)

    async def bot_blocked(self, sender: Sender, blocked: bool) -> None:
        """The platform says this person blocked the bot (Telegram's ``my_chat_member``, new
        status ``kicked``) or unblocked it (``member``). Blocked: marked so, their open returns
        unreachable ("blocked the bot"), admins told, all before any send fails. Unblocked:
        reachable again, and offered any open return meant for them."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await uow.people.by_address(sender.platform, str(sender.user_id))
            held = person.address_on(sender.platform) if person is not None else None
            if person is None or person.id is None or held is None:
                return  # not someone we know: nothing about them is stored
            if held.chat != str(sender.chat_id):
                return  # not the chat they connected
            if sender.update_id is not None and await uow.inbound.seen(
                sender.platform, sender.update_id, now
            ):
                return
            subject = f"person:{person.id}"
            if blocked and person.blocked_at is None:
                person.blocked_at = now
                await audit(
                    uow, now, sender.platform, "person.blocked", subject, how="my_chat_member"
                )
                open_ids = {c.id for c in await uow.campaigns.open()}
                for delivery in await uow.deliveries.for_person(person.id):
                    if delivery.id is not None and delivery.campaign_id in open_ids:
                        await uow.deliveries.set_status(
                            delivery.id,
                            DeliveryState.UNREACHABLE,
                            only_from=list(AWAITING),
                            detail="blocked the bot",
                        )
                wards = ", ".join(person.wards) or "no ward"
                await alert_admins(
                    uow,
                    now,
                    f"{person.name} ({person.role}, {wards}) has blocked the bot on "
                    f"{sender.platform.title()}: they are marked unreachable until they unblock "
                    "it or write to the bot again. Please contact them another way.",
                    key=f"{subject}:blocked:{now:%Y%m%dT%H%M%S}",
                    platforms=self.config.platforms,
                )
            elif not blocked and person.blocked_at is not None:
                person.blocked_at = None
                await audit(uow, now, sender.platform, "person.unblocked", subject)
                await self.on_linked(uow, person, now)
            await uow.commit()
        self.wake()

    async def link(self, sender: Sender, token: str) -> LinkResult:
        """``/start <token>``: connect the sender's chat to the invited person."""
        contact = self.config.partnership.contact
        now = self.clock.now()
        async with self.uow_factory() as uow:
            invite = await uow.invites.by_hash(hash_token(token.strip()))
            if invite is None:
                log.info("refused an unknown invitation token")
                return LinkResult(
                    None, f"That invitation link is not valid. Please ask {contact} for a new one."
                )
            if invite.used_at is not None:
                person = await uow.people.get(invite.person_id)
                held = person.address_on(sender.platform) if person is not None else None
                if held is not None and held.address == str(sender.user_id):
                    return LinkResult(
                        None, "You are already connected. Send /help to see what you can do."
                    )
                return LinkResult(
                    None,
                    f"That invitation link has already been used. If you need "
                    f"to connect a new account, ask {contact} for a new link.",
                )
            if invite.revoked_at is not None:
                return LinkResult(
                    None,
                    f"That invitation link has been replaced by a newer one. "
                    f"Please use the latest link, or ask {contact}.",
                )
            if invite.expires_at <= now:
                return LinkResult(
                    None,
                    f"That invitation link expired on "
                    f"{invite.expires_at.astimezone(self.config.partnership.tz):%d %B %Y}. "
                    f"Please ask {contact} for a new one.",
                )
            other = await uow.people.by_address(sender.platform, str(sender.user_id))
            if other is not None and other.id != invite.person_id:
                return LinkResult(
                    None,
                    f"This {sender.platform.title()} account is already connected to someone "
                    f"else. Please contact {contact}.",
                )
            person = await uow.people.get(invite.person_id)
            if person is None or not person.active:
                return LinkResult(
                    None, f"That invitation is no longer valid. Please contact {contact}."
                )
            # An unused link of a linked person was issued with --relink (linking revokes all
            # others): the account moves here, and the old chat is told on its platform.
            held = person.address_on(sender.platform)
            moved_from = held.chat if held is not None else None
            if moved_from is not None and moved_from != str(sender.chat_id):
                await audit(
                    uow,
                    now,
                    f"person:{person.id}",
                    f"{sender.platform}.relink",
                    f"person:{person.id}",
                )
                await enqueue(
                    uow,
                    channel=sender.platform,
                    recipient=moved_from,
                    message=texts.account_moved(
                        self.config.partnership.name, self.config.partnership.contact
                    ),
                    key=f"relink:{invite.id}",
                    now=now,
                )
            chat_holder = await uow.people.by_chat(sender.platform, str(sender.chat_id))
            taken = chat_holder.address_on(sender.platform) if chat_holder else None
            if chat_holder is not None and chat_holder.id != person.id and taken is not None:
                taken.chat = None
                await uow.people.flush()  # the chat is unique per platform: free it first
            person.set_address(sender.platform, str(sender.user_id), str(sender.chat_id), now)
            person.linked_at = now
            person.blocked_at = None
            person.updated_at = now
            invite.used_at = now
            for old in await uow.invites.unused_for(invite.person_id):
                if old.id != invite.id:
                    old.revoked_at = now
            form = await self.forms.current(uow)
            await audit(
                uow, now, f"person:{person.id}", f"{sender.platform}.link", f"person:{person.id}"
            )
            await enqueue(
                uow,
                channel=sender.platform,
                recipient=sender.chat_id,
                message=texts.linked_welcome(
                    person.name, self.config.partnership.name, form.definition
                ),
                key=f"link:{invite.id}",
                now=now,
            )
            sent = await self.on_linked(uow, person, now)
            await uow.commit()
        return LinkResult(person, "linked", sent)
