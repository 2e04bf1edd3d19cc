"""Summaries over synthetic national-scale history: 10 years, 20 wards, N reports.

Times the real ``SummaryService.build`` (every aggregate it shows, by SQL GROUP BY through
``SqlFigureRepo`` over the trigger-kept count tables) for a month (``2026-06``), a quarter
(``2026-Q2``) and a year (``2026``).

The baseline, like for like: **the same build, with its report counts made by a Python loop
over the report rows** (:class:`LoopFigures`: the rows of every month the summary covers fetched
once and counted in a loop, as a developer without the count tables would). Everything else the
build does is the same code on both sides (the pockets' statistical tests, hate crime, return
rates, actions, the PACT insight, the audit row), so the ratio is that of the whole summary a
person waits for. The two summaries are checked equal (*agree*). The figure reads alone (the
report counts and the police rows: the part that differs) are timed too, both ways.
"""

from __future__ import annotations

import gc
import random
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text

from bench.common import BENCH_NOW, WARDS, BenchDatabase, make_config
from bot.app import Services, build_services
from bot.clock import FakeClock
from bot.summaries.periods import shift
from bot.summaries.service import SummaryService
from bot.summaries.stats import BASELINE_MONTHS, SUSTAINED_MONTHS
from sim.history import CATEGORIES, STRANDS
from storage import tables
from storage.database import SqlUnitOfWork
from storage.repositories.figures import SqlFigureRepo

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


class LoopFigures(SqlFigureRepo):
    """The summary's figure reads as a Python loop over rows: the report rows of the months
    asked for fetched once (per build) and counted in Python. The police figures are already
    one row per (month, ward, strand), so they are read as the real repository reads them."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self._rows: list[Any] | None = None
        self._months: set[str] = set()

    async def _fetch(self, months: Sequence[str]) -> list[Any]:
        if self._rows is None or not set(months) <= self._months:
            t = tables.reports
            stmt = select(t.c.period, t.c.ward, t.c.category, t.c.level, t.c.basis).where(
                t.c.period.in_(sorted(months))
            )
            self._rows = list((await self.session.execute(stmt)).all())
            self._months = set(months)
        return self._rows

    async def tension_cube(self, months: Sequence[str]) -> dict[tuple[str, str, str], int]:
        wanted = set(months)
        cube: Counter[tuple[str, str, str]] = Counter()
        for period, ward, category, _, _ in await self._fetch(months):
            if period in wanted:
                cube[(period, ward, category)] += 1
        return dict(cube)

    async def tension_levels(
        self, months: Sequence[str], ward: str | None = None, category: str | None = None
    ) -> dict[tuple[str, str, str], int]:
        wanted = set(months)
        levels: Counter[tuple[str, str, str]] = Counter()
        for period, ward_, category_, level, basis in await self._fetch(months):
            if (
                period in wanted
                and (ward is None or ward_ == ward)
                and (category is None or category_ == category)
            ):
                levels[(period, str(level), basis)] += 1
        return dict(levels)


class LoopUnitOfWork(SqlUnitOfWork):
    """The product's unit of work with :class:`LoopFigures` as its figure repository."""

    async def __aenter__(self) -> LoopUnitOfWork:
        await super().__aenter__()
        assert self._session is not None
        self.figures = LoopFigures(self._session)
        return self


def loop_service(services: Services) -> SummaryService:
    """The product's summary service, reading its figures through :class:`LoopFigures`."""
    real = services.summaries
    sessions = services.db.sessions

    def uow() -> LoopUnitOfWork:
        return LoopUnitOfWork(sessions)

    return SummaryService(real.config, uow, real.clock, real.forms, real.pact, charts=real.charts)


def month_reads(month: str) -> tuple[list[str], list[str]]:
    """The months whose report counts a month's build reads (its trend and the pockets'
    history), and those of its level/basis breakdown (the month, the one before, last year)."""
    history = [shift(month, -j) for j in range(BASELINE_MONTHS + SUSTAINED_MONTHS - 1, 0, -1)]
    trend = [shift(month, -j) for j in range(12, -1, -1)]
    return sorted({*history, *trend}), sorted({month, shift(month, -1), shift(month, -12)})


async def figure_reads(service: SummaryService, month: str) -> int:
    """Only the figure reads of a month's build (what differs between the SQL build and the
    loop): the report counts and the police rows."""
    months, wanted = month_reads(month)
    async with service.uow_factory() as uow:
        f = uow.figures
        cube = await f.tension_cube(months)
        levels = await f.tension_levels(wanted)
        police = await f.hate_crime_by_strand(months)
    return len(cube) + len(levels) + len(police)


async def _timed(coro: Any, cpu: list[float] | None = None) -> float:
    """The wall time of ``coro`` (and its CPU time appended to ``cpu``)."""
    # Each call starts with the garbage of the one before collected (as timeit does by
    # disabling the collector): otherwise the loop's 125,000 rows at 1M are collected during
    # whichever build comes next, the SQL one included (seen: 20 ms builds taking 110 ms of CPU).
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    await coro
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return wall


async def run(
    n: int, backend: str = "sqlite", repeats: int = 5, profile: bool = True
) -> dict[str, Any]:
    """Generate ``n`` reports, then time the SQL summaries and the same build over a Python
    loop (the whole build, and the figure reads alone)."""
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
        loop = loop_service(services)

        async def build(month: str, on: SummaryService = service) -> Any:
            return await on.build(month, actor="bench")

        summary = await build(MONTH)  # warm-up (and the figures to check against)
        agree = summary == await build(MONTH, loop)  # every figure, pockets and PACT included
        # Taken in turns, SQL then loop, so that both see the same load on a shared machine.
        month_sql: list[float] = []
        month_py: list[float] = []
        reads_sql: list[float] = []
        reads_py: list[float] = []
        # The CPU time of this process per build as well: on SQLite all the work (the
        # database's included, on aiosqlite's thread) is in this process, so it is the cost
        # without the waits for a turn on a busy machine's cores.
        cpu_sql: list[float] = []
        cpu_py: list[float] = []
        for _ in range(repeats):
            month_sql.append(await _timed(build(MONTH), cpu_sql))
            month_py.append(await _timed(build(MONTH, loop), cpu_py))
            reads_sql.append(await _timed(figure_reads(service, MONTH)))
            reads_py.append(await _timed(figure_reads(loop, MONTH)))
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
        "cpu_sql": cpu_sql,
        "cpu_py": cpu_py,
        "speedup_cpu": med(cpu_py) / med(cpu_sql),
        "reads_sql": reads_sql,
        "reads_py": reads_py,
        "speedup_month": med(month_py) / med(month_sql),
        "speedup_reads": med(reads_py) / med(reads_sql),
        "profile": profile_text,
    }
