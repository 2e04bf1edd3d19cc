"""Chairs' recordings of PACT meetings and owner teams' report-backs.

A record (from the Telegram conversation or a modal) is checked by :func:`validate_record` and
stored by :meth:`PactRecords.apply_record` in one unit of work. From a platform, the sender is a
neutral :class:`~bot.people.identity.Who`, turned into a person by the one identity step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.common import audit, clean_text, enqueue, local_time
from bot.config import TEAMS_PLATFORM, NeighbourhoodConfig
from bot.domain import (
    MAX_NOTE,
    MeetingStatus,
    PactMeeting,
    PactPriority,
    Person,
    PriorityStatus,
    Role,
    Someone,
)
from bot.messages import MessageBuilder, bold
from bot.pact.announce import announce_change, announce_record
from bot.pact.base import MAX_TITLE, PactError
from bot.pact.rules import (
    MAX_NEW_PRIORITIES,
)
from bot.pact.updates import PactUpdates
from bot.people.identity import NotInvited, Who, find, identify
from bot.ports import UnitOfWork


@dataclass(frozen=True)
class MeetingRecord:
    """What a chair records after a meeting."""

    public: int
    new: int
    partners: list[int]  # person ids of the invited partners who came
    reviews: list[tuple[int, str, str]]  # (priority id, "closed" | "carried", what was done)
    new_priorities: list[tuple[str, str]]  # (title, owner team key)


@dataclass(frozen=True)
class RecordContext:
    """What a chair needs to record a meeting: its open priorities, the invited partners, the
    teams that can own a priority."""

    meeting: PactMeeting
    neighbourhood: NeighbourhoodConfig
    priorities: list[PactPriority]
    partners: list[tuple[int, str]]  # (person id, name)
    teams: list[tuple[str, str]]  # (key, name)


def parse_count(raw: str, what: str, limit: int) -> int:
    """A head count typed by a person: a whole number from 0 to ``limit``."""
    text = raw.strip().replace(",", "")
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise PactError(f"The number of {what} cannot be negative.")
    if not (text.isascii() and text.isdigit()):  # not "²": int() refuses it
        raise PactError(f"Please give the number of {what} as a whole number, e.g. 14.")
    value = int(text)
    if value > limit:
        raise PactError(
            f"{value:,} {what} is more than this bot accepts ({limit:,}); please check the number."
        )
    return value


#: How a record shown whole (a Slack modal, a web page) answers each open priority.
REVIEW_OPTIONS = (
    ("closed", "Closed: done, or no longer needed"),
    ("carried", "Carried to the next meeting"),
)


def record_from_fields(
    fields: Mapping[str, Sequence[str]], max_attendance: int
) -> tuple[MeetingRecord | None, dict[str, str], list[int]]:
    """The record in a form shown whole, by field: ``public``, ``new``, ``partners`` (the
    person ids ticked), ``review_<priority id>`` (closed or carried) and ``reviewnote_<id>``,
    ``priority_<n>`` and ``owner_<n>`` for each new priority's slot. Returns (record, errors
    by field, the slot of each new priority in the record, so that the core's ``priority:<n>``
    goes on the right field: :func:`errors_by_field`). The record is None when there are
    errors; the whole record is then checked by :func:`validate_record`."""

    def one(name: str) -> str:
        values = fields.get(name) or [""]
        return values[0]

    errors: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, what in (("public", "members of the public"), ("new", "new attendees")):
        try:
            counts[name] = parse_count(one(name), what, max_attendance)
        except PactError as exc:
            errors[name] = str(exc)
    partners: list[int] = []
    for raw in fields.get("partners") or []:
        if raw.isascii() and raw.isdigit():
            partners.append(int(raw))
        else:
            errors["partners"] = "Please choose the partners from the list."
    reviews: list[tuple[int, str, str]] = []
    for name in fields:
        digits = name.removeprefix("review_")
        if name.startswith("review_") and digits.isascii() and digits.isdigit() and one(name):
            reviews.append((int(digits), one(name), one(f"reviewnote_{digits}").strip()))
    new_priorities: list[tuple[str, str]] = []
    slots: list[int] = []
    for n in range(1, MAX_NEW_PRIORITIES + 1):
        title, owner = one(f"priority_{n}").strip(), one(f"owner_{n}")
        if title and owner:
            new_priorities.append((title, owner))
            slots.append(n)
        elif title:
            errors[f"priority_{n}"] = "Choose the team that owns this priority."
        elif owner:
            errors[f"priority_{n}"] = "Write the priority, or clear its owner."
    if errors:
        return None, errors, slots
    record = MeetingRecord(
        public=counts["public"],
        new=counts["new"],
        partners=partners,
        reviews=reviews,
        new_priorities=new_priorities,
    )
    return record, {}, slots


def errors_by_field(
    errors: Mapping[str, str], slots: list[int], shown: set[str], fallback: str = "public"
) -> dict[str, str]:
    """The core's errors (``public``, ``new``, ``partners``, ``review:<id>``, ``priority:<n>``)
    by the form's field names (:func:`record_from_fields`). An error for a field the form does
    not show (a priority left out of a full form) goes on ``fallback``."""
    out: dict[str, str] = {}
    for key, message in errors.items():
        field, _, arg = key.partition(":")
        if field == "review":
            name = f"review_{arg}"
        elif field == "priority":
            n = int(arg) if arg.isascii() and arg.isdigit() else 0
            slot = slots[n - 1] if 1 <= n <= len(slots) else MAX_NEW_PRIORITIES
            name = f"priority_{slot}"
        else:
            name = field
        if name not in shown:
            name = fallback
        out[name] = f"{out[name]} {message}" if name in out else message
    return out


def validate_record(
    record: MeetingRecord, context: RecordContext, max_attendance: int
) -> dict[str, str]:
    """Check a whole record. Returns errors by field (``public``, ``new``, ``partners``,
    ``review:<priority id>``, ``priority:<n>``); empty when it can be stored."""
    errors: dict[str, str] = {}
    if not 0 <= record.public <= max_attendance:
        errors["public"] = f"Members of the public must be between 0 and {max_attendance:,}."
    if record.new < 0:
        errors["new"] = "New attendees cannot be negative."
    elif record.new > record.public:
        errors["new"] = (
            f"New attendees ({record.new}) cannot be more than the members of the public "
            f"present ({record.public})."
        )
    invited = {pid for pid, _ in context.partners}
    if set(record.partners) - invited:
        errors["partners"] = "Only partners invited to this meeting can be ticked."
    reviewed = {pid for pid, _, _ in record.reviews}
    for priority in context.priorities:
        assert priority.id is not None
        if priority.id not in reviewed:
            errors[f"review:{priority.id}"] = "Say whether this priority is closed or carried."
    for pid, decision, note in record.reviews:
        if pid not in {p.id for p in context.priorities}:
            errors[f"review:{pid}"] = "That priority is not open for this neighbourhood."
        elif decision not in ("closed", "carried"):
            errors[f"review:{pid}"] = "Choose closed or carried."
        elif len(note) < 3:
            errors[f"review:{pid}"] = "Say what was done (you said, we did)."
        elif len(note) > MAX_NOTE:
            errors[f"review:{pid}"] = f"Please keep it under {MAX_NOTE} characters."
    if len(record.new_priorities) > MAX_NEW_PRIORITIES:
        errors["priority:4"] = f"A meeting sets at most {MAX_NEW_PRIORITIES} new priorities."
    teams = {k for k, _ in context.teams}
    for n, (title, owner) in enumerate(record.new_priorities[:MAX_NEW_PRIORITIES], 1):
        if not 3 <= len(title) <= MAX_TITLE:
            errors[f"priority:{n}"] = f"A priority needs 3 to {MAX_TITLE} characters."
        elif owner not in teams:
            errors[f"priority:{n}"] = "Choose the team that owns this priority."
    return errors


class PactRecords(PactUpdates):
    """Recording meetings (chairs) and reporting back on priorities (owner teams)."""

    # ----------------------------------------------------------------- recording

    async def context(self, uow: UnitOfWork, person: Someone, meeting_id: int) -> RecordContext:
        """Check that ``person`` may record the meeting now; PactError says why not."""
        m = await uow.pact.get_meeting(meeting_id)
        if m is None:
            raise PactError("That meeting is not known.")
        if m.chair_id != person.id:
            raise PactError(
                "Only the chair of this meeting can record it; if you chaired it instead, "
                "ask the Prevent and Cohesion Officer to change the chair."
            )
        now = self.clock.now()
        if now < m.starts_at:
            raise PactError(
                f"This meeting has not happened yet (it starts {local_time(m.starts_at, self.tz)})."
            )
        # A meeting marked cancelled may still be recorded: that corrects a mistaken tap (the
        # reverse, cancelling a recorded meeting, is refused by mark_cancelled).
        if m.status == MeetingStatus.RECORDED.value:
            raise PactError(
                f"This meeting was already recorded on {local_time(m.recorded_at or now, self.tz)}."
            )
        hood = self.hoods.get(m.neighbourhood)
        if hood is None:
            raise PactError("That meeting's neighbourhood is no longer configured.")
        partners = [
            (p.id, p.name) for p in await self.invited(uow, hood, m.chair_id) if p.id is not None
        ]
        priorities = [
            p for p in await uow.pact.open_priorities(m.neighbourhood) if p.meeting_id != m.id
        ]
        teams = [(t.key, t.name) for t in self.config.teams]
        return RecordContext(m, hood, priorities, partners, teams)

    async def apply_record(
        self,
        uow: UnitOfWork,
        person: Someone,
        context: RecordContext,
        record: MeetingRecord,
        *,
        notify: bool = True,
    ) -> dict[str, str]:
        """Store a checked record (errors by field instead, storing nothing). With ``notify``
        the owner teams are told of their new priorities (not when loading past seasons)."""
        errors = validate_record(record, context, self.config.pact.max_attendance)
        if errors:
            return errors
        now = self.clock.now()
        m = context.meeting
        assert m.id is not None
        m.status = MeetingStatus.RECORDED.value
        m.public_attendees, m.new_attendees = record.public, record.new
        m.partners_invited = len(context.partners)
        m.recorded_at, m.recorded_by = now, f"person:{person.id}"
        await uow.pact.set_attendance(m.id, record.partners)
        priorities = {p.id: p for p in context.priorities}
        reviewed = [(priorities[pid], decision == "closed") for pid, decision, _ in record.reviews]
        for pid, decision, note in record.reviews:
            p = priorities[pid]
            p.outcome, p.reviewed_meeting_id = clean_text(note), m.id
            if decision == "closed":
                # Dated by the meeting that decided it, not by when the chair typed it in.
                p.status, p.closed_at = PriorityStatus.CLOSED.value, m.starts_at
            else:
                p.carried += 1
        teams = {t.key: t for t in self.config.teams}
        for title, owner in record.new_priorities:
            priority = PactPriority(
                neighbourhood=m.neighbourhood,
                meeting_id=m.id,
                title=clean_text(title),
                owner_team=owner,
                created_at=m.starts_at,
            )
            await uow.pact.add_priority(priority)
            team = teams[owner]
            if notify and self.config.teams_connected:
                await enqueue(
                    uow,
                    channel=TEAMS_PLATFORM,
                    recipient=team.room,
                    message=MessageBuilder()
                    .line(bold(f"New PACT priority for {team.name}"))
                    .line(f"{self.hood_name(m.neighbourhood)}: {priority.title}")
                    .line(
                        f"Set at the meeting of {local_time(m.starts_at, self.tz)}. You will be "
                        "asked to report back before the next meeting."
                    )
                    .build(),
                    key=f"pact-priority:{priority.id}",
                    now=now,
                    purpose="pact",
                )
        if notify:  # the public "you said, we did" (not for past seasons loaded in bulk)
            titles = [clean_text(title) for title, _ in record.new_priorities]
            await announce_record(uow, self.config, m, reviewed, titles, now)
        await audit(
            uow,
            now,
            f"person:{person.id}",
            "pact.record",
            f"pact-meeting:{m.id}",
            public=record.public,
            new=record.new,
            partners=len(record.partners),
            closed=sum(1 for _, d, _ in record.reviews if d == "closed"),
            carried=sum(1 for _, d, _ in record.reviews if d == "carried"),
            new_priorities=len(record.new_priorities),
        )
        return {}

    async def mark_cancelled(self, uow: UnitOfWork, person: Someone, meeting_id: int) -> str:
        """The chair says the meeting did not take place."""
        m = await uow.pact.get_meeting(meeting_id)
        if m is None or m.chair_id != person.id:
            raise PactError("Only the chair of this meeting can say it was cancelled.")
        if m.status == MeetingStatus.RECORDED.value:
            raise PactError("This meeting has already been recorded as held.")
        if m.status != MeetingStatus.CANCELLED.value:
            m.status = MeetingStatus.CANCELLED.value
            m.recorded_at, m.recorded_by = self.clock.now(), f"person:{person.id}"
            await audit(
                uow,
                self.clock.now(),
                f"person:{person.id}",
                "pact.cancelled",
                f"pact-meeting:{m.id}",
            )
            await announce_change(uow, self.config, m, self.clock.now())
            # Invitees and owner teams hear in the same transaction (nothing once it started).
            await self.update_invitations(uow, m, self.clock.now())
        return (
            f"Recorded: the {self._title(m)} of {local_time(m.starts_at, self.tz)} was cancelled. "
            "Its priorities stay open for the next meeting."
        )

    async def to_record(self, uow: UnitOfWork, person: Someone) -> list[PactMeeting]:
        """The person's meetings that have started and are not recorded (latest first)."""
        assert person.id is not None
        now = self.clock.now()
        return sorted(
            (
                m
                for m in await uow.pact.for_chair(person.id)
                if m.starts_at <= now and m.status == MeetingStatus.SCHEDULED.value
            ),
            key=lambda m: m.starts_at,
            reverse=True,
        )

    async def upcoming(self, uow: UnitOfWork, person: Someone) -> list[PactMeeting]:
        """The person's meetings still to come."""
        assert person.id is not None
        now = self.clock.now()
        return [m for m in await uow.pact.for_chair(person.id) if m.starts_at > now]

    # ----------------------------------------------------------------- from any platform

    async def _person(self, uow: UnitOfWork, who: Who) -> Person:
        """The active person behind ``who``, or PactError with the one refusal."""
        try:
            return await identify(uow, who, self.config.partnership)
        except NotInvited as refused:
            raise PactError(str(refused)) from None

    async def context_for(self, who: Who, meeting_id: int | None) -> RecordContext:
        """The record form for a chair (``None``: their latest meeting to record)."""
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            if meeting_id is None:
                pending = await self.to_record(uow, person)
                if not pending:
                    raise PactError("You have no PACT meeting waiting to be recorded.")
                meeting_id = pending[0].id
                assert meeting_id is not None
            return await self.context(uow, person, meeting_id)

    async def record_for(self, who: Who, meeting_id: int, record: MeetingRecord) -> dict[str, str]:
        """Store a record from a form shown whole (a modal); errors by field (nothing stored
        then). The chair is thanked where they sent it."""
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            try:
                context = await self.context(uow, person, meeting_id)
            except PactError as exc:
                return {"public": str(exc)}
            errors = await self.apply_record(uow, person, context, record)
            if not errors:
                m = context.meeting
                await enqueue(
                    uow,
                    channel=who.platform,
                    recipient=who.address,
                    message=MessageBuilder()
                    .line(bold(f"Recorded: {self._title(m)}, {local_time(m.starts_at, self.tz)}"))
                    .line(
                        f"{record.public} members of the public ({record.new} new), "
                        f"{len(record.partners)} of {len(context.partners)} partners; "
                        f"{len(record.new_priorities)} new priorities. Thank you."
                    )
                    .build(),
                    key=f"pact-recorded:{m.id}",
                    now=self.clock.now(),
                    purpose="pact",
                )
                await uow.commit()
        if not errors:
            self.wake()
        return errors

    async def cancelled_by(self, who: Who, meeting_id: int) -> str:
        """The chair's "It was cancelled"."""
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            text = await self.mark_cancelled(uow, person, meeting_id)
            await uow.commit()
        self.wake()
        return text

    async def priority_for_owner(self, who: Who, priority_id: int) -> PactPriority:
        """A priority the sender's team owns (or any, for an admin); PactError otherwise."""
        async with self.uow_factory() as uow:
            return await self._owned(uow, who, priority_id)

    async def _owned(self, uow: UnitOfWork, who: Who, priority_id: int) -> PactPriority:
        p = await uow.pact.get_priority(priority_id)
        if p is None:
            raise PactError("That priority is not known.")
        team = next((t for t in self.config.teams if t.key == p.owner_team), None)
        person = await find(uow, who)
        admin = person is not None and person.role == Role.ADMIN.value
        email = person.email if person is not None else None
        if not admin and (team is None or not team.has_member(who.address, email)):
            raise PactError(f"Only the owning team ({p.owner_team}) can report back on this.")
        if p.status != PriorityStatus.OPEN.value:
            raise PactError("This priority is closed.")
        return p

    async def report_back(self, who: Who, priority_id: int, text: str) -> str:
        """The owner team's account of what was done, for the chair's sheet."""
        text = clean_text(text)
        async with self.uow_factory() as uow:
            p = await self._owned(uow, who, priority_id)  # ownership first
            if not 3 <= len(text) <= MAX_NOTE:
                raise PactError(f"Please write 3 to {MAX_NOTE} characters.")
            now = self.clock.now()
            p.report_back, p.report_back_at, p.report_back_by = text, now, who.address
            await audit(uow, now, who.address, "pact.report_back", f"pact-priority:{p.id}")
            await uow.commit()
        return f"Thank you: the chair will see this at the next meeting ({p.title})."
