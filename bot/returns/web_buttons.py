"""A message's buttons by email: each becomes a personal link to a small page on the bot's web
server, where the press is the chat button's own core call.

Guarantees, whatever the browser sends:

- A link is signed (the web form's :class:`~bot.returns.web.WebSigner`, a salt of its own),
  names one person and one button's payload, and expires ``web.button_link_days`` after the
  email was sent. Opening it changes nothing (mail filters' link scanners open every link): it
  is exchanged for a short button session (a cookie) and a confirmation page.
- The page's POST needs the session's CSRF token and carries a one-time key recorded in the same
  transaction as the answer, so a replayed POST changes nothing and says so.
- The answer is the chat button's call: :meth:`ActionService.reporter_answer` for the reporter's
  four-weekly check, :meth:`PactService.mark_cancelled` for a chair's "It was cancelled"; what
  the core answers (including "already closed") is what the page shows.
- Per kind: those two work on the web, and a chair's "Record the meeting" opens the record as
  one form (the Slack modal's fields; :func:`bot.pact.records.record_from_fields`), stored by
  :meth:`PactService.apply_record` with the same checks as chat and Slack, errors shown by field;
  anything else is left out (a form's own buttons never get here: the core gives a form email
  the web form's link instead).
- Someone else's link, an expired or tampered one, or a button that is not the person's: a
  :class:`~bot.returns.web.WebRefused` page, and nothing changed.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.actions.service import ActionService
from bot.buttons import BadPayload, ButtonAction, Kind
from bot.clock import Clock
from bot.common import Waker, local_time
from bot.config import Config
from bot.delivery.seen import SeenRequests, request_key
from bot.domain import MeetingStatus
from bot.messages import OutgoingMessage, Span, bold, link
from bot.pact.base import PactError
from bot.pact.records import REVIEW_OPTIONS, errors_by_field, record_from_fields
from bot.pact.rules import FORMAT_LABELS, MAX_NEW_PRIORITIES, PUBLIC_WARNING
from bot.pact.service import PactService
from bot.ports import UnitOfWork, UnitOfWorkFactory
from bot.returns.web import INVALID, ONCE_LIFETIME, WebRefused, WebSigner

log = logging.getLogger(__name__)

#: The buttons answered on the web page (pressed there; "Record the meeting" opens a form).
ON_THE_WEB = frozenset({Kind.STILL, Kind.SORTED, Kind.PACT_CANCELLED, Kind.PACT_RECORD})
_PRESSED = ON_THE_WEB - {Kind.PACT_RECORD}


@dataclass(frozen=True)
class ButtonSession:
    """Who follows which button's link, until when (what the button session cookie carries)."""

    person_id: int
    data: str  # the button's payload (bot.buttons)
    expires: datetime
    nonce: str


@dataclass(frozen=True)
class Choice:
    """A button on the confirmation page."""

    label: str
    data: str
    chosen: bool  # the one whose link was followed (shown first in weight, not in order)


@dataclass(frozen=True)
class RecordForm:
    """A meeting's record as one form: what it asks (from :class:`RecordContext`), what was
    typed so far and the errors by field (:func:`bot.pact.records.record_from_fields` names)."""

    meeting: str  # "Heath Town PACT meeting, Thu 10 Dec 18:30, at … (in person)"
    max_attendance: int
    partners: list[tuple[int, str]]
    priorities: list[tuple[int, str, str, str]]  # (id, title, owner team's name, report back)
    teams: list[tuple[str, str]]
    slots: int
    reviews: tuple[tuple[str, str], ...]
    warning: str  # what may be published
    values: dict[str, list[str]]
    errors: dict[str, str]

    def value(self, name: str) -> str:
        """What was typed or chosen in field ``name`` ('' when nothing)."""
        return (self.values.get(name) or [""])[0]


@dataclass(frozen=True)
class ButtonPage:
    """The confirmation page: the question and its buttons (none: nothing is left to answer),
    or a meeting's record form."""

    title: str
    text: str
    choices: list[Choice]
    record: RecordForm | None = None


def _record_note(config: Config) -> str:
    return (
        "Recording the meeting is not possible by email here: please record it with the bot "
        "in your chat app (“Record the meeting”), or tell "
        f"{config.partnership.contact} how it went."
    )


