"""Hate-crime figures and the summary's GROUP BY aggregations over reports and returns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text

from bot.domain import AWAITING
from storage import tables
from storage.repositories.base import _Repo


class _Returns(_Repo):
    async def returns_by(self, month: str, by: str) -> dict[tuple[str, str], int]:
        """(role or ward, delivery status) -> people, for the month's monthly return."""
        if by == "role":
            sql = (
                "SELECT p.role, d.status, count(*) FROM deliveries d "
                "JOIN campaigns c ON c.id = d.campaign_id JOIN people p ON p.id = d.person_id "
                "WHERE c.period = :m AND c.kind = 'monthly' GROUP BY p.role, d.status"
            )
        elif by == "ward" and self.session.get_bind().dialect.name == "postgresql":
            sql = (
                "SELECT w.ward, d.status, count(*) FROM deliveries d "
                "JOIN campaigns c ON c.id = d.campaign_id JOIN people p ON p.id = d.person_id "
                "CROSS JOIN LATERAL json_array_elements_text(p.wards) AS w(ward) "
                "WHERE c.period = :m AND c.kind = 'monthly' GROUP BY w.ward, d.status"
            )
        elif by == "ward":
            sql = (
                "SELECT je.value, d.status, count(*) FROM deliveries d "
                "JOIN campaigns c ON c.id = d.campaign_id JOIN people p ON p.id = d.person_id, "
                "json_each(p.wards) AS je "
                "WHERE c.period = :m AND c.kind = 'monthly' GROUP BY je.value, d.status"
            )
        else:
            raise ValueError(f"cannot group returns by {by!r}")
        rows = await self.session.execute(text(sql), {"m": month})
        return {(str(k), str(s)): int(n) for k, s, n in rows.all()}

    async def outstanding(self, month: str) -> list[str]:
        """Names of people who have not answered the month's return (for admins only)."""
        p, d, c = tables.people, tables.deliveries, tables.campaigns
        stmt = (
            select(p.c.name)
            .join(d, d.c.person_id == p.c.id)
            .join(c, c.c.id == d.c.campaign_id)
            .where(c.c.period == month, c.c.kind == "monthly", d.c.status.in_(AWAITING))
            .order_by(p.c.name)
        )
        return list((await self.session.scalars(stmt)).all())

    async def action_times(
        self, month: str
    ) -> list[
        tuple[str, str, int, str, str, datetime, datetime | None, datetime | None, datetime | None]
    ]:
        """(team, state, escalation level, ward, category, created, acknowledged, closed,
        acknowledge-by) per action on the month's reports: the summary works out durations,
        censoring and what was overdue when."""
        a, r = tables.actions, tables.reports
        stmt = (
            select(
                a.c.team_key,
                a.c.state,
                a.c.escalation_level,
                r.c.ward,
                r.c.category,
                a.c.created_at,
                a.c.acknowledged_at,
                a.c.closed_at,
                a.c.ack_due_at,
            )
            .join(r, r.c.id == a.c.report_id)
            .where(r.c.period == month)
        )
        return [
            (str(t), str(st), int(lv), str(w), str(c), cr, ack, cl, due)
            for t, st, lv, w, c, cr, ack, cl, due in (await self.session.execute(stmt)).all()
        ]

    async def tensions_by(
        self, months: Sequence[str], first: str, second: str
    ) -> dict[tuple[str, str], int]:
        """Reports in ``months`` counted by two columns (e.g. period x category)."""
        allowed = {"period", "ward", "category", "level", "basis"}
        if not {first, second} <= allowed:
            raise ValueError("cannot group by those columns")
        t = tables.reports
        a, b = t.c[first], t.c[second]
        stmt = select(a, b, func.count()).where(t.c.period.in_(list(months))).group_by(a, b)
        return {(str(x), str(y)): int(n) for x, y, n in (await self.session.execute(stmt)).all()}

    async def hate_crime_by_strand(self, months: Sequence[str]) -> dict[tuple[str, str, str], int]:
        """(month, ward, strand) -> count (one row each: the three are unique together)."""
        t = tables.hate_crime_figures
        stmt = select(t.c.month, t.c.ward, t.c.strand, t.c.count).where(t.c.month.in_(list(months)))
        return {(m, w, s): int(n) for m, w, s, n in (await self.session.execute(stmt)).all()}


class SqlFigureRepo(_Returns):
    """Hate-crime figures, and GROUP BY aggregations over reports (indexed on period, ward)."""

    async def replace_months(
        self, months: Sequence[str], rows: Sequence[tuple[str, str, str, int]], at: datetime
    ) -> None:
        t = tables.hate_crime_figures
        await self.session.execute(delete(t).where(t.c.month.in_(list(months))))
        if rows:
            await self.session.execute(
                insert(t),
                [
                    {"month": m, "ward": w, "strand": s, "count": n, "imported_at": at}
                    for m, w, s, n in rows
                ],
            )

    async def tension_cube(self, months: Sequence[str]) -> dict[tuple[str, str, str], int]:
        """(period, ward, category) -> reports, over ``months``, most of the summary is derived
        from: read from the trigger-kept ``report_cube``, a few thousand rows at most."""
        t = tables.report_cube
        # One row per key already (the primary key): no grouping.
        stmt = select(t.c.period, t.c.ward, t.c.category, t.c.n).where(
            t.c.period.in_(list(months)), t.c.n > 0
        )
        return {(p, w, c): int(k) for p, w, c, k in (await self.session.execute(stmt)).all()}

    async def tension_levels(
        self, months: Sequence[str], ward: str | None = None, category: str | None = None
    ) -> dict[tuple[str, str, str], int]:
        """(period, level, basis) -> reports over ``months`` (optionally one ward/category)."""
        t = tables.report_counts
        n = func.sum(t.c.n)
        stmt = (
            select(t.c.period, t.c.level, t.c.basis, n)
            .where(t.c.period.in_(list(months)))
            .group_by(t.c.period, t.c.level, t.c.basis)
            .having(n > 0)
        )
        if ward is not None:
            stmt = stmt.where(t.c.ward == ward)
        if category is not None:
            stmt = stmt.where(t.c.category == category)
        rows = (await self.session.execute(stmt)).all()
        return {(p, str(lv), b): int(n) for p, lv, b, n in rows}
