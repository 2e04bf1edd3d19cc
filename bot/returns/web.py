"""The return on the web, for people without a chat app: personal links, sessions, the form.

Guarantees, whatever the browser sends:

- A link is signed (itsdangerous), names one person and one return, and is refused after the
  return closes. It carries no state change: opening it (a person, or a mail filter's link
  scanner) only yields a :class:`WebSession`, which the adapter keeps in a short-lived cookie.
- A session lasts ``web.session_minutes`` and never past the return's close; every POST must
  carry the session's CSRF token (a signature of the session's nonce).
- Changes go through the same path as Slack and Telegram (:mod:`bot.returns.reports`): one
  tension or a nil return, each POST carrying a one-time key recorded with its effects, so a
  replayed POST changes nothing.
- Refusals are :class:`WebRefused` with a plain-English page title and text; nothing changed.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from itsdangerous import BadData, Signer, URLSafeSerializer

from bot.actions.service import ActionService
from bot.clock import Clock
from bot.common import Waker, audit, local_time
from bot.config import Config
from bot.delivery.seen import SeenRequests, request_key
from bot.domain import Campaign, DeliveryState, Person
from bot.forms import FormDefinition
from bot.forms.versions import FormService
from bot.messages import MessageBuilder, OutgoingMessage, Span
from bot.ports import UnitOfWork, UnitOfWorkFactory
from bot.returns.reports import create_reports, record_nil, validate_answers

log = logging.getLogger(__name__)

#: How long a POST's one-time key is remembered: longer than any session.
ONCE_LIFETIME = timedelta(hours=6)
#: The "campaign" of a link to report a tension at any time (the web's /report).
ADHOC = 0


@dataclass(frozen=True)
class WebSession:
    """Who is answering which return, until when (what the session cookie carries)."""

    person_id: int
    campaign_id: int
    expires: datetime
    nonce: str


class _Nonced(Protocol):
    """A session (of the form, or of a button): what a CSRF token is bound to."""

    @property
    def nonce(self) -> str: ...


class WebRefused(Exception):
    """The request is refused and nothing changed; ``title`` and ``text`` are the page's."""

    def __init__(self, kind: str, title: str, text: str, status: int = 403) -> None:
        super().__init__(kind)
        self.kind, self.title, self.text, self.status = kind, title, text, status


class WebSigner:
    """Signs and checks links, session cookies and CSRF tokens with one secret, each with its
    own salt so that none can stand in for another."""

    def __init__(self, secret: str) -> None:
        self._link = URLSafeSerializer(secret, salt="tensionbot.web.link.v1")
        self._session = URLSafeSerializer(secret, salt="tensionbot.web.session.v1")
        self._csrf = Signer(secret, salt="tensionbot.web.csrf.v1")
        # A message's button by email (bot.returns.web_buttons): its link and its session.
        self._button = URLSafeSerializer(secret, salt="tensionbot.web.button.v1")
        self._button_session = URLSafeSerializer(secret, salt="tensionbot.web.button-session.v1")

    def link_token(self, person_id: int, campaign_id: int, expires: datetime) -> str:
        """A token naming the person and the return, refused after ``expires``."""
        return str(self._link.dumps([person_id, campaign_id, int(expires.timestamp())]))

    def read_link(self, token: str) -> tuple[int, int, datetime] | None:
        """(person, campaign, expiry) of a token this server signed; None if tampered."""
        return _triple(self._link, token)

    def session_value(self, session: WebSession) -> str:
        """The cookie's value."""
        return str(
            self._session.dumps(
                [
                    session.person_id,
                    session.campaign_id,
                    int(session.expires.timestamp()),
                    session.nonce,
                ]
            )
        )

    def read_session(self, value: str | None, now: datetime) -> WebSession | None:
        """The session a cookie carries, or None (absent, tampered or expired)."""
        if not value:
            return None
        try:
            data: Any = self._session.loads(value)
            person_id, campaign_id, expires, nonce = data
            session = WebSession(
                int(person_id), int(campaign_id), datetime.fromtimestamp(int(expires), UTC), nonce
            )
        except (BadData, ValueError, TypeError):
            return None
        return session if now < session.expires and isinstance(nonce, str) else None

    def button_token(self, person_id: int, data: str, expires: datetime) -> str:
        """A token naming the person and one button's payload, refused after ``expires``."""
        return str(self._button.dumps([person_id, data, int(expires.timestamp())]))

    def read_button(self, token: str) -> tuple[int, str, datetime] | None:
        """(person, button payload, expiry) of a button token this server signed; None if
        tampered."""
        return _with_data(self._button, token)

    def button_session_value(self, person_id: int, data: str, expires: datetime, nonce: str) -> str:
        """The value of a button session's cookie."""
        return str(self._button_session.dumps([person_id, data, int(expires.timestamp()), nonce]))

    def read_button_session(
        self, value: str | None, now: datetime
    ) -> tuple[int, str, datetime, str] | None:
        """(person, payload, expiry, nonce) of a button session's cookie, or None (absent,
        tampered or expired)."""
        if not value:
            return None
        try:
            data: Any = self._button_session.loads(value)
            person_id, payload, expires, nonce = data
            until = datetime.fromtimestamp(int(expires), UTC)
        except (BadData, ValueError, TypeError):
            return None
        if not (isinstance(payload, str) and isinstance(nonce, str)) or now >= until:
            return None
        return int(person_id), payload, until, nonce

    def csrf(self, session: _Nonced) -> str:
        """The CSRF token every POST of this session must carry."""
        return self._csrf.get_signature(session.nonce.encode()).decode()

    def csrf_ok(self, session: _Nonced, token: str) -> bool:
        """True if ``token`` is this session's CSRF token (compared in constant time)."""
        return hmac.compare_digest(self.csrf(session).encode(), token.encode())


