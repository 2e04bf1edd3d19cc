"""PACT meetings, attendance, priorities and recordings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, delete, func, literal_column, or_, select, union_all
from sqlalchemy.orm import aliased

from bot.domain import (
    MeetingStatus,
    PactAttendance,
    PactMeeting,
    PactPriority,
    PactRecording,
    PriorityStatus,
)
from storage import tables
from storage.repositories.base import _Repo


class SqlPactRepo(_Repo):
    """PACT meetings, attendance, priorities, chairs' recordings, and the attendance analysis
    (one GROUP BY per grouping, in one statement)."""

    async def add_meeting(self, meeting: PactMeeting) -> None:
        self.session.add(meeting)
        await self.session.flush()

    async def get_meeting(self, meeting_id: int) -> PactMeeting | None:
        return await self.session.get(PactMeeting, meeting_id)

    async def reload_meeting(self, meeting: PactMeeting) -> None:
        await self.session.flush()  # a change made in this transaction is kept, not reread
        await self.session.refresh(meeting)

    async def meeting_at(self, neighbourhood: str, starts_at: datetime) -> PactMeeting | None:
        c = tables.pact_meetings.c
        stmt = select(PactMeeting).where(c.neighbourhood == neighbourhood, c.starts_at == starts_at)
        return (await self.session.scalars(stmt)).first()

    async def meetings_between(
        self, start: datetime, end: datetime, *, field: str = "starts_at"
    ) -> Sequence[PactMeeting]:
        """Meetings whose ``starts_at`` (or ``ends_at``) falls in [start, end)."""
        c = tables.pact_meetings.c
        column = c.ends_at if field == "ends_at" else c.starts_at
        stmt = select(PactMeeting).where(column >= start, column < end).order_by(column, c.id)
        return (await self.session.scalars(stmt)).all()

    async def for_chair(self, person_id: int) -> Sequence[PactMeeting]:
        c = tables.pact_meetings.c
        stmt = select(PactMeeting).where(c.chair_id == person_id).order_by(c.starts_at, c.id)
        return (await self.session.scalars(stmt)).all()

    async def for_neighbourhood(self, neighbourhood: str) -> Sequence[PactMeeting]:
        c = tables.pact_meetings.c
        stmt = (
            select(PactMeeting).where(c.neighbourhood == neighbourhood).order_by(c.starts_at, c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def set_attendance(self, meeting_id: int, person_ids: Sequence[int]) -> None:
        t = tables.pact_attendance
        await self.session.execute(delete(t).where(t.c.meeting_id == meeting_id))
        for person_id in sorted(set(person_ids)):
            self.session.add(PactAttendance(meeting_id=meeting_id, person_id=person_id))
        await self.session.flush()

    async def attendance(self, meeting_id: int) -> list[int]:
        c = tables.pact_attendance.c
        stmt = select(c.person_id).where(c.meeting_id == meeting_id).order_by(c.person_id)
        return list((await self.session.scalars(stmt)).all())

    async def add_priority(self, priority: PactPriority) -> None:
        self.session.add(priority)
        await self.session.flush()

    async def get_priority(self, priority_id: int) -> PactPriority | None:
        return await self.session.get(PactPriority, priority_id)

    async def open_priorities(self, neighbourhood: str) -> Sequence[PactPriority]:
        c = tables.pact_priorities.c
        stmt = (
            select(PactPriority)
            .where(c.neighbourhood == neighbourhood, c.status == PriorityStatus.OPEN.value)
            .order_by(c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def priorities_reviewed_or_set(self, meeting_id: int) -> Sequence[PactPriority]:
        c = tables.pact_priorities.c
        stmt = (
            select(PactPriority)
            .where(or_(c.meeting_id == meeting_id, c.reviewed_meeting_id == meeting_id))
            .order_by(c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def add_recording(self, recording: PactRecording) -> None:
        self.session.add(recording)
        await self.session.flush()

    async def get_recording(self, recording_id: int) -> PactRecording | None:
        return await self.session.get(PactRecording, recording_id)

    async def active_recording(self, person_id: int) -> PactRecording | None:
        c = tables.pact_recordings.c
        stmt = (
            select(PactRecording)
            .where(c.person_id == person_id, c.status == "active")
            .order_by(c.id.desc())
        )
        return (await self.session.scalars(stmt)).first()

    # ----------------------------------------------------------------- analysis

    def _recorded(self, since: datetime, until: datetime, neighbourhood: str | None) -> Any:
        m = tables.pact_meetings
        conditions = [
            m.c.status == MeetingStatus.RECORDED.value,
            m.c.starts_at >= since,
            m.c.starts_at < until,
        ]
        if neighbourhood is not None:
            conditions.append(m.c.neighbourhood == neighbourhood)
        return and_(*conditions)

    async def meeting_rows(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> list[tuple[Any, ...]]:
        """(id, neighbourhood, starts_at, venue, format, weekday, slot, public, new, invited,
        partners present) for each recorded meeting, in date order."""
        m, a = tables.pact_meetings, tables.pact_attendance
        present = (
            select(func.count()).where(a.c.meeting_id == m.c.id).correlate(m).scalar_subquery()
        )
        stmt = (
            select(
                m.c.id,
                m.c.neighbourhood,
                m.c.starts_at,
                m.c.venue,
                m.c.format,
                m.c.weekday,
                m.c.slot,
                m.c.public_attendees,
                m.c.new_attendees,
                m.c.partners_invited,
                present,
            )
            .where(self._recorded(since, until, neighbourhood))
            .order_by(m.c.starts_at, m.c.id)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]

    async def attendance_by(
        self,
        groups: Sequence[str],
        since: datetime,
        until: datetime,
        neighbourhood: str | None = None,
    ) -> dict[str, list[tuple[str, int, float, int, int, int, int]]]:
        """Recorded meetings grouped by each of ``groups`` (one statement: a GROUP BY per group
        joined by UNION ALL): group -> [(key, meetings, mean public attendance, new attendees,
        public attendees, partners present, partners invited)], in key order."""
        allowed = {"slot", "weekday", "venue", "format", "neighbourhood"}
        if not set(groups) <= allowed:
            raise ValueError(f"cannot group meetings by {sorted(set(groups) - allowed)}")
        m, a = tables.pact_meetings, tables.pact_attendance
        present = (
            select(func.count()).where(a.c.meeting_id == m.c.id).correlate(m).scalar_subquery()
        )
        inner = (
            select(
                *(m.c[g] for g in groups),
                m.c.public_attendees.label("pub"),
                m.c.new_attendees.label("new"),
                present.label("present"),
                m.c.partners_invited.label("invited"),
            )
            .where(self._recorded(since, until, neighbourhood))
            .cte("recorded")
        )
        parts = [
            select(
                literal_column(str(i)).label("g"),
                # One column for every group's key (the weekday is a number): as text.
                cast(inner.c[g], String).label("k"),
                func.count(),
                func.avg(inner.c.pub * 1.0),
                func.sum(inner.c.new),
                func.sum(inner.c.pub),
                func.sum(inner.c.present),
                func.sum(inner.c.invited),
            ).group_by(inner.c[g])
            for i, g in enumerate(groups)
        ]
        stmt = union_all(*parts).order_by("g", "k")
        out: dict[str, list[tuple[str, int, float, int, int, int, int]]] = {g: [] for g in groups}
        for i, k, n, mean, new, pub, pres, inv in (await self.session.execute(stmt)).all():
            out[groups[i]].append(
                (str(k), int(n), float(mean or 0), int(new or 0), int(pub or 0), int(pres or 0),
                 int(inv or 0))
            )  # fmt: skip
        return out

    async def meeting_counts(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> dict[str, int]:
        """Meetings in the window by status."""
        m = tables.pact_meetings
        stmt = (
            select(m.c.status, func.count())
            .where(m.c.starts_at >= since, m.c.starts_at < until)
            .group_by(m.c.status)
        )
        if neighbourhood is not None:
            stmt = stmt.where(m.c.neighbourhood == neighbourhood)
        return {str(s): int(n) for s, n in (await self.session.execute(stmt)).all()}

    async def priority_counts(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> dict[str, int]:
        """Priorities set, closed and carried (reviewed and kept open) in the window, and
        open now."""
        p, m = tables.pact_priorities, tables.pact_meetings
        reviewed = aliased(m)
        hood = [p.c.neighbourhood == neighbourhood] if neighbourhood is not None else []
        set_ = (
            select(func.count())
            .select_from(p)
            .where(p.c.created_at >= since, p.c.created_at < until, *hood)
        )
        closed = (
            select(func.count())
            .select_from(p)
            .where(
                p.c.status == PriorityStatus.CLOSED.value,
                p.c.closed_at >= since,
                p.c.closed_at < until,
                *hood,
            )
        )
        carried = (
            select(func.count())
            .select_from(p.join(reviewed, reviewed.c.id == p.c.reviewed_meeting_id))
            .where(
                p.c.status == PriorityStatus.OPEN.value,
                reviewed.c.starts_at >= since,
                reviewed.c.starts_at < until,
                *hood,
            )
        )
        open_ = (
            select(func.count())
            .select_from(p)
            .where(p.c.status == PriorityStatus.OPEN.value, *hood)
        )
        # Of those set in the window, how many are resolved (closed) now: the resolution rate.
        resolved = set_.where(p.c.status == PriorityStatus.CLOSED.value)
        names = ("set", "resolved", "closed", "carried", "open")
        stmt = select(
            *(
                q.scalar_subquery().label(name)
                for name, q in zip(names, (set_, resolved, closed, carried, open_), strict=True)
            )
        )
        row = (await self.session.execute(stmt)).one()  # one trip for the five counts
        return {name: int(n) for name, n in zip(names, row, strict=True)}
