"""PACT meetings: scheduling, reminders with a calendar invitation, recording, priorities'
follow-through, and the attendance insight.

Meetings are created by ``tensionbot pact schedule`` / ``pact import`` or by a chair in chat.
:meth:`PactService.tick` (a scheduler job, safe to run twice) sends the reminders with an ``.ics``
file, asks owner teams to report back on open priorities before the next meeting, prompts the
chair to record the meeting when it ends, chases them after ``record_chase_hours``, and gives the
chair the "you said, we did" sheet when the next meeting starts. A record (from the Telegram
conversation or a modal) is checked by :func:`validate_record` and stored by
:meth:`PactService.apply_record` in one unit of work.

The service is put together from the PACT room's parts, each under 500 lines: ``base`` (shared
configuration, who is invited, sending), ``prompts`` (the timed work), ``records`` (chairs'
recordings, owners' report-backs) and this module (scheduling, insight).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.common import audit, clean_text, local_time
from bot.domain import (
    MAX_NOTE,
    MeetingFormat,
    MeetingStatus,
    OutboxMessage,
    PactMeeting,
    Role,
    Someone,
)
from bot.messages import MessageBuilder, OutgoingMessage, bold
from bot.pact.announce import announce_change, on_public_sent
from bot.pact.base import MAX_TITLE, PactError
from bot.pact.prompts import PactPrompts
from bot.pact.records import (
    MeetingRecord,
    PactRecords,
    RecordContext,
    parse_count,
    validate_record,
)
from bot.pact.rules import (
    FORMAT_LABELS,
    GroupRow,
    MeetingRow,
    PactInsight,
    relative_attendance,
    slot_of,
)
from bot.people.identity import Who
from bot.ports import SendResult, UnitOfWork

log = logging.getLogger(__name__)

__all__ = [  # the PACT room's public names, wherever they are defined
    "MAX_NOTE",
    "MAX_TITLE",
    "MeetingImport",
    "MeetingRecord",
    "PactError",
    "PactService",
    "RecordContext",
    "insight_message",
    "parse_count",
    "validate_record",
]

CSV_HEADER = ("neighbourhood", "date", "time", "venue", "format", "chair_email")
INSIGHT_ROLES = frozenset({Role.PREVENT_OFFICER.value, Role.ADMIN.value})
GROUPS = ("slot", "weekday", "venue", "format", "neighbourhood")


@dataclass(frozen=True)
class MeetingImport:
    """What a CSV import of meetings did."""

    created: int
    updated: int
    unchanged: int


class PactService(PactPrompts, PactRecords):
    """PACT meetings, their reminders, records and insight."""

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
        self.wake()  # its public announcement, if any
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
            if existing.status != MeetingStatus.SCHEDULED.value:
                # Cancelled (or held and recorded) since the season was first imported: a
                # re-import leaves it as it is, and tells nobody anything again.
                return existing, "unchanged"
            new = (venue, fmt, chair.id, starts + timedelta(minutes=minutes))
            old = (existing.venue, existing.format, existing.chair_id, existing.ends_at)
            if new == old:
                return existing, "unchanged"
            existing.venue, existing.format, existing.chair_id, existing.ends_at = new
            await audit(uow, now, actor, "pact.reschedule", f"pact-meeting:{existing.id}")
            await announce_change(uow, self.config, existing, now)
            await self.update_invitations(uow, existing, now)
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
        await announce_change(uow, self.config, meeting, now)
        return meeting, "created"

    async def import_csv(self, text: str, *, source: str, actor: str) -> MeetingImport:
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
                        duration_minutes=int(raw) if raw.isascii() and raw.isdigit() else None,
                        allow_past=True,
                        update=True,
                    )
                    counts[what] += 1
                except PactError as exc:
                    errors.append(f"{source}:{line}: {exc}")
            if errors:
                raise PactError("\n".join(errors))
            await uow.commit()
        self.wake()  # public announcements of new or changed meetings, if any
        return MeetingImport(**counts)

    async def move(
        self,
        meeting_id: int,
        *,
        on: str | None = None,
        at: str | None = None,
        venue: str | None = None,
        format: str | None = None,
        actor: str,
    ) -> PactMeeting:
        """Move an upcoming meeting to another date, time, venue or format (what is not given
        stays); announced in public like any change. PactError names whatever is wrong."""
        async with self.uow_factory() as uow:
            m = await self._upcoming(uow, meeting_id)
            local = m.starts_at.astimezone(self.tz)
            try:
                day = date.fromisoformat(on.strip()) if on else local.date()
            except ValueError:
                raise PactError(f"date {on!r} is not of the form YYYY-MM-DD") from None
            try:
                clock = time.fromisoformat(at.strip()) if at else local.time()
            except ValueError:
                raise PactError(f"time {at!r} is not of the form HH:MM") from None
            starts = datetime.combine(day, clock, tzinfo=self.tz)
            now = self.clock.now()
            if starts < now:
                raise PactError(f"{starts:%Y-%m-%d %H:%M} is in the past")
            clash = await uow.pact.meeting_at(m.neighbourhood, starts)
            if clash is not None and clash.id != m.id:
                raise PactError(f"there is already a meeting at {starts:%Y-%m-%d %H:%M}")
            if venue is not None:
                m.venue = clean_text(venue)
                if not 2 <= len(m.venue) <= 200:
                    raise PactError("venue: give the place (2 to 200 characters)")
            if format is not None:
                fmt = format.strip().casefold().replace(" ", "_").replace("-", "_")
                if fmt not in {f.value for f in MeetingFormat}:
                    raise PactError(
                        f"format {format!r} is not one of "
                        f"{', '.join(f.value for f in MeetingFormat)}"
                    )
                m.format = fmt
            m.ends_at = starts + (m.ends_at - m.starts_at)
            m.starts_at, m.weekday, m.slot = starts, starts.weekday(), slot_of(starts)
            await audit(uow, now, actor, "pact.reschedule", f"pact-meeting:{m.id}")
            await announce_change(uow, self.config, m, now)
            await self.update_invitations(uow, m, now)
            await uow.commit()
        self.wake()
        return m

    async def cancel(self, meeting_id: int, *, actor: str) -> PactMeeting:
        """Call off an upcoming meeting (announced in public; it stays on the page, struck
        through). PactError says why not."""
        async with self.uow_factory() as uow:
            m = await self._upcoming(uow, meeting_id)
            now = self.clock.now()
            m.status = MeetingStatus.CANCELLED.value
            await audit(uow, now, actor, "pact.cancelled", f"pact-meeting:{m.id}")
            await announce_change(uow, self.config, m, now)
            await self.update_invitations(uow, m, now)
            await uow.commit()
        self.wake()
        return m

    async def _upcoming(self, uow: UnitOfWork, meeting_id: int) -> PactMeeting:
        m = await uow.pact.get_meeting(meeting_id)
        if m is None:
            raise PactError(f"meeting {meeting_id} is not known (see tensionbot pact list)")
        if m.status != MeetingStatus.SCHEDULED.value:
            raise PactError(f"meeting {meeting_id} is {m.status}")
        if m.starts_at <= self.clock.now():
            raise PactError(f"meeting {meeting_id} has already started")
        return m

    async def schedule_in_chat(self, uow: UnitOfWork, person: Someone, text: str) -> str:
        """``/schedule [neighbourhood] YYYY-MM-DD HH:MM FORMAT VENUE...`` from a chair: the
        answer to show (a PactError's message when refused)."""
        words = text.split()
        named = (
            words.pop(0)
            if words and not (words[0][:1].isascii() and words[0][:1].isdigit())
            else ""
        )
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

    async def chaired_for_scheduling(self, uow: UnitOfWork, person: Someone, named: str) -> str:
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

    async def chairs(self, uow: UnitOfWork, person: Someone) -> bool:
        """Whether this person chairs any neighbourhood's PACT meetings."""
        return bool(await self._chaired(uow, person))

    async def _chaired(self, uow: UnitOfWork, person: Someone) -> list[str]:
        """Neighbourhoods this person chairs (configured, or chaired a meeting there)."""
        keys = {
            h.key
            for h in self.hoods.values()
            if (h.chair or "").casefold() == (person.email.casefold())
        }
        assert person.id is not None
        keys |= {m.neighbourhood for m in await uow.pact.for_chair(person.id)}
        return sorted(keys)

    async def on_sent(
        self, uow: UnitOfWork, row: OutboxMessage, result: SendResult, now: datetime
    ) -> None:
        """The dispatcher's hook: a public post the platform refused is reported to the admins
        (:func:`bot.pact.announce.on_public_sent`)."""
        await on_public_sent(uow, row, result, self.clock.now(), self.config)

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
            grouped = await uow.pact.attendance_by(GROUPS, start, end, hood)
            for group in GROUPS:
                # 'vs usual' leave-one-out, total over total (bot/pact/rules.py), from the meetings.
                relative = relative_attendance(result.meetings, group)
                result.by[group] = [
                    GroupRow(key, n, mean, new, public, relative.get(key), present, invited)
                    for key, n, mean, new, public, present, invited in grouped[group]
                ]
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

    async def ask_insight(self, platform: str, user_id: str, text: str) -> PactInsight:
        """``/pact [neighbourhood]`` in chat, from a user id on ``platform`` (PactError: refused,
        or a bad filter); the platform renders the insight it gets."""
        async with self.uow_factory() as uow:
            person = await self._person(uow, Who(platform, str(user_id)))
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
            # The filter as a neighbourhood key, never the words typed (they could name
            # someone, and the audit log is append-only, beyond erasure).
            try:
                hood = self.neighbourhood(text).key if text.strip() else ""
            except PactError:
                hood = "unknown"
            await audit(uow, now, who, "pact.insight.view", hood)
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
