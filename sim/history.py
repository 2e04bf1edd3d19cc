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


# ----------------------------------------------------------------- PACT meetings

#: Typical PACT priorities and the team that usually owns them.
PACT_PRIORITIES = (
    ("Speeding on residential streets", "npt"),
    ("Anti-social behaviour at the shops after dark", "npt"),
    ("Fly-tipping in the back alleys", "cohesion"),
    ("Drug dealing near the park", "npt"),
    ("Nothing for young people to do in the evenings", "cohesion"),
    ("Parking on pavements outside the school", "npt"),
    ("Litter and graffiti by the bus station", "cohesion"),
    ("Nuisance motorbikes on the playing fields", "npt"),
)
# Attendance model: each neighbourhood's usual turnout, scaled by time slot and venue. Evening
# meetings and community centres draw more; online meetings and town halls fewer.
_SLOT = {"morning": 0.7, "afternoon": 0.85, "evening": 1.45}
_VENUE = {"community centre": 1.2, "library": 0.9, "church hall": 1.0, "town hall": 0.8}


def pact_season_csv() -> str:
    """Meetings from September to November 2026 (the past season) in the CSV that
    ``tensionbot pact import`` takes: three neighbourhoods, varied venues, days and times."""
    rows = ["neighbourhood,date,time,venue,format,chair_email,duration_minutes"]
    plan = {
        "heath-town": [
            ("2026-09-03", "18:30", "Heath Town Community Centre", "in_person"),
            ("2026-09-19", "14:00", "Heath Town Library", "in_person"),
            ("2026-10-01", "18:30", "Heath Town Community Centre", "in_person"),
            ("2026-10-17", "11:00", "Chester Avenue (street briefing)", "street_briefing"),
            ("2026-11-05", "19:00", "Online (Teams)", "online"),
            ("2026-11-21", "14:00", "Heath Town Library", "in_person"),
        ],
        "bilston": [
            ("2026-09-09", "14:00", "Bilston Town Hall", "in_person"),
            ("2026-09-23", "18:30", "Bilston Community Centre", "in_person"),
            ("2026-10-07", "14:00", "Bilston Town Hall", "in_person"),
            ("2026-10-21", "18:30", "Bilston Community Centre", "in_person"),
            ("2026-11-04", "10:30", "Ettingshall Library", "in_person"),
            ("2026-11-18", "18:30", "Bilston Community Centre", "in_person"),
        ],
        "penn": [
            ("2026-09-12", "11:00", "Penn Library", "in_person"),
            ("2026-09-24", "19:00", "St Bart's Church Hall", "in_person"),
            ("2026-10-10", "11:00", "Penn Library", "in_person"),
            ("2026-10-22", "19:00", "St Bart's Church Hall", "in_person"),
            ("2026-11-07", "14:00", "Penn Library", "in_person"),
            ("2026-11-26", "19:00", "Penn Community Hall", "online"),
        ],
    }
    for hood, meetings in plan.items():
        for day, hm, venue, fmt in meetings:
            rows.append(f"{hood},{day},{hm},{venue},{fmt},,90")
    return "\n".join(rows) + "\n"


def pact_attendance(hood_base: float, slot: str, venue: str, fmt: str, rng: random.Random) -> int:
    """Members of the public at a simulated meeting."""
    scale = _SLOT[slot] * next((v for k, v in _VENUE.items() if k in venue.casefold()), 1.0)
    if fmt == "online":
        scale *= 0.6
    return max(0, round(hood_base * scale + rng.uniform(-2, 2)))


async def record_pact_season(pact: object, uow_factory: UnitOfWorkFactory, seed: int = 16) -> int:
    """Record every past, unrecorded meeting as its chair would: attendance from the model
    above, a partner or two, the open priorities closed or carried, and one or two new ones.
    Uses the same path as the chat flows (``PactService.context`` and ``apply_record``)."""
    from bot.pact.service import MeetingRecord, PactService

    assert isinstance(pact, PactService)
    rng = random.Random(seed)
    base = {"heath-town": 26.0, "bilston": 17.0, "penn": 11.0}
    done = 0
    now = pact.clock.now()
    async with uow_factory() as uow:
        meetings = await uow.pact.meetings_between(datetime(2000, 1, 1, tzinfo=UTC), now)
        for n, m in enumerate(meetings):
            if m.status != "scheduled" or m.id is None:
                continue
            chair = await uow.people.get(m.chair_id)
            assert chair is not None
            context = await pact.context(uow, chair, m.id)
            public = pact_attendance(
                base.get(m.neighbourhood, 12.0), m.slot, m.venue, m.format, rng
            )
            new_share = 0.45 if m.format == "street_briefing" else 0.2
            reviews = []
            for p in context.priorities:
                closed = p.carried > 0 or rng.random() < 0.6
                note = (
                    "Patrols and clean-up done; residents say it is better"
                    if closed
                    else "Work started; more to do"
                )
                if p.id is not None:
                    reviews.append((p.id, "closed" if closed else "carried", note))
            new = [PACT_PRIORITIES[(n * 3 + k) % len(PACT_PRIORITIES)] for k in range(1 + n % 2)]
            record = MeetingRecord(
                public=public,
                new=min(public, round(public * new_share)),
                partners=[pid for pid, _ in context.partners][: 1 + n % 2],
                reviews=reviews,
                new_priorities=list(new),
            )
            errors = await pact.apply_record(uow, chair, context, record, notify=False)
            assert not errors, errors
            done += 1
        await uow.commit()
    return done