def without_web(config: Config, message: OutgoingMessage) -> OutgoingMessage:
    """An email's words when the web is off (no ``TENSIONBOT_WEB_SECRET``): its buttons cannot
    be pressed, so it says plainly how to answer instead."""
    kinds = _kinds(message)
    notes: list[str] = []
    if kinds & _PRESSED:
        labels = ", ".join(
            f"“{b.label}”" for row in message.buttons for b in row if _kind(b.data) in _PRESSED
        )
        notes.append(
            f"This message cannot be answered by email ({labels}): please tell "
            f"{config.partnership.contact}, quoting any reference above."
        )
    if Kind.PACT_RECORD in kinds:
        notes.append(_record_note(config))
    return _rewritten(message, [[Span(text=n)] for n in notes])


def _kind(data: str) -> Kind | None:
    try:
        return ButtonAction.decode(data).kind
    except BadPayload:
        return None


def _kinds(message: OutgoingMessage) -> set[Kind]:
    return {k for row in message.buttons for b in row if (k := _kind(b.data)) is not None}


def _rewritten(message: OutgoingMessage, extra: list[list[Span]]) -> OutgoingMessage:
    """The message's words and files, no buttons, then ``extra`` after a blank line."""
    lines = list(message.lines)
    if extra:
        lines += [[], *extra]
    return OutgoingMessage(lines=lines, attachments=message.attachments)


