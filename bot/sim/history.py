"""A year of simulated history for the demo: past tension reports and police hate-crime
figures across the wards, with one planted pocket of concern."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from bot.domain import Report
from bot.ports import UnitOfWorkFactory

CATEGORIES = ("race", "religion", "crime_asb", "gangs_youth", "online", "event", "other")
STRANDS = (
    "race_ethnicity",
    "religion_belief",
    "sexual_orientation",
    "disability",
    "transgender_identity",
)
STRAND_WEIGHTS = (0.84, 0.08, 0.04, 0.03, 0.01)  # most recorded hate crime is racial


def shift(month: str, months: int) -> str:
    """``2026-12`` shifted by ``months``."""
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + (mon - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def hate_crime_csv(wards: list[str], month: str, *, hotspot: str, seed: int = 2017) -> str:
    """Figures for the 12 months before ``month`` and ``month`` itself; ``hotspot`` spikes in
    ``month``. About 31 a month across the city, as in Wolverhampton (374 in 2016-17)."""
    rng = random.Random(seed)
    lines = ["month,ward,strand,count"]
    for k in range(12, -1, -1):
        m = shift(month, -k)
        for i, ward in enumerate(wards):
            mean = 1.0 + (i % 4) * 0.5
            if k == 0 and ward == hotspot:
                mean = 12.0
            total = _poisson(rng, mean)
            counts = dict.fromkeys(STRANDS, 0)
            for _ in range(total):
                counts[rng.choices(STRANDS, STRAND_WEIGHTS)[0]] += 1
            lines += [f"{m},{ward},{s},{n}" for s, n in counts.items() if n]
    return "\n".join(lines) + "\n"


async def seed_reports(
    uow_factory: UnitOfWorkFactory,
    *,
    person_id: int,
    form_version_id: int,
    wards: list[str],
    month: str,
    seed: int = 1974,
) -> int:
    """Past tension reports for the 12 months before ``month`` (not routed: history)."""
    rng = random.Random(seed)
    made = 0
    async with uow_factory() as uow:
        for k in range(12, 0, -1):
            m = shift(month, -k)
            when = datetime.strptime(m + "-14", "%Y-%m-%d").replace(tzinfo=UTC)
            for ward in wards:
                for j in range(_poisson(rng, 0.6)):
                    category = rng.choice(CATEGORIES)
                    await uow.reports.add(
                        Report(
                            reference=f"TR-{m}-H{made:04d}",
                            person_id=person_id,
                            source="history",
                            ward=ward,
                            category=category,
                            level=rng.choice((1, 2, 2, 3)),
                            basis=rng.choice(("experienced", "evidenced", "potential")),
                            answers={"description": "(simulated history)"},
                            form_version_id=form_version_id,
                            created_at=when,
                            period=m,
                            status="closed",
                        )
                    )
                    made += 1
                    del j
        await uow.commit()
    return made
