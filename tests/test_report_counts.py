"""``report_counts`` and ``report_cube`` (what the summary reads) stays equal to counting ``reports``, on both
backends: after inserts, changes of every counted column, deletes, rolled-back transactions and
concurrent writers, through the ORM as the services write and through plain SQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update

from bot.clock import FakeClock
from bot.domain import Report
from storage import tables
from tests.helpers import PEOPLE_CSV, services_for

WARDS = ["Bilston South", "Blakenhall", "Heath Town", "Park"]
CATEGORIES = ["race", "religion", "other"]
KEY = ("period", "ward", "category", "level", "basis")


async def _recount(engine: object) -> tuple[dict[tuple[object, ...], int], dict[tuple[object, ...], int]]:  # fmt: skip
    """(the kept counts without zeros, a fresh GROUP BY over reports), for both tables: keys
    of ``report_cube`` are tagged "cube", of ``report_counts`` "counts"."""
    r = tables.reports
    kept: dict[tuple[object, ...], int] = {}
    fresh: dict[tuple[object, ...], int] = {}
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        for tag, table, key in (
            ("counts", tables.report_counts, KEY),
            ("cube", tables.report_cube, KEY[:3]),
        ):
            stmt = select(*[table.c[k] for k in key], table.c.n)
            for row in (await conn.execute(stmt)).all():
                if row[-1] != 0:
                    kept[(tag, *row[:-1])] = int(row[-1])
            stmt = select(*[r.c[k] for k in key], func.count()).group_by(*[r.c[k] for k in key])
            for row in (await conn.execute(stmt)).all():
                fresh[(tag, *row[:-1])] = int(row[-1])
    return kept, fresh


def _report(rng: random.Random, i: int, form_id: int) -> Report:
    period = f"2026-{rng.randint(1, 12):02d}"
    return Report(
        reference=f"TR-{period}-C{i:05d}",
        person_id=1,
        source="adhoc",
        ward=rng.choice(WARDS),
        category=rng.choice(CATEGORIES),
        level=rng.randint(1, 4),
        basis=rng.choice(("experienced", "evidenced", "potential")),
        answers={},
        form_version_id=form_id,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        period=period,
    )


async def test_counts_follow_every_kind_of_write(db_url: str) -> None:
    clock = FakeClock(datetime(2027, 1, 2, tzinfo=UTC))
    rng = random.Random(7)
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        async with s.db.uow() as uow:
            form_id = (await s.forms.current(uow)).id
            assert form_id is not None
        made = 0
        for round_ in range(6):
            async with s.db.uow() as uow:
                # Inserts through the repository, as the services write.
                for _ in range(40):
                    await uow.reports.add(_report(rng, made, form_id))
                    made += 1
                ids = list((await uow._session.scalars(select(tables.reports.c.id))).all())
                # Changes of counted columns through the ORM (as recategorising does)...
                for report_id in rng.sample(ids, 8):
                    report = await uow.reports.get(report_id)
                    assert report is not None
                    report.category = rng.choice(CATEGORIES)
                    report.ward = rng.choice(WARDS)
                    report.level = rng.randint(1, 4)
                # ...and in plain SQL, several columns and rows at once, some left as they were.
                r = tables.reports
                chosen = rng.sample(ids, 6)
                await uow._session.execute(
                    update(r).where(r.c.id.in_(chosen)).values(period="2025-12", basis="potential")
                )
                await uow._session.execute(
                    update(r).where(r.c.id == chosen[0]).values(ward=r.c.ward)  # unchanged
                )
                await uow._session.execute(delete(r).where(r.c.id.in_(rng.sample(ids, 5))))
                await uow.commit()
            kept, fresh = await _recount(s.db.engine)
            assert kept == fresh, f"round {round_}"
        # A rolled-back transaction leaves the counts as they were.
        async with s.db.uow() as uow:
            for _ in range(10):
                await uow.reports.add(_report(rng, made, form_id))
                made += 1
            await uow._session.execute(delete(tables.reports))
            await uow.rollback()
        assert await _recount(s.db.engine) == (fresh, fresh)
        # Every report gone: nothing is counted, and the summary says so.
        async with s.db.uow() as uow:
            await uow._session.execute(delete(tables.reports))
            await uow.commit()
        assert await _recount(s.db.engine) == ({}, {})
        summary = await s.summaries.build("2026-12", actor="t")
        assert summary.total == summary.previous_total == summary.last_year_total == 0


async def test_concurrent_writers_are_all_counted(db_url: str) -> None:
    """Twenty transactions at once, all adding reports to the same few counts (on PostgreSQL
    they queue on the counts' row locks; on SQLite on its single writer)."""
    clock = FakeClock(datetime(2027, 1, 2, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        async with s.db.uow() as uow:
            form_id = (await s.forms.current(uow)).id
            assert form_id is not None

        async def writer(w: int) -> None:
            rng = random.Random(w)
            async with s.db.uow() as uow:
                for i in range(5):
                    report = _report(rng, w * 100 + i, form_id)
                    report.period, report.ward, report.category = "2026-12", "Park", "race"
                    report.level, report.basis = 2, "experienced"
                    await uow.reports.add(report)
                await uow.commit()

        await asyncio.gather(*(writer(w) for w in range(20)))
        kept, fresh = await _recount(s.db.engine)
        assert (
            kept
            == fresh
            == {
                ("counts", "2026-12", "Park", "race", 2, "experienced"): 100,
                ("cube", "2026-12", "Park", "race"): 100,
            }
        )


async def test_changing_a_report_queues_behind_new_reports_of_its_period(db_url: str) -> None:
    """Recategorising takes the period's reference counter before the count triggers lock
    their rows, as adding reports does: a transaction numbering a new report of that period
    waits for it (so the two cannot lock the count rows in opposite orders and deadlock)."""
    clock = FakeClock(datetime(2027, 1, 2, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        async with s.db.uow() as uow:
            assert await uow.reports.next_number("TR-2026-12") == 1
            await uow.commit()
        async with s.db.uow() as holder:
            await holder.reports.lock_period("2026-12")

            async def number() -> int:
                async with s.db.uow() as uow:
                    n = await uow.reports.next_number("TR-2026-12")
                    await uow.commit()
                    return n

            waiting = asyncio.create_task(number())
            await asyncio.sleep(0.5)
            assert not waiting.done()  # it queues behind the holder
            await holder.commit()
        assert await asyncio.wait_for(waiting, 10) == 2