class WebButtonService:
    """Buttons by email: their personal links, the confirmation page and the press."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        actions: ActionService,
        pact: PactService,
        wake: Waker,
        seen: SeenRequests,
        signer: WebSigner,
    ) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock
        self.actions, self.pact, self.wake, self.seen = actions, pact, wake, seen
        self.signer = signer

    # --- the email -------------------------------------------------------------------------

    def url(self, person_id: int, data: str, expires: datetime) -> str:
        """The personal link to one button of a message."""
        token = self.signer.button_token(person_id, data, expires)
        return f"{self.config.web.base_url}{self.config.web.path}/b/t/{token}"

    async def for_email(self, email: str, message: OutgoingMessage) -> OutgoingMessage:
        """The message for the person with this email address: each button it can answer on
        the web a personal link (labelled as the button), the others said in words."""
        if not message.buttons:
            return message
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await uow.people.by_email(email)
        if person is None or person.id is None or not person.active:
            return without_web(self.config, message)
        expires = now + timedelta(days=self.config.web.button_link_days)
        links: list[list[Span]] = []
        for row in message.buttons:
            for button in row:
                try:
                    kind = ButtonAction.decode(button.data).kind
                except BadPayload:
                    continue
                if kind in ON_THE_WEB:
                    links.append([link(button.label, self.url(person.id, button.data, expires))])
        extra: list[list[Span]] = []
        if links:
            extra += [[bold("Answer on the web (no app needed):")], *links]
            extra.append(
                [
                    Span(
                        text="These links are personal to you: please do not forward them. "
                        f"They work until {local_time(expires, self.config.partnership.tz)}."
                    )
                ]
            )
        return _rewritten(message, extra)

    # --- the page ----------------------------------------------------------------------------

    async def open_link(self, token: str, current: set[int]) -> ButtonSession:
        """Exchange a button's link for a session. Changes nothing. ``current``: the people
        this browser already has a session for (form or button): a link of someone else is
        refused rather than silently switching who answers."""
        now = self.clock.now()
        read = self.signer.read_button(token)
        if read is None:
            raise WebRefused("tampered", *INVALID, status=400)
        person_id, data, expires = read
        if now >= expires:
            raise WebRefused(
                "expired",
                "This link has expired",
                "The link you followed is too old to use, so nothing was changed. The next "
                "message from the partnership will bring a new one; if it cannot wait, contact "
                f"{self.config.partnership.contact}.",
                status=410,
            )
        if current - {person_id}:
            raise WebRefused(
                "someone_else",
                "This link is for someone else",
                "This browser is already signed in for another person, so the link was not "
                "used and nothing was changed. If the link was forwarded to you, it is not "
                "yours to answer.",
            )
        until = min(now + timedelta(minutes=self.config.web.session_minutes), expires)
        session = ButtonSession(person_id, data, until, secrets.token_urlsafe(16))
        async with self.uow_factory() as uow:
            await self._page(uow, session)  # theirs to answer (the person active, the report
            # or meeting theirs): otherwise refused here, before any cookie
        return session

    def session(self, value: str | None) -> ButtonSession | None:
        """The button session a cookie carries, or None (absent, tampered or expired)."""
        read = self.signer.read_button_session(value, self.clock.now())
        return ButtonSession(*read) if read is not None else None

    def session_value(self, session: ButtonSession) -> str:
        """The session's cookie value."""
        return self.signer.button_session_value(
            session.person_id, session.data, session.expires, session.nonce
        )

    async def page(self, session: ButtonSession) -> ButtonPage:
        """The question the button answers, and its buttons. Changes nothing."""
        async with self.uow_factory() as uow:
            return await self._page(uow, session)

    async def _page(self, uow: UnitOfWork, session: ButtonSession) -> ButtonPage:
        person = await uow.people.get(session.person_id)
        if person is None or not person.active:
            raise WebRefused("not_sent", *INVALID)
        button = _decoded(session.data)
        if button.kind in (Kind.STILL, Kind.SORTED):
            return await self._check_page(uow, session, button)
        if button.kind is Kind.PACT_CANCELLED:
            return await self._cancel_page(uow, session, button)
        if button.kind is Kind.PACT_RECORD:
            return await self._record_page(uow, session, button, {}, {})
        raise WebRefused("not_on_the_web", *INVALID)

    async def _record_page(
        self,
        uow: UnitOfWork,
        session: ButtonSession,
        button: ButtonAction,
        values: dict[str, list[str]],
        errors: dict[str, str],
    ) -> ButtonPage:
        meeting = await uow.pact.get_meeting(button.target)
        person = await uow.people.get(session.person_id)
        if meeting is None or person is None or meeting.chair_id != session.person_id:
            log.info("refused a button link for someone else's meeting")
            raise WebRefused("not_theirs", *INVALID)
        try:
            context = await self.pact.context(uow, person, button.target)
        except PactError as exc:  # recorded already, not yet held, neighbourhood gone
            return ButtonPage("Nothing to record", str(exc), [])
        m = context.meeting
        teams = dict(context.teams)
        when = local_time(m.starts_at, self.config.partnership.tz)
        form = RecordForm(
            meeting=f"{context.neighbourhood.name} PACT meeting, {when}, at {m.venue} "
            f"({FORMAT_LABELS.get(m.format, m.format)})",
            max_attendance=self.config.pact.max_attendance,
            partners=context.partners,
            priorities=[
                (p.id, p.title, teams.get(p.owner_team, p.owner_team), p.report_back)
                for p in context.priorities
                if p.id is not None
            ],
            teams=context.teams,
            slots=MAX_NEW_PRIORITIES if context.teams else 0,
            reviews=REVIEW_OPTIONS,
            warning=PUBLIC_WARNING,
            values=values,
            errors=errors,
        )
        return ButtonPage(
            f"Record the {self.pact.hood_name(m.neighbourhood)} PACT meeting",
            "How did it go? Nothing is stored until you press “Record the meeting”.",
            [],
            form,
        )

    async def record(
        self, session: ButtonSession, fields: dict[str, list[str]], once: str
    ) -> tuple[str | None, ButtonPage]:
        """A chair's record of a meeting from the form: (the thanks, the page) when stored,
        once, with the one-time key in the same unit of work; (None, the form again with what
        was typed and the errors by field) when not, storing nothing."""
        button = _decoded(session.data)
        if button.kind is not Kind.PACT_RECORD:
            raise WebRefused("not_offered", *INVALID, status=400)
        record, errors, slots = record_from_fields(fields, self.config.pact.max_attendance)
        async with self.uow_factory() as uow:
            page = await self._record_page(uow, session, button, fields, errors)
            if page.record is None or record is None:
                return None, page  # nothing to record any more, or the form's own errors
            person = await uow.people.get(session.person_id)
            assert person is not None
            context = await self.pact.context(uow, person, button.target)
            await self._once(uow, session, once)
            core = await self.pact.apply_record(uow, person, context, record)
            if core:
                shown = {"public", "new", "partners"}
                shown |= {f"review_{p[0]}" for p in page.record.priorities}
                shown |= {f"priority_{n}" for n in range(1, page.record.slots + 1)}
                errors = errors_by_field(core, slots, shown)
                return None, await self._record_page(uow, session, button, fields, errors)
            await uow.commit()
        self.wake()
        m = context.meeting
        text = (
            f"Recorded: the {self.pact.hood_name(m.neighbourhood)} PACT meeting of "
            f"{local_time(m.starts_at, self.config.partnership.tz)}: {record.public} members "
            f"of the public ({record.new} new), {len(record.partners)} of "
            f"{len(context.partners)} partners, {len(record.new_priorities)} new priorities. "
            "Thank you."
        )
        return text, ButtonPage("Thank you", text, [])

    async def _check_page(
        self, uow: UnitOfWork, session: ButtonSession, button: ButtonAction
    ) -> ButtonPage:
        action = await uow.actions.get(button.target)
        report = await uow.reports.get(action.report_id) if action else None
        if action is None or report is None or report.person_id != session.person_id:
            log.info("refused a button link for someone else's report")
            raise WebRefused("not_theirs", *INVALID)
        ref = report.reference
        if action.closed:
            return ButtonPage(
                f"{ref} is closed",
                f"The team has closed {ref}, so there is nothing to answer and nothing was "
                "changed. If it is a problem again, please report it again.",
                [],
            )
        team = next((t.name for t in self.config.teams if t.key == action.team_key), "The team")
        choices = [
            (label, ButtonAction(kind, button.target).encode())
            for label, kind in (
                ("Still a problem", Kind.STILL),
                ("Sorted now, thanks", Kind.SORTED),
            )
        ]
        return ButtonPage(
            f"Is {ref} still a problem?",
            f"{team} is working on your report ({report.ward}). Please tell us whether it is "
            "still a problem. Nothing is changed until you press a button.",
            [Choice(label, data, data == session.data) for label, data in choices],
        )

    async def _cancel_page(
        self, uow: UnitOfWork, session: ButtonSession, button: ButtonAction
    ) -> ButtonPage:
        meeting = await uow.pact.get_meeting(button.target)
        if meeting is None or meeting.chair_id != session.person_id:
            log.info("refused a button link for someone else's meeting")
            raise WebRefused("not_theirs", *INVALID)
        what = (
            f"the {self.pact.hood_name(meeting.neighbourhood)} PACT meeting of "
            f"{local_time(meeting.starts_at, self.config.partnership.tz)}"
        )
        if meeting.status != MeetingStatus.SCHEDULED.value:
            held = meeting.status == MeetingStatus.RECORDED.value
            return ButtonPage(
                "This meeting is already recorded",
                f"{what[0].upper()}{what[1:]} is already recorded as "
                f"{'held' if held else 'cancelled'}, so nothing was changed.",
                [],
            )
        return ButtonPage(
            f"Was {what} cancelled?",
            "If it did not take place, say so here: its priorities stay open for the next "
            "meeting. Nothing is changed until you press the button. If it did take place, "
            "follow the “Record the meeting” link in the same email instead.",
            [Choice("It was cancelled", session.data, True)],
        )

    # --- the press ---------------------------------------------------------------------------

    async def press(self, session: ButtonSession, data: str, once: str) -> str:
        """Press ``data`` (one of the page's buttons) once: the chat button's core call, in one
        unit of work with the one-time key; what the core answers."""
        now = self.clock.now()
        pressed = _decoded(data) if data in _siblings(session.data) else None
        if pressed is None or pressed.kind not in _PRESSED:
            raise WebRefused("not_offered", *INVALID, status=400)
        async with self.uow_factory() as uow:
            await self._page(uow, session)  # still theirs (and they still active)
            await self._once(uow, session, once)
            if pressed.kind is Kind.PACT_CANCELLED:
                person = await uow.people.get(session.person_id)
                assert person is not None
                try:
                    text = await self.pact.mark_cancelled(uow, person, pressed.target)
                except PactError as exc:
                    raise WebRefused("refused", "Nothing was changed", str(exc), 409) from None
            else:
                text = await self.actions.reporter_answer(
                    uow, session.person_id, pressed.target, pressed.kind is Kind.STILL, now
                )
            await uow.commit()
        self.wake()
        return text

    async def _once(self, uow: UnitOfWork, session: ButtonSession, once: str) -> None:
        key = request_key("web-button", str(session.person_id), session.nonce, once)
        if not once or not await self.seen.record(uow, key, ONCE_LIFETIME):
            log.info("refused a repeated button post")
            raise WebRefused(
                "replayed",
                "Your answer was already recorded",
                "This answer was sent before, so it was not sent again and nothing was changed.",
                status=409,
            )


def _decoded(data: str) -> ButtonAction:
    try:
        return ButtonAction.decode(data)
    except BadPayload:
        raise WebRefused("tampered", *INVALID, status=400) from None


def _siblings(data: str) -> set[str]:
    """The payloads the page of button ``data`` offers (Still a problem and Sorted now go
    together: either answers the same check)."""
    button = _decoded(data)
    if button.kind in (Kind.STILL, Kind.SORTED):
        return {ButtonAction(k, button.target).encode() for k in (Kind.STILL, Kind.SORTED)}
    return {data} if button.kind in ON_THE_WEB else set()