def _triple(serializer: URLSafeSerializer, token: str) -> tuple[int, int, datetime] | None:
    try:
        data: Any = serializer.loads(token)
        a, b, expires = data
        return int(a), int(b), datetime.fromtimestamp(int(expires), UTC)
    except (BadData, ValueError, TypeError):
        return None


def _with_data(serializer: URLSafeSerializer, token: str) -> tuple[int, str, datetime] | None:
    try:
        data: Any = serializer.loads(token)
        person_id, payload, expires = data
        if not isinstance(payload, str):
            return None
        return int(person_id), payload, datetime.fromtimestamp(int(expires), UTC)
    except (BadData, ValueError, TypeError):
        return None


class WebLinks:
    """Makes personal links to the web form (for emails, and the CLI)."""

    def __init__(self, config: Config, signer: WebSigner) -> None:
        self.config, self.signer = config, signer

    def link(self, person_id: int, campaign: Campaign) -> str:
        """The person's personal link to ``campaign``'s form, valid until the return closes."""
        assert campaign.id is not None
        token = self.signer.link_token(person_id, campaign.id, campaign.closes_at)
        return f"{self.config.web.base_url}{self.config.web.path}/t/{token}"

    def report_link(self, person_id: int, now: datetime) -> str:
        """The person's link to report a tension at any time (the web's ``/report``), valid for
        ``web.report_link_days``; every form email carries a fresh one."""
        expires = now + timedelta(days=self.config.web.report_link_days)
        token = self.signer.link_token(person_id, ADHOC, expires)
        return f"{self.config.web.base_url}{self.config.web.path}/t/{token}"

    def with_link(
        self, message: OutgoingMessage, person_id: int, campaign: Campaign, now: datetime
    ) -> OutgoingMessage:
        """A form message for email: its words without the chat buttons, then the personal
        link to the web form."""
        tz = self.config.partnership.tz
        b = MessageBuilder()
        for line in message.lines:
            b.line(*line) if line else b.blank()
        b.blank().line(
            Span(
                text="Answer on the web (no app needed), or send a nil return with one click:",
                style="bold",
            )
        )
        b.line(Span(text=self.link(person_id, campaign)))
        b.line(
            "This link is personal to you: please do not forward it. It works until "
            f"{local_time(campaign.closes_at, tz)}."
        )
        b.blank().line(
            Span(text="Something urgent, or after the return has closed?", style="bold"),
            " Report a tension at any time here:",
        )
        b.line(Span(text=self.report_link(person_id, now)))
        return b.build()


@dataclass(frozen=True)
class WebPage:
    """What the form page shows for a session."""

    state: str  # "form" | "responded" | "nil"
    person_name: str
    campaign_title: str
    closes: str  # local time
    form: FormDefinition
    wards: list[str]
    references: list[str]
    adhoc: bool = False  # a report at any time, not a return


