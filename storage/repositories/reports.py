"""Reports and their reference counters (the conversations that collect them: .conversations)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain import Report
from storage import tables
from storage.repositories.base import _Repo


class SqlReportRepo(_Repo):
    """Reports."""

    async def get(self, report_id: int) -> Report | None:
        return await self.session.get(Report, report_id)

    async def add(self, report: Report) -> None:
        self.session.add(report)
        await self.session.flush()

    async def for_person(self, person_id: int, limit: int = 20) -> Sequence[Report]:
        c = tables.reports.c
        stmt = (
            select(Report)
            .where(c.person_id == person_id)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def for_campaign(self, campaign_id: int) -> Sequence[Report]:
        c = tables.reports.c
        stmt = select(Report).where(c.campaign_id == campaign_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def count_by_campaign_person(self, campaign_id: int) -> dict[int, int]:
        c = tables.reports.c
        stmt = (
            select(c.person_id, func.count())
            .where(c.campaign_id == campaign_id)
            .group_by(c.person_id)
        )
        return {pid: n for pid, n in (await self.session.execute(stmt)).all()}

    async def lock_period(self, period: str) -> None:
        """Queue behind (and hold off) every other writer of ``period``'s reports.

        Adding reports takes the period's reference counter first (``next_number``), so
        changing a counted column of a report takes the same row lock before the count
        triggers lock their rows: every transaction then locks the counts in one order and
        two cannot deadlock. (Reports of other periods never share a count row.)"""
        t = tables.reference_counters
        await self.session.execute(
            update(t).where(t.c.prefix == f"TR-{period}").values(last=t.c.last)
        )

    async def next_number(self, prefix: str) -> int:
        """Atomically take the next number for a reference prefix (e.g. ``TR-2026-11``)."""
        t = tables.reference_counters
        stmt = update(t).where(t.c.prefix == prefix).values(last=t.c.last + 1).returning(t.c.last)
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        if value is not None:
            return int(value)
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(t).values(prefix=prefix, last=1))
            return 1
        except IntegrityError:  # another transaction created the row first
            value = (await self.session.execute(stmt)).scalar_one()
            return int(value)
