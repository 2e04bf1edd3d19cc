"""PACT meetings: scheduling, reminders with a calendar invitation, recording, priorities'
follow-through, and the attendance insight.

Meetings are created by ``tensionbot pact schedule`` / ``pact import`` or by a chair in chat.
:meth:`PactService.tick` (a scheduler job, safe to run twice) sends the reminders with an ``.ics``
file, asks owner teams to report back on open priorities before the next meeting, prompts the
chair to record the meeting when it ends, chases them after ``record_chase_hours``, and gives the
chair the "you said, we did" sheet when the next meeting starts. A record (from the Telegram
conversation or the Slack modal) is checked by :func:`validate_record` and stored by
:meth:`PactService.apply_record` in one unit of work.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from bot.clock import Clock
from bot.common import Waker, address_of, audit, clean_text, enqueue, local_time
from bot.config import Config, NeighbourhoodConfig
from bot.domain import (
    MeetingFormat,
    MeetingStatus,
    PactMeeting,
    PactPriority,
    Person,
    PriorityStatus,
    Role,
)
from bot.messages import Attachment, Button, MessageBuilder, OutgoingMessage, bold, italic
from bot.pact.rules import (
    FORMAT_LABELS,
    MAX_NEW_PRIORITIES,
    GroupRow,
    MeetingRow,
    PactInsight,
    calendar_invite,
    relative_attendance,
    slot_of,
)
from bot.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

CSV_HEADER = ("neighbourhood", "date", "time", "venue", "format", "chair_email")
MAX_TITLE = 300
MAX_NOTE = 1000
INSIGHT_ROLES = frozenset({Role.PREVENT_OFFICER.value, Role.ADMIN.value})
GROUPS = ("slot", "weekday", "venue", "format", "neighbourhood")


class PactError(ValueError):
    """A refusal or a bad value; the message says why (and names the field)."""


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


@dataclass(frozen=True)
class ImportResult:
    """What a CSV import of meetings did."""

    created: int
    updated: int
    unchanged: int


def parse_count(raw: str, what: str, limit: int) -> int:
    """A head count typed by a person: a whole number from 0 to ``limit``."""
    text = raw.strip().replace(",", "")
    if text.startswith("-") and text[1:].isdigit():
        raise PactError(f"The number of {what} cannot be negative.")
    if not text.isdigit():
        raise PactError(f"Please give the number of {what} as a whole number, e.g. 14.")
    value = int(text)
    if value > limit:
        raise PactError(
            f"{value:,} {what} is more than this bot accepts ({limit:,}); please check the number."
        )
    return value


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


class PactService:
    """PACT meetings, their reminders, records and insight."""

    def __init__(
        self, config: Config, uow_factory: UnitOfWorkFactory, clock: Clock, wake: Waker
    ) -> None:
        self.config, self.uow_factory, self.clock, self.wake = config, uow_factory, clock, wake
        self.tz = config.partnership.tz
        self.hoods = {
            h.key: h for h in config.pact.all_neighbourhoods(list(config.partnership.wards))
        }

    # ----------------------------------------------------------------- neighbourhoods

    def neighbourhood(self, name: str) -> NeighbourhoodConfig:
        """A neighbourhood by key or name (any case); PactError naming the known ones."""
        wanted = name.strip().casefold()
        for hood in self.hoods.values():
            if wanted in (hood.key.casefold(), hood.name.casefold()):
                return hood
        raise PactError(
            f"neighbourhood {name!r} is not known (known: {', '.join(sorted(self.hoods))})"
        )

    def hood_name(self, key: str) -> str:
        """The display name of a neighbourhood key."""
        hood = self.hoods.get(key)
        return hood.name if hood else key

    async def invited(
        self, uow: UnitOfWork, hood: NeighbourhoodConfig, chair_id: int | None = None
    ) -> list[Person]:
        """The neighbourhood's councillors and its configured partners (not the chair)."""
        wards = {w.casefold() for w in hood.wards}
        partners = {e.casefold() for e in hood.partners}
        out = []
        for person in await uow.people.all():
            if not person.active or person.id == chair_id:
                continue
            councillor = person.role == Role.COUNCILLOR.value and wards & {
                w.casefold() for w in person.wards
            }
            if councillor or person.email.casefold() in partners:
                out.append(person)
        return sorted(out, key=lambda p: p.name)

    # ----------------------------------------------------------------- scheduling

    async def schedule(
        self,
        *,
        neighbourhood: str,
        on: str,
        at: str,
        venue: str,
        format: str,
        chair_email: str | None,
        actor: str,
        duration_minutes: int | None = None,
        allow_past: bool = False,
    ) -> PactMeeting:
        """Schedule one meeting (local date and time). PactError names whatever is wrong."""
        async with self.uow_factory() as uow:
            meeting, _ = await self._schedule(
                uow,
                neighbourhood=neighbourhood,
                on=on,
                at=at,
                venue=venue,
                format=format,
                chair_email=chair_email,
                actor=actor,
                duration_minutes=duration_minutes,
                allow_past=allow_past,
                update=False,
            )
            await uow.commit()
        return meeting

    async def _schedule(
        self,
        uow: UnitOfWork,
        *,
        neighbourhood: str,
        on: str,
        at: str,
        venue: str,
        format: str,
        chair_email: str | None,
        actor: str,
        duration_minutes: int | None,
        allow_past: bool,
        update: bool,
    ) -> tuple[PactMeeting, str]:
        hood = self.neighbourhood(neighbourhood)
        try:
            day = date.fromisoformat(on.strip())
        except ValueError:
            raise PactError(f"date {on!r} is not of the form YYYY-MM-DD") from None
        try:
            clock = time.fromisoformat(at.strip())
        except ValueError:
            raise PactError(f"time {at!r} is not of the form HH:MM") from None
        venue = clean_text(venue)
        if not 2 <= len(venue) <= 200:
            raise PactError("venue: give the place (2 to 200 characters)")
        fmt = format.strip().casefold().replace(" ", "_").replace("-", "_")
        if fmt not in {f.value for f in MeetingFormat}:
            raise PactError(
                f"format {format!r} is not one of {', '.join(f.value for f in MeetingFormat)}"
            )
        minutes = duration_minutes or self.config.pact.default_duration_minutes
        if not 15 <= minutes <= 8 * 60:
            raise PactError("duration: between 15 minutes and 8 hours")
        email = (chair_email or hood.chair or "").strip()
        if not email:
            raise PactError(
                f"chair: give the chair's email (neighbourhood {hood.key} has no usual chair)"
            )
        chair = await uow.people.by_email(email)
        if chair is None or not chair.active or chair.id is None:
            raise PactError(f"chair: nobody with the email {email!r} (import them first)")
        local = datetime.combine(day, clock, tzinfo=self.tz)
        starts = local
        now = self.clock.now()
        if starts < now and not allow_past:
            raise PactError(f"{local:%Y-%m-%d %H:%M} is in the past")
        existing = await uow.pact.meeting_at(hood.key, starts)
        if existing is not None:
            if not update:
                raise PactError(
                    f"{hood.name} already has a meeting at {local:%Y-%m-%d %H:%M} "
                    f"(at {existing.venue})"
                )
            new = (venue, fmt, chair.id, starts + timedelta(minutes=minutes))
            old = (existing.venue, existing.format, existing.chair_id, existing.ends_at)
            if new == old:
                return existing, "unchanged"
            existing.venue, existing.format, existing.chair_id, existing.ends_at = new
            await audit(uow, now, actor, "pact.reschedule", f"pact-meeting:{existing.id}")
            return existing, "updated"
        meeting = PactMeeting(
            neighbourhood=hood.key,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=minutes),
            venue=venue,
            format=fmt,
            chair_id=chair.id,
            weekday=local.weekday(),
            slot=slot_of(local),
            created_by=actor,
            created_at=now,
        )
        await uow.pact.add_meeting(meeting)
        await audit(
            uow, now, actor, "pact.schedule", f"pact-meeting:{meeting.id}", neighbourhood=hood.key
        )
        return meeting, "created"

    async def import_csv(self, text: str, *, source: str, actor: str) -> ImportResult:
        """A season of meetings from CSV (``neighbourhood,date,time,venue,format,chair_email``
        and optionally ``duration_minutes``). All or nothing; a re-import updates, never
        duplicates. PactError lists every bad line."""
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        missing = [c for c in CSV_HEADER if c not in (reader.fieldnames or [])]
        if missing:
            raise PactError(f"{source}: missing column(s): {', '.join(missing)}")
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        errors: list[str] = []
        async with self.uow_factory() as uow:
            for line, row in enumerate(reader, start=2):
                try:
                    raw = (row.get("duration_minutes") or "").strip()
                    _, what = await self._schedule(
                        uow,
                        neighbourhood=row["neighbourhood"] or "",
                        on=row["date"] or "",
                        at=row["time"] or "",
                        venue=row["venue"] or "",
                        format=row["format"] or "",
                        chair_email=row["chair_email"] or None,
                        actor=actor,
                        duration_minutes=int(raw) if raw.isdigit() else None,
                        allow_past=True,
                        update=True,
                    )
                    counts[what] += 1
                except PactError as exc:
                    errors.append(f"{source}:{line}: {exc}")
            if errors:
                raise PactError("\n".join(errors))
            await uow.commit()
        return ImportResult(**counts)

    async def schedule_in_chat(self, uow: UnitOfWork, person: Person, text: str) -> str:
        """``/schedule [neighbourhood] YYYY-MM-DD HH:MM FORMAT VENUE...`` from a chair: the
        answer to show (a PactError's message when refused)."""
        words = text.split()
        named = words.pop(0) if words and not words[0][:1].isdigit() else ""
        hood = self.neighbourhood(await self.chaired_for_scheduling(uow, person, named))
        if len(words) < 4:
            raise PactError(
                "Please write /schedule YYYY-MM-DD HH:MM FORMAT VENUE, e.g. "
                "/schedule 2027-01-14 18:30 in_person Heath Town Library "
                f"(formats: {', '.join(f.value for f in MeetingFormat)})."
            )
        on, at, fmt, *venue = words
        meeting, _ = await self._schedule(
            uow,
            neighbourhood=hood.key,
            on=on,
            at=at,
            venue=" ".join(venue),
            format=fmt,
            chair_email=person.email,
            actor=f"person:{person.id}",
            duration_minutes=None,
            allow_past=False,
            update=False,
        )
        return (
            f"Scheduled: {hood.name} PACT meeting, {local_time(meeting.starts_at, self.tz)}, "
            f"{meeting.venue} ({FORMAT_LABELS[meeting.format]}). Invitations go out "
            f"{self.config.pact.reminder_days_before} days before."
        )

    async def chaired_for_scheduling(self, uow: UnitOfWork, person: Person, named: str) -> str:
        """The neighbourhood a chair schedules for: the one ``named`` (which they must chair,
        unless an admin), else the one they chair; PactError says why not."""
        hoods = await self._chaired(uow, person)
        if named:
            hood = self.neighbourhood(named)
            if hood.key not in hoods and person.role != Role.ADMIN.value:
                raise PactError(f"You do not chair the {hood.name} PACT meetings.")
            return hood.key
        if len(hoods) == 1:
            return hoods[0]
        if not hoods:
            raise PactError("Only a PACT chair can schedule a meeting.")
        raise PactError(
            "You chair several neighbourhoods: start with one of " + ", ".join(sorted(hoods)) + "."
        )

    async def chairs(self, uow: UnitOfWork, person: Person) -> bool:
        """Whether this person chairs any neighbourhood's PACT meetings."""
        return bool(await self._chaired(uow, person))

    async def _chaired(self, uow: UnitOfWork, person: Person) -> list[str]:
        """Neighbourhoods this person chairs (configured, or chaired a meeting there)."""
        keys = {
            h.key
            for h in self.hoods.values()
            if (h.chair or "").casefold() == (person.email.casefold())
        }
        assert person.id is not None
        keys |= {m.neighbourhood for m in await uow.pact.for_chair(person.id)}
        return sorted(keys)

    # ----------------------------------------------------------------- timed work

    async def tick(self) -> dict[str, int]:
        """Reminders (with .ics), owners' report-back requests, record prompts, chases and the
        chair's briefing: each once per meeting (or priority and meeting)."""
        now = self.clock.now()
        cfg = self.config.pact
        fired = {"reminders": 0, "owners": 0, "prompts": 0, "chases": 0, "briefings": 0}
        horizon = max(cfg.reminder_days_before, cfg.owner_reminder_days_before)
        async with self.uow_factory() as uow:
            meetings = await uow.pact.meetings_between(
                now - timedelta(days=14), now + timedelta(days=horizon + 1)
            )
            for m in meetings:
                if m.status != MeetingStatus.SCHEDULED.value:
                    continue
                until = m.starts_at - now
                since_end = now - m.ends_at
                due = {
                    "reminders": timedelta(0) < until <= timedelta(days=cfg.reminder_days_before),
                    "owners": timedelta(0)
                    < until
                    <= timedelta(days=cfg.owner_reminder_days_before),
                    "briefings": m.starts_at <= now < m.ends_at,
                    "prompts": since_end >= timedelta(0),
                    "chases": since_end >= timedelta(hours=cfg.record_chase_hours),
                }
                for kind, is_due in due.items():
                    # Each step once per meeting: the marker is written in the same transaction
                    # as the messages it queued.
                    key = f"pact-{kind}:{m.id}"
                    if not is_due or await uow.state.get(key) is not None:
                        continue
                    if kind == "prompts" and due["chases"]:
                        # First seen after the chase time (the bot was down): the chase only.
                        await uow.state.set(key, now.isoformat())
                        continue
                    if kind == "reminders":
                        await self._remind(uow, m, now)
                    elif kind == "owners":
                        await self._ask_owners(uow, m, now)
                    elif kind == "briefings":
                        await self._brief(uow, m, now)
                    else:
                        await self._prompt(uow, m, now, chase=kind == "chases")
                    await uow.state.set(key, now.isoformat())
                    fired[kind] += 1
            await uow.commit()
        if any(fired.values()):
            self.wake()
        return fired

    async def _send(
        self, uow: UnitOfWork, person: Person, message: OutgoingMessage, key: str, now: datetime
    ) -> bool:
        address = address_of(
            person,
            slack=self.config.secrets.slack_bot_token is not None,
            email=self.config.email.host is not None,
        )
        if address is None:
            return False
        channel, recipient = address
        return await enqueue(
            uow,
            channel=channel,
            recipient=recipient,
            message=message,
            key=key,
            now=now,
            purpose="pact",
            priority=1,
        )

    def _title(self, m: PactMeeting) -> str:
        return f"{self.hood_name(m.neighbourhood)} PACT meeting"

    async def _remind(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> None:
        hood = self.hoods.get(m.neighbourhood)
        if hood is None:
            return
        chair = await uow.people.get(m.chair_id)
        people = await self.invited(uow, hood, m.chair_id)
        if chair is not None:
            people = [chair, *people]
        ics = calendar_invite(
            uid=f"pact-{m.id}@tensionbot",
            title=self._title(m),
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            venue=m.venue,
            description=(
                f"{self.config.partnership.name}: Partners and Communities Together. "
                "Residents set the neighbourhood's priorities with the police and the council."
            ),
            organiser=self.config.partnership.name,
            now=now,
            tz=self.tz,
        )
        for person in people:
            message = (
                MessageBuilder()
                .line(bold(self._title(m)))
                .line(
                    f"{local_time(m.starts_at, self.tz)} at {m.venue} "
                    f"({FORMAT_LABELS.get(m.format, m.format)})"
                    + (". You are chairing it." if person.id == m.chair_id else ".")
                )
                .line("The calendar invitation is attached.")
                .build()
                .model_copy(
                    update={
                        "attachments": [
                            Attachment(
                                filename=f"pact-{m.neighbourhood}-{m.starts_at:%Y%m%d}.ics",
                                title=self._title(m),
                                data=ics,
                            )
                        ]
                    }
                )
            )
            await self._send(uow, person, message, f"pact-remind:{m.id}:{person.id}", now)

    async def _ask_owners(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> None:
        from bot.buttons import Action, Kind

        if self.config.secrets.slack_bot_token is None:
            return
        teams = {t.key: t for t in self.config.teams}
        for p in await uow.pact.open_priorities(m.neighbourhood):
            team = teams.get(p.owner_team)
            if team is None or p.id is None:
                continue
            message = (
                MessageBuilder()
                .line(bold(f"PACT priority for {team.name}: please report back"))
                .line(f"{self.hood_name(p.neighbourhood)}: {p.title}")
                .line(
                    f"The next meeting is {local_time(m.starts_at, self.tz)} at {m.venue}. "
                    "Say what was done so the chair can tell residents (you said, we did)."
                )
                .line(italic(f"Last report: {p.report_back}") if p.report_back else "")
                .row(Button(label="Report back", data=Action(Kind.PACT_REPORT_BACK, p.id).encode()))
                .build()
            )
            await enqueue(
                uow,
                channel="slack",
                recipient=team.slack_channel,
                message=message,
                key=f"pact-owner:{p.id}:{m.id}",
                now=now,
                purpose="pact",
                priority=1,
            )

    async def briefing(self, uow: UnitOfWork, m: PactMeeting) -> OutgoingMessage:
        """The chair's "you said, we did" sheet: the open priorities and what owners reported."""
        b = MessageBuilder().line(bold(f"{self._title(m)}: you said, we did"))
        teams = {t.key: t.name for t in self.config.teams}
        priorities = await uow.pact.open_priorities(m.neighbourhood)
        if not priorities:
            b.line("There are no open priorities from earlier meetings.")
        for n, p in enumerate(priorities, 1):
            b.line(bold(f"{n}. {p.title}"), f" ({teams.get(p.owner_team, p.owner_team)})")
            b.line(
                f"   We did: {p.report_back}"
                if p.report_back
                else "   The owner has not reported back yet."
            )
        return b.build()

    async def _brief(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> None:
        chair = await uow.people.get(m.chair_id)
        if chair is not None:
            await self._send(uow, chair, await self.briefing(uow, m), f"pact-brief:{m.id}", now)

    def record_buttons(self, m: PactMeeting) -> list[Button]:
        """Record / It was cancelled, for the chair."""
        from bot.buttons import Action, Kind

        assert m.id is not None
        return [
            Button(label="Record the meeting", data=Action(Kind.PACT_RECORD, m.id).encode()),
            Button(label="It was cancelled", data=Action(Kind.PACT_CANCELLED, m.id).encode()),
        ]

    async def _prompt(self, uow: UnitOfWork, m: PactMeeting, now: datetime, *, chase: bool) -> None:
        chair = await uow.people.get(m.chair_id)
        if chair is None:
            return
        head = (
            f"Reminder: the {self._title(m)} of {local_time(m.starts_at, self.tz)} is not "
            "recorded yet."
            if chase
            else f"How did the {self._title(m)} go?"
        )
        message = (
            MessageBuilder()
            .line(bold(head))
            .line(
                "Please record how many people came, which partners were there, and the "
                "priorities. It takes two minutes."
            )
            .row(*self.record_buttons(m))
            .build()
        )
        kind = "chase" if chase else "prompt"
        await self._send(uow, chair, message, f"pact-{kind}:{m.id}", now)

    # ----------------------------------------------------------------- recording

    async def context(self, uow: UnitOfWork, person: Person, meeting_id: int) -> RecordContext:
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
        person: Person,
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
            if notify and self.config.secrets.slack_bot_token is not None:
                await enqueue(
                    uow,
                    channel="slack",
                    recipient=team.slack_channel,
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

    async def mark_cancelled(self, uow: UnitOfWork, person: Person, meeting_id: int) -> str:
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
        return (
            f"Recorded: the {self._title(m)} of {local_time(m.starts_at, self.tz)} was cancelled. "
            "Its priorities stay open for the next meeting."
        )

    async def to_record(self, uow: UnitOfWork, person: Person) -> list[PactMeeting]:
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

    async def upcoming(self, uow: UnitOfWork, person: Person) -> list[PactMeeting]:
        """The person's meetings still to come."""
        assert person.id is not None
        now = self.clock.now()
        return [m for m in await uow.pact.for_chair(person.id) if m.starts_at > now]

    # ----------------------------------------------------------------- Slack (modal, owners)

    async def slack_person(self, uow: UnitOfWork, slack_user_id: str) -> Person:
        """The active person behind a Slack user, or PactError."""
        person = await uow.people.by_slack_user(slack_user_id)
        if person is None or not person.active:
            log.info("refused a PACT request from an unknown Slack user")
            raise PactError(
                f"Sorry, this is only for people invited by the {self.config.partnership.name}."
            )
        return person

    async def slack_context(self, slack_user_id: str, meeting_id: int | None) -> RecordContext:
        """The record form for a Slack chair (``None``: their latest meeting to record)."""
        async with self.uow_factory() as uow:
            person = await self.slack_person(uow, slack_user_id)
            if meeting_id is None:
                pending = await self.to_record(uow, person)
                if not pending:
                    raise PactError("You have no PACT meeting waiting to be recorded.")
                meeting_id = pending[0].id
                assert meeting_id is not None
            return await self.context(uow, person, meeting_id)

    async def slack_record(
        self, slack_user_id: str, meeting_id: int, record: MeetingRecord
    ) -> dict[str, str]:
        """Store a record from the Slack modal; errors by field (nothing stored then)."""
        async with self.uow_factory() as uow:
            person = await self.slack_person(uow, slack_user_id)
            try:
                context = await self.context(uow, person, meeting_id)
            except PactError as exc:
                return {"public": str(exc)}
            errors = await self.apply_record(uow, person, context, record)
            if not errors and person.slack_user_id:
                m = context.meeting
                await enqueue(
                    uow,
                    channel="slack",
                    recipient=person.slack_user_id,
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
            if not errors:
                await uow.commit()
        if not errors:
            self.wake()
        return errors

    async def slack_cancelled(self, slack_user_id: str, meeting_id: int) -> str:
        """The Slack chair's "It was cancelled"."""
        async with self.uow_factory() as uow:
            person = await self.slack_person(uow, slack_user_id)
            text = await self.mark_cancelled(uow, person, meeting_id)
            await uow.commit()
        return text

    async def priority_for_owner(self, slack_user_id: str, priority_id: int) -> PactPriority:
        """A priority the Slack user's team owns (or any, for an admin); PactError otherwise."""
        async with self.uow_factory() as uow:
            return await self._owned(uow, slack_user_id, priority_id)

    async def _owned(self, uow: UnitOfWork, slack_user_id: str, priority_id: int) -> PactPriority:
        p = await uow.pact.get_priority(priority_id)
        if p is None:
            raise PactError("That priority is not known.")
        team = next((t for t in self.config.teams if t.key == p.owner_team), None)
        person = await uow.people.by_slack_user(slack_user_id)
        admin = person is not None and person.active and person.role == Role.ADMIN.value
        email = person.email if person is not None and person.active else None
        if not admin and (team is None or not team.has_member(slack_user_id, email)):
            raise PactError(f"Only the owning team ({p.owner_team}) can report back on this.")
        if p.status != PriorityStatus.OPEN.value:
            raise PactError("This priority is closed.")
        return p

    async def report_back(self, slack_user_id: str, priority_id: int, text: str) -> str:
        """The owner team's account of what was done, for the chair's sheet."""
        text = clean_text(text)
        async with self.uow_factory() as uow:
            p = await self._owned(uow, slack_user_id, priority_id)  # ownership first
            if not 3 <= len(text) <= MAX_NOTE:
                raise PactError(f"Please write 3 to {MAX_NOTE} characters.")
            now = self.clock.now()
            p.report_back, p.report_back_at, p.report_back_by = text, now, slack_user_id
            await audit(uow, now, slack_user_id, "pact.report_back", f"pact-priority:{p.id}")
            await uow.commit()
        return f"Thank you: the chair will see this at the next meeting ({p.title})."

    # ----------------------------------------------------------------- insight

    async def insight(
        self,
        since: str,
        until: str,
        neighbourhood: str | None = None,
        *,
        change_date: date | None = None,
    ) -> PactInsight:
        """Attendance and priorities for the months ``since``..``until`` (YYYY-MM, inclusive);
        with ``change_date``, attendance before and after it too."""
        start = self._month_start(since)
        end = self._month_start(until, next_month=True)
        hood = self.neighbourhood(neighbourhood).key if neighbourhood else None
        result = PactInsight(since, until, hood, names={k: h.name for k, h in self.hoods.items()})
        async with self.uow_factory() as uow:
            result.meetings = [
                MeetingRow(*row) for row in await uow.pact.meeting_rows(start, end, hood)
            ]
            for group in GROUPS:
                rows = [GroupRow(*r) for r in await uow.pact.attendance_by(group, start, end, hood)]
                # 'vs usual' leave-one-out, total over total (bot/pact/rules.py), from the meetings.
                relative = relative_attendance(result.meetings, group)
                result.by[group] = [replace(r, relative=relative.get(r.key)) for r in rows]
            result.counts = await uow.pact.meeting_counts(start, end, hood)
            result.priorities = await uow.pact.priority_counts(start, end, hood)
        if change_date is not None:
            from bot.pact.model import before_after  # scipy, only when asked

            result.review = before_after(result.meetings, change_date, self.tz)
        return result

    def _month_start(self, month: str, *, next_month: bool = False) -> datetime:
        try:
            first = datetime.strptime(month, "%Y-%m")
        except ValueError:
            raise PactError(f"period {month!r} is not of the form YYYY-MM") from None
        if next_month:
            first = (first + timedelta(days=32)).replace(day=1)
        return first.replace(tzinfo=self.tz)

    async def insight_for_slack(self, slack_user_id: str, text: str) -> PactInsight:
        """``/pact [neighbourhood]`` in Slack (PactError: refused, or a bad filter)."""
        async with self.uow_factory() as uow:
            person = await self.slack_person(uow, slack_user_id)
        return await self.insight_for(f"person:{person.id}", person.role, text)

    async def insight_for_telegram(self, user_id: int, text: str) -> PactInsight:
        """``/pact [neighbourhood]`` in Telegram (PactError: refused, or a bad filter)."""
        async with self.uow_factory() as uow:
            person = await uow.people.by_telegram_user(user_id)
        if person is None or not person.active:
            log.info("refused a PACT request from an unknown Telegram user")
            raise PactError(
                f"Sorry, this is only for people invited by the {self.config.partnership.name}."
            )
        return await self.insight_for(f"person:{person.id}", person.role, text)

    async def insight_for(self, who: str, role: str | None, text: str) -> PactInsight:
        """``/pact [neighbourhood]`` for the Prevent officer and admins: the last 12 months.
        Refusals are audited; every view is audited with its filter."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            if role not in INSIGHT_ROLES:
                log.warning("refused a PACT insight request from %s (role %s)", who, role)
                await audit(uow, now, who, "pact.insight.refused")
                await uow.commit()
                raise PactError("PACT insight is for the Prevent and Cohesion Officer and admins.")
            await audit(uow, now, who, "pact.insight.view", text.strip()[:100])
            await uow.commit()
        until = f"{now.astimezone(self.tz):%Y-%m}"
        year, month = (int(x) for x in until.split("-"))
        index = year * 12 + month - 1 - 11
        since = f"{index // 12:04d}-{index % 12 + 1:02d}"
        return await self.insight(since, until, text.strip() or None)


def insight_message(insight: PactInsight) -> OutgoingMessage:
    """The insight in a few lines for chat."""
    from bot.pact.rules import findings

    scope = (
        f" ({insight.names.get(insight.neighbourhood, insight.neighbourhood)})"
        if (insight.neighbourhood)
        else ""
    )
    b = MessageBuilder().line(bold(f"PACT meetings, {insight.since} to {insight.until}{scope}"))
    for line in findings(insight):
        b.line(f"• {line}")
    return b.build()
