"""Campaigns: open the return (monthly or extra), send it, remind, close, and report status.

Every operation is an idempotent step over database rows, so a scheduler tick may run twice, late
or after a crash: a campaign opens once (unique key), a person gets a form once (outbox key), a
reminder round is sent once (``reminders_done``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import texts
from bot.clock import Clock
from bot.common import Waker, audit, enqueue
from bot.config import Config
from bot.domain import (
    REPORTER_ROLES,
    Campaign,
    Delivery,
    DeliveryState,
    OutboxMessage,
    Person,
    Role,
)
from bot.forms.versions import FormService
from bot.messages import OutgoingMessage
from bot.ports import AlreadyExists, UnitOfWork, UnitOfWorkFactory
from bot.returns.campaign_status import CampaignStatus, campaign_status
from bot.returns.channels import fallback_reach, form_platforms, form_reach
from bot.returns.periods import CampaignError, Schedule, period_of, schedule_for, validate_period
from bot.returns.web import WebLinks

log = logging.getLogger(__name__)

REMINDABLE = frozenset({DeliveryState.SENT, DeliveryState.UNCERTAIN})


@dataclass
class TickReport:
    """What one scheduler tick did."""

    opened: list[str] = field(default_factory=list)
    reminded: dict[str, int] = field(default_factory=dict)
    followed_up: dict[str, int] = field(default_factory=dict)  # uncertain forms sent again
    emailed_instead: dict[str, int] = field(default_factory=dict)  # [email] fallback
    closed: list[str] = field(default_factory=list)


class CampaignService:
    """Opens, chases and closes returns."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        wake: Waker,
        web_links: WebLinks | None,
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        self.forms = forms
        self.wake = wake
        self.tz = config.partnership.tz
        # The web form's links; None when it is off (no TENSIONBOT_WEB_SECRET), and then forms do
        # not go by email (see :attr:`platforms`): a form email needs a link to open.
        self.web_links = web_links

    # ----------------------------------------------------------------- opening

    async def open_monthly(
        self, period: str | None = None, *, actor: str = "scheduler", force: bool = False
    ) -> tuple[Campaign, bool]:
        """Open the monthly return for a period (default: now's). Returns (campaign, created).

        The scheduler only opens inside the schedule's window; an admin may open it early or
        late with ``force`` (``tensionbot campaign open``), still at most once per period.
        """
        now = self.clock.now()
        period = validate_period(period or period_of(now, self.config))
        sched = schedule_for(period, self.config)
        if not force and not sched.opens_at <= now < sched.closes_at:
            raise CampaignError(f"the {period} return is not due now")
        closes_at = sched.closes_at
        if closes_at <= now:
            raise CampaignError(
                f"the {period} return would already be closed "
                f"({texts.local_time(closes_at, self.tz)}); open an extra return instead"
            )
        key = f"monthly:{period}"
        try:
            return await self._open_monthly_once(key, period, sched, now, actor, force), True
        except AlreadyExists:
            # Another process (the scheduler, or an admin's command) opened it at the same time.
            async with self.uow_factory() as uow:
                existing = await uow.campaigns.by_key(key)
            assert existing is not None
            return existing, False

    async def _open_monthly_once(
        self, key: str, period: str, sched: Schedule, now: datetime, actor: str, force: bool
    ) -> Campaign:
        async with self.uow_factory() as uow:
            existing = await uow.campaigns.by_key(key)
            if existing is not None:
                raise AlreadyExists(key)
            campaign = await self._create(
                uow,
                key=key,
                kind="monthly",
                period=period,
                opens_at=min(now, sched.opens_at) if not force else now,
                closes_at=sched.closes_at,
                reminders=[r for r in sched.reminders if r > now],
                wards=[],
                roles=[],
                actor=actor,
                now=now,
            )
            await uow.commit()
        self.wake()
        return campaign

    async def open_extra(
        self,
        *,
        closes_at: datetime,
        wards: Sequence[str] = (),
        roles: Sequence[str] = (),
        reminders: Sequence[datetime] = (),
        actor: str,
    ) -> Campaign:
        """An extra return (crisis cadence) for chosen wards and/or roles, with its own deadline."""
        now = self.clock.now()
        if closes_at <= now + timedelta(minutes=30):
            raise CampaignError("an extra return must stay open for at least 30 minutes")
        if closes_at > now + timedelta(days=31):
            raise CampaignError("an extra return can stay open for at most 31 days")
        known = {w.casefold(): w for w in self.config.partnership.wards}
        bad = [w for w in wards if w.casefold() not in known]
        if bad:
            raise CampaignError(f"unknown ward(s): {', '.join(bad)}")
        valid_roles = {r.value for r in Role}
        bad = [r for r in roles if r not in valid_roles]
        if bad:
            raise CampaignError(f"unknown role(s): {', '.join(bad)}")
        for r in reminders:
            if not now < r < closes_at:
                raise CampaignError("reminders must fall between now and the closing time")
        period = period_of(now, self.config)
        async with self.uow_factory() as uow:
            n = len(await uow.campaigns.for_period(period)) + 1
            campaign = await self._create(
                uow,
                key=f"extra:{now:%Y-%m-%dT%H%M%S}:{n}",
                kind="extra",
                period=period,
                opens_at=now,
                closes_at=closes_at,
                reminders=sorted(reminders),
                wards=[known[w.casefold()] for w in wards],
                roles=list(roles),
                actor=actor,
                now=now,
            )
            await uow.commit()
        self.wake()
        return campaign

    async def open_occurrence(
        self,
        uow: UnitOfWork,
        *,
        key: str,
        closes_at: datetime,
        wards: Sequence[str],
        roles: Sequence[str],
        actor: str,
        now: datetime,
    ) -> Campaign:
        """One occurrence of a crisis cadence, in the caller's unit of work (bot/returns/crisis.py
        checks the key first; the unique key stops a second one)."""
        return await self._create(
            uow,
            key=key,
            kind="extra",
            period=period_of(now, self.config),
            opens_at=now,
            closes_at=closes_at,
            reminders=[],
            wards=list(wards),
            roles=list(roles),
            actor=actor,
            now=now,
        )

    async def _create(
        self,
        uow: UnitOfWork,
        *,
        key: str,
        kind: str,
        period: str,
        opens_at: datetime,
        closes_at: datetime,
        reminders: list[datetime],
        wards: list[str],
        roles: list[str],
        actor: str,
        now: datetime,
    ) -> Campaign:
        form = await self.forms.current(uow)
        title = texts.period_title(kind, period, self.config.partnership.short_name)
        if kind == "extra" and wards:
            title += f": {', '.join(wards)}"
        campaign = Campaign(
            key=key,
            kind=kind,
            period=period,
            title=title,
            form_version_id=form.id,
            opens_at=opens_at,
            closes_at=closes_at,
            reminder_times=[r.isoformat() for r in reminders],
            target_wards=wards,
            target_roles=roles,
            created_by=actor,
            created_at=now,
        )
        await uow.campaigns.add(campaign)
        targets = [p for p in await uow.people.all() if self._targeted(campaign, p)]
        await self._deliver_all(uow, campaign, targets, now)
        await audit(
            uow,
            now,
            actor,
            "campaign.open",
            key,
            form_version=form.definition.version,
            recipients=len(targets),
            wards=wards,
            roles=roles,
        )
        log.info("opened %s for %d people", key, len(targets))
        return campaign

    @staticmethod
    def _targeted(campaign: Campaign, person: Person) -> bool:
        if not person.active:
            return False
        roles = set(campaign.target_roles) or {r.value for r in REPORTER_ROLES}
        if person.role not in roles:
            return False
        return not campaign.target_wards or bool(set(campaign.target_wards) & set(person.wards))

    async def _deliver_all(
        self, uow: UnitOfWork, campaign: Campaign, people: Sequence[Person], now: datetime
    ) -> None:
        """Everyone's delivery, and their form in the outbox, in bulk: a multi-row INSERT for
        the deliveries and one for the forms, not a round of statements a person (10,000
        reporters took 16 s)."""
        for start in range(0, len(people), 1000):  # a chunk at a time: bounded memory
            await self._deliver_chunk(uow, campaign, people[start : start + 1000], now)

    async def _deliver_chunk(
        self, uow: UnitOfWork, campaign: Campaign, people: Sequence[Person], now: datetime
    ) -> None:
        assert campaign.id is not None
        planned: list[tuple[Person, Delivery, tuple[str, str] | None]] = []
        for person in people:
            assert person.id is not None
            delivery = Delivery(campaign_id=campaign.id, person_id=person.id)
            reach = self._reach(person)
            if reach is None:
                why = "blocked the bot" if person.blocked_at else "never linked"
                reach = self._fallback(person)
                if reach is None:
                    delivery.move_to(DeliveryState.UNREACHABLE)
                    delivery.detail = why
                else:  # [email] fallback: the form once by email, no reminders
                    delivery.fallback = why
            planned.append((person, delivery, reach))
        await uow.deliveries.add_many([d for _, d, _ in planned])
        rows = [
            await self._form_row(uow, campaign, person, delivery, now, reach=reach)
            for person, delivery, reach in planned
            if delivery.status == DeliveryState.QUEUED and reach is not None
        ]
        await uow.outbox.add_many(rows)

    async def _queue_form(
        self,
        uow: UnitOfWork,
        campaign: Campaign,
        person: Person,
        delivery: Delivery,
        now: datetime,
        reminder_round: int = 0,
        again: bool = False,
        reach: tuple[str, str] | None = None,
    ) -> bool:
        reach = reach or self._reach(person)
        if reach is None:
            return False
        row = await self._form_row(
            uow, campaign, person, delivery, now, reminder_round, again, reach=reach
        )
        return await uow.outbox.add(row)

    async def _form_row(
        self,
        uow: UnitOfWork,
        campaign: Campaign,
        person: Person,
        delivery: Delivery,
        now: datetime,
        reminder_round: int = 0,
        again: bool = False,
        *,
        reach: tuple[str, str],
    ) -> OutboxMessage:
        """The outbox row of a form (or a reminder) for one person, not yet queued."""
        form = await self.forms.definition(uow, campaign.form_version_id)
        reminder = reminder_round > 0
        channel, recipient = reach
        # A fallback email has a key of its own: the form on their platform may be in the outbox.
        kind = f"reminder:{reminder_round}" if reminder else "form"
        if delivery.fallback is not None and not reminder:
            kind = "email-fallback"
        message = texts.form_message(campaign, form, self.tz, reminder=reminder)
        return OutboxMessage(
            channel=channel,
            recipient=str(recipient),
            payload=self._for_channel(channel, message, person, campaign).model_dump(mode="json"),
            idempotency_key=f"campaign:{campaign.id}:{kind}:{person.id}"
            + (f":again:{now:%Y%m%dT%H%M%S}" if again else ""),
            created_at=now,
            next_attempt_at=None,
            purpose="reminder" if reminder else "form",
            priority=1,
            delivery_id=delivery.id,
        )

    def _reach(self, person: Person) -> tuple[str, str] | None:
        """Where the form and reminders go (:func:`bot.returns.channels.form_reach`)."""
        return form_reach(person, self._platforms())

    def _platforms(self) -> frozenset[str]:
        return form_platforms(self.config, web_form=self.web_links is not None)

    def _fallback(self, person: Person) -> tuple[str, str] | None:
        """``email.fallback``: the form by email instead, once (or None when it is off)."""
        return fallback_reach(person, self._platforms(), fallback=self.config.email.fallback)

    def _for_channel(
        self, channel: str, message: OutgoingMessage, person: Person, campaign: Campaign
    ) -> OutgoingMessage:
        """By email, a form carries the person's link to the web form instead of buttons."""
        if channel != "email" or self.web_links is None:
            return message
        assert person.id is not None
        return self.web_links.with_link(message, person.id, campaign, self.clock.now())

    async def deliver_open_returns(
        self, uow: UnitOfWork, person: Person, now: datetime
    ) -> list[str]:
        """A person who has just linked gets any open return meant for them."""
        sent: list[str] = []
        for campaign in await uow.campaigns.open():
            assert campaign.id is not None and person.id is not None
            if campaign.closes_at <= now or not self._targeted(campaign, person):
                continue
            delivery = await uow.deliveries.get_for(campaign.id, person.id)
            again = delivery is not None
            if delivery is None:
                delivery = Delivery(campaign_id=campaign.id, person_id=person.id)
                await uow.deliveries.add(delivery)
            elif delivery.status != DeliveryState.UNREACHABLE:
                continue
            else:
                delivery.move_to(DeliveryState.QUEUED)
                delivery.detail = ""
            # A person who was unreachable (blocked the bot after the form went out) gets the
            # form again: under a new key, the first one being taken.
            await self._queue_form(uow, campaign, person, delivery, now, again=again)
            sent.append(campaign.key)
        return sent

    # ----------------------------------------------------------------- the tick

    async def tick(self) -> TickReport:
        """Open the current return if due, send due reminders, close what is due. Idempotent."""
        report = TickReport()
        now = self.clock.now()
        period = period_of(now, self.config)
        sched = schedule_for(period, self.config)
        if sched.opens_at <= now < sched.closes_at:
            # Also the catch-up: if the bot was down at the opening time it opens once now.
            campaign, created = await self.open_monthly(period)
            if created:
                report.opened.append(campaign.key)
        async with self.uow_factory() as uow:
            for campaign in await uow.campaigns.open():
                if now >= campaign.closes_at:
                    campaign.status = "closed"
                    campaign.closed_at = now
                    await audit(uow, now, "scheduler", "campaign.close", campaign.key)
                    report.closed.append(campaign.key)
                    continue
                due = sum(1 for r in campaign.reminder_times if datetime.fromisoformat(r) <= now)
                if due > campaign.reminders_done:
                    # One round however many were missed while the bot was down.
                    count = await self._remind(uow, campaign, due, now)
                    campaign.reminders_done = due
                    report.reminded[campaign.key] = count
                if followed := await self._follow_up_uncertain(uow, campaign, now):
                    report.followed_up[campaign.key] = followed
                if emailed := await self._fall_back_to_email(uow, campaign, now):
                    report.emailed_instead[campaign.key] = emailed
            await uow.commit()
        if report.reminded or report.opened or report.followed_up or report.emailed_instead:
            self.wake()
        return report

    async def _fall_back_to_email(self, uow: UnitOfWork, campaign: Campaign, now: datetime) -> int:
        """``email.fallback``: a form that could not be delivered on the person's own platform
        (they blocked the bot, found out when it was sent) goes by email instead, once."""
        if "email" not in self._platforms() or not self.config.email.fallback:
            return 0
        assert campaign.id is not None
        count = 0
        for delivery in await uow.deliveries.for_campaign(campaign.id):
            if delivery.status != DeliveryState.UNREACHABLE or delivery.fallback:
                continue
            person = await uow.people.get(delivery.person_id)
            if person is None or not self._targeted(campaign, person):
                continue
            own = self._reach(person)
            if own is not None and own[0] == "email":
                continue  # email is their own channel, and it failed
            reach = self._fallback(person)
            if reach is None:
                continue
            delivery.fallback = delivery.detail or "unreachable"
            delivery.move_to(DeliveryState.QUEUED)
            delivery.detail = ""
            if await self._queue_form(uow, campaign, person, delivery, now, reach=reach):
                count += 1
        if count:
            await audit(
                uow, now, "scheduler", "campaign.email_fallback", campaign.key, recipients=count
            )
        return count

    async def _follow_up_uncertain(self, uow: UnitOfWork, campaign: Campaign, now: datetime) -> int:
        """Forms whose delivery is uncertain (the process stopped mid-send, or the platform
        did not answer the send) are not re-sent at
        once (at most once); ``outbox.uncertain_followup_hours`` after they were queued they
        are sent once more, worded so a duplicate is harmless. Once only (``followed_up_at``),
        and never to someone who has answered (their delivery is no longer uncertain)."""
        assert campaign.id is not None
        hours = self.config.outbox.uncertain_followup_hours
        due = await uow.deliveries.uncertain_to_follow_up(campaign.id, now - timedelta(hours=hours))
        if not due:
            return 0
        form = await self.forms.definition(uow, campaign.form_version_id)
        count = 0
        for delivery in due:
            delivery.followed_up_at = now  # once, whether or not it can be sent
            person = await uow.people.get(delivery.person_id)
            reach = self._reach(person) if person is not None else None
            if person is None or reach is None:
                continue
            channel, recipient = reach
            if await enqueue(
                uow,
                channel=channel,
                recipient=recipient,
                message=self._for_channel(
                    channel,
                    texts.form_message(campaign, form, self.tz, follow_up=True),
                    person,
                    campaign,
                ),
                key=f"campaign:{campaign.id}:follow-up:{person.id}",
                now=now,
                purpose="form",
                priority=1,
                delivery_id=delivery.id,
            ):
                count += 1
        await audit(uow, now, "scheduler", "campaign.follow_up", campaign.key, recipients=count)
        return count

    async def _remind(self, uow: UnitOfWork, campaign: Campaign, round_: int, now: datetime) -> int:
        assert campaign.id is not None
        count = 0
        for delivery in await uow.deliveries.for_campaign(campaign.id):
            if delivery.status not in REMINDABLE:
                continue  # answered, unreachable, or the form itself not out yet
            person = await uow.people.get(delivery.person_id)
            if person is None or self._reach(person) is None:
                continue
            if await self._queue_form(uow, campaign, person, delivery, now, reminder_round=round_):
                count += 1
        await audit(
            uow, now, "scheduler", "campaign.remind", campaign.key, round=round_, recipients=count
        )
        return count

    # ----------------------------------------------------------------- status

    async def resolve(self, period: str | None = None, key: str | None = None) -> Campaign:
        """Find a campaign by key, or the monthly one of a period, or the latest."""
        async with self.uow_factory() as uow:
            if key:
                campaign = await uow.campaigns.by_key(key)
            elif period:
                campaign = await uow.campaigns.by_key(f"monthly:{validate_period(period)}")
            else:
                campaign = await uow.campaigns.latest()
        if campaign is None:
            raise CampaignError(f"no campaign found for {key or period or 'any period'}")
        return campaign

    async def status(self, campaign_id: int, *, actor: str) -> CampaignStatus:
        """Per-person outcome of one campaign."""
        return await campaign_status(self.uow_factory, self.clock.now(), campaign_id, actor=actor)
