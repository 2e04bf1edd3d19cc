"""Summaries over synthetic national-scale history: 10 years, 20 wards, N reports.

Times the real ``SummaryService.build`` (every aggregate it shows, by SQL GROUP BY through
``SqlFigureRepo``) for a month (``2026-06``), a quarter (``2026-Q2``) and a year (``2026``), and
the month's figures computed by fetching the rows the summary covers and aggregating them in a
Python loop (the baseline). The Python result is checked against the SQL one, so both compute the
same thing.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text

from bench.common import BENCH_NOW, WARDS, BenchDatabase, make_config
from bot.app import build_services
from bot.clock import FakeClock
from bot.summaries.periods import shift
from bot.summaries.service import GROUPS
from sim.history import CATEGORIES, STRANDS
from storage import tables

MONTHS = [f"{y}-{m:02d}" for y in range(2017, 2027) for m in range(1, 13)]  # 120 months
MONTH = "2026-06"
QUARTER = "2026-Q2"
YEAR = "2026"
COLUMNS = (
    "reference",
    "person_id",
    "campaign_id",
    "source",
    "ward",
    "category",
    "level",
    "basis",
    "answers",
    "consent_contact",
    "consent_share",
    "form_version_id",
    "status",
    "created_at",
    "period",
)


def _rows(n: int, form_version_id: int, start: int, count: int) -> list[tuple[Any, ...]]:
    rng = random.Random(start)
    out = []
    for i in range(start, start + count):
        month = MONTHS[i * len(MONTHS) // n]  # evenly spread over the ten years
        created = datetime(int(month[:4]), int(month[5:]), 1 + i % 28, 12, tzinfo=UTC)
        out.append(
            (
                f"TR-{month}-{i:07d}",
                None,
                None,
                "history",
                rng.choice(WARDS),
                rng.choice(CATEGORIES),
                rng.choice((1, 2, 2, 3, 4)),
                rng.choice(("experienced", "evidenced", "potential")),
                '{"description": "(synthetic)"}',
                False,
                False,
                form_version_id,
                "closed",
                created,
                month,
            )
        )
    return out


async def _generate(db: BenchDatabase, engine: Any, n: int, form_version_id: int) -> None:
    chunk = 50_000
    if db.backend == "sqlite":
        await engine.dispose()  # the bulk load uses its own plain connection
        assert db.path is not None
        conn = sqlite3.connect(db.path)
        try:
            marks = ",".join("?" * len(COLUMNS))
            sql = f"INSERT INTO reports ({','.join(COLUMNS)}) VALUES ({marks})"
            for start in range(0, n, chunk):
                rows = _rows(n, form_version_id, start, min(chunk, n - start))
                conn.executemany(
                    sql,
                    [(*r[:13], r[13].replace(tzinfo=None).isoformat(" "), r[14]) for r in rows],
                )
            conn.commit()
            conn.execute("ANALYZE")
            conn.commit()
        finally:
            conn.close()
    else:
        raw = await (await engine.connect()).get_raw_connection()
        pg = raw.driver_connection
        try:
            for start in range(0, n, chunk):
                rows = _rows(n, form_version_id, start, min(chunk, n - start))
                await pg.copy_records_to_table("reports", records=rows, columns=list(COLUMNS))
            await pg.execute("ANALYZE")
        finally:
            raw.close()
    figures = [
        {"month": m, "ward": w, "strand": s, "count": (i * 7 + j) % 5, "imported_at": BENCH_NOW}
        for i, m in enumerate(MONTHS)
        for j, w in enumerate(WARDS)
        for s in STRANDS
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(tables.hate_crime_figures), figures)


async def python_month(engine: Any, month: str) -> dict[str, Any]:
    """The month's report figures by fetching its rows and counting them in a Python loop."""
    trailing = [shift(month, -k) for k in range(12, 0, -1)]
    wanted = {month, shift(month, -1), shift(month, -12), *trailing}
    t = tables.reports
    stmt = select(t.c.period, t.c.ward, t.c.category, t.c.level, t.c.basis).where(
        t.c.period.in_(sorted(wanted))
    )
    h = tables.hate_crime_figures
    hstmt = select(h.c.month, h.c.ward, h.c.strand, h.c.count).where(
        h.c.month.in_([*trailing, month])
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
        hrows = (await conn.execute(hstmt)).all()
    by: dict[str, Counter[tuple[str, str]]] = {g: Counter() for g in GROUPS}
    totals: Counter[str] = Counter()
    ward_month: Counter[tuple[str, str]] = Counter()
    trend: Counter[tuple[str, str]] = Counter()
    matrix: Counter[tuple[str, str]] = Counter()
    window = {*trailing, month}
    for period, ward, category, level, basis in rows:
        totals[period] += 1
        values = {"category": category, "ward": ward, "level": str(level), "basis": basis}
        for g in GROUPS:
            by[g][(period, values[g])] += 1
        if period in window:
            ward_month[(ward, period)] += 1
            trend[(period, category)] += 1
        if period == month:
            matrix[(ward, category)] += 1
    crimes: Counter[tuple[str, str, str]] = Counter()
    for m, w, s, c in hrows:
        crimes[(m, w, s)] += c
    return {"total": totals[month], "by": by, "ward_month": ward_month, "trend": trend}


async def _timed(coro: Any) -> float:
    t0 = time.perf_counter()
    await coro
    return time.perf_counter() - t0


async def run(
    n: int, backend: str = "sqlite", repeats: int = 5, profile: bool = True
) -> dict[str, Any]:
    """Generate ``n`` reports, then time the SQL summaries and the Python loop."""
    async with BenchDatabase(backend) as db:
        config = make_config(db.url, "http://127.0.0.1:9")
        services = await build_services(config, clock=FakeClock(BENCH_NOW))
        async with services.db.uow() as uow:
            form_id = (await services.forms.current(uow)).id
        assert form_id is not None
        t0 = time.perf_counter()
        await _generate(db, services.db.engine, n, form_id)
        generated = time.perf_counter() - t0
        engine = services.db.engine
        async with engine.connect() as conn:
            stored = await conn.scalar(text("SELECT count(*) FROM reports"))
        service = services.summaries

        async def build(month: str) -> Any:
            return await service.build(month, actor="bench")

        summary = await build(MONTH)  # warm-up (and the figures to check against)
        check = await python_month(engine, MONTH)
        category = next(b for b in summary.breakdowns if b.by == "category")
        agree = summary.total == check["total"] and all(
            now == check["by"]["category"][(MONTH, key)] for key, now, _, _ in category.rows
        )
        month_sql = [await _timed(build(MONTH)) for _ in range(repeats)]
        month_py = [await _timed(python_month(engine, MONTH)) for _ in range(max(3, repeats - 2))]
        await build(QUARTER)  # warm-up, as for the month
        await build(YEAR)
        quarter_sql = [await _timed(build(QUARTER)) for _ in range(repeats)]
        year_sql = [await _timed(build(YEAR)) for _ in range(repeats)]
        profile_text = ""
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled", interval=0.0005)
            profiler.start()
            await build(MONTH)
            profiler.stop()
            profile_text = profiler.output_text(unicode=False, color=False, show_all=False)
        await services.close()
    med = statistics.median
    return {
        "n": n,
        "stored": stored,
        "backend": backend,
        "generate_seconds": generated,
        "month_rows": summary.total,
        "agree": agree,
        "month_sql": month_sql,
        "month_py": month_py,
        "quarter_sql": quarter_sql,
        "year_sql": year_sql,
        "speedup_month": med(month_py) / med(month_sql),
        "profile": profile_text,
    }