EXPIRED = (
    "This link has expired",
    "The link you followed is no longer valid: the return it was for has closed. Nothing was "
    "changed. If something is happening in your community, contact the partnership.",
)
INVALID = (
    "This link is not valid",
    "The link may have been copied wrongly or changed. Nothing was changed. Please open the "
    "link from your email again, or contact the partnership for a new one.",
)


class WebReturnService:
    """The web form's core: exchanging links for sessions, the page, submit and nil."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        actions: ActionService,
        wake: Waker,
        seen: SeenRequests,
        signer: WebSigner,
    ) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock
        self.forms, self.actions, self.wake, self.seen = forms, actions, wake, seen
        self.signer = signer
        self.tz = config.partnership.tz

    def link(self, person_id: int, campaign: Campaign) -> str:
        """The person's personal link to ``campaign``'s form, valid until the return closes."""
        return WebLinks(self.config, self.signer).link(person_id, campaign)

    async def link_for(self, email: str, campaign_key: str, *, actor: str) -> str:
        """The personal link of the person with ``email`` to the return with ``campaign_key``.
        Whoever holds it answers as that person, so issuing it is audited (``web.link``, the
        person's id), as an invitation is."""
        async with self.uow_factory() as uow:
            person = await uow.people.by_email(email)
            campaign = await uow.campaigns.by_key(campaign_key)
            if person is None or person.id is None or campaign is None:
                raise LookupError("no such person or return")
            await audit(
                uow,
                self.clock.now(),
                actor,
                "web.link",
                f"person:{person.id}",
                campaign=campaign.key,
            )
            await uow.commit()
        return self.link(person.id, campaign)

    async def open_link(self, token: str, current: WebSession | None) -> WebSession:
        """Exchange a link's token for a new session. Changes nothing (a GET, and mail filters
        open links before people do). ``current`` is the browser's session, if any: a link of
        someone else is refused rather than silently switching who is answering."""
        now = self.clock.now()
        read = self.signer.read_link(token)
        if read is None:
            raise WebRefused("tampered", *INVALID, status=400)
        person_id, campaign_id, expires = read
        if now >= expires:
            raise WebRefused("expired", *EXPIRED, status=410)
        if current is not None and current.person_id != person_id:
            raise WebRefused(
                "someone_else",
                "This link is for someone else",
                "This browser is already signed in to the form for another person, so the link "
                "was not used and nothing was changed. If the link was forwarded to you, please "
                "ask the partnership for your own.",
            )
        async with self.uow_factory() as uow:
            if campaign_id == ADHOC:
                await self._person(uow, person_id)
            else:
                await self._checked(uow, person_id, campaign_id, now)
        until = min(now + timedelta(minutes=self.config.web.session_minutes), expires)
        return WebSession(person_id, campaign_id, until, secrets.token_urlsafe(16))

    async def _person(self, uow: UnitOfWork, person_id: int) -> Person:
        person = await uow.people.get(person_id)
        if person is None or not person.active:
            raise WebRefused("not_sent", *INVALID)
        return person

    async def _checked(
        self, uow: UnitOfWork, person_id: int, campaign_id: int, now: datetime
    ) -> tuple[Person, Campaign]:
        person = await uow.people.get(person_id)
        campaign = await uow.campaigns.get(campaign_id)
        delivery = await uow.deliveries.get_for(campaign_id, person_id) if campaign else None
        if person is None or not person.active or campaign is None or delivery is None:
            raise WebRefused("not_sent", *INVALID)
        if campaign.status != "open" or now >= campaign.closes_at:
            raise WebRefused(
                "closed",
                "This return has closed",
                f"The {campaign.title} closed on {local_time(campaign.closes_at, self.tz)}. "
                "Nothing was changed. If something is happening in your community, contact "
                f"{self.config.partnership.contact}.",
                status=410,
            )
        return person, campaign

    async def page(self, session: WebSession, *, sent: bool = False) -> WebPage:
        """The form, or what the person already sent for this return (for a report at any
        time: the form, or with ``sent`` their latest reference)."""
        now = self.clock.now()
        if session.campaign_id == ADHOC:
            return await self._adhoc_page(session, sent)
        async with self.uow_factory() as uow:
            person, campaign = await self._checked(uow, session.person_id, session.campaign_id, now)
            form = await self.forms.definition(uow, campaign.form_version_id)
            delivery = await uow.deliveries.get_for(session.campaign_id, session.person_id)
            assert delivery is not None
            references = [
                r.reference
                for r in await uow.reports.for_campaign(session.campaign_id)
                if r.person_id == session.person_id
            ]
        state = {
            DeliveryState.RESPONDED: "responded",
            DeliveryState.NIL: "nil",
        }.get(delivery.status, "form")
        return WebPage(
            state,
            person.name,
            campaign.title,
            local_time(campaign.closes_at, self.tz),
            form,
            list(self.config.partnership.wards),
            references,
        )

    async def _adhoc_page(self, session: WebSession, sent: bool) -> WebPage:
        async with self.uow_factory() as uow:
            person = await self._person(uow, session.person_id)
            form = (await self.forms.current(uow)).definition
            latest = await uow.reports.for_person(session.person_id, limit=1) if sent else []
        return WebPage(
            "sent" if latest else "form",
            person.name,
            "Report a tension",
            "",
            form,
            list(self.config.partnership.wards),
            [r.reference for r in latest],
            adhoc=True,
        )

    def check(
        self, form: FormDefinition, raw: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Validate the whole form (for the review step): (answers, errors by question id)."""
        return validate_answers(
            form, raw, self.config.partnership.wards, self.config.form.max_text_length
        )

    async def submit(self, session: WebSession, raw: dict[str, str], once: str) -> dict[str, str]:
        """Submit one tension; errors by question id (empty when submitted). ``once`` is the
        form page's one-time key: the same POST again is refused and makes no second report."""
        now = self.clock.now()
        if session.campaign_id == ADHOC:
            return await self._submit_adhoc(session, raw, once)
        async with self.uow_factory() as uow:
            _, campaign = await self._checked(uow, session.person_id, session.campaign_id, now)
            delivery = await uow.deliveries.get_for(session.campaign_id, session.person_id)
            assert delivery is not None
            if delivery.status == DeliveryState.RESPONDED:
                raise _already_sent()
            form = await self.forms.definition(uow, campaign.form_version_id)
            answers, errors = self.check(form, raw)
            if errors:
                return errors
            await self._once(uow, session, once)
            await create_reports(
                uow,
                person_id=session.person_id,
                source="monthly",
                campaign_id=campaign.id,
                form_version_id=campaign.form_version_id,
                tensions=[answers],
                now=now,
                tz=self.tz,
                actions=self.actions,
            )
            await uow.commit()
        self.wake()
        return {}

    async def _submit_adhoc(
        self, session: WebSession, raw: dict[str, str], once: str
    ) -> dict[str, str]:
        now = self.clock.now()
        async with self.uow_factory() as uow:
            await self._person(uow, session.person_id)
            current = await self.forms.current(uow)
            answers, errors = self.check(current.definition, raw)
            if errors:
                return errors
            await self._once(uow, session, once)
            await create_reports(
                uow,
                person_id=session.person_id,
                source="adhoc",
                campaign_id=None,
                form_version_id=current.id,
                tensions=[answers],
                now=now,
                tz=self.tz,
                actions=self.actions,
                urgent_answers_open=self.config.schedule.urgent_report_answers_return,
            )
            await uow.commit()
        self.wake()
        return {}

    async def nil(self, session: WebSession, once: str) -> None:
        """A one-click nil return."""
        now = self.clock.now()
        if session.campaign_id == ADHOC:
            raise WebRefused(
                "not_a_return",
                "There is no return to answer here",
                "This page is for reporting a tension at any time; a nil return answers a "
                "monthly return. Nothing was changed.",
                status=400,
            )
        async with self.uow_factory() as uow:
            await self._checked(uow, session.person_id, session.campaign_id, now)
            await self._once(uow, session, once)
            refused = await record_nil(
                uow, person_id=session.person_id, campaign_id=session.campaign_id, now=now
            )
            if refused is not None:
                raise _already_sent()
            await uow.commit()

    async def _once(self, uow: UnitOfWork, session: WebSession, once: str) -> None:
        key = request_key("web-post", str(session.person_id), session.nonce, once)
        if not once or not await self.seen.record(uow, key, ONCE_LIFETIME):
            log.info("refused a repeated web form post")
            raise WebRefused(
                "replayed",
                "This form was already sent",
                "This page was sent before, so it was not sent again and nothing was changed. "
                "Open the form to see what was recorded.",
                status=409,
            )


def _already_sent() -> WebRefused:
    return WebRefused(
        "answered",
        "You have already answered this return",
        "You have already sent reports for this return, so nothing was changed. Thank you. "
        "Open the form to see your references.",
        status=409,
    )
