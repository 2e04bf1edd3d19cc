"""PACT meetings: scheduling, reminders on a fake clock, recording in Telegram, and the analysis.

The Telegram tests run the real python-telegram-bot Application against the fake Bot API server;
the analysis is checked on fixtures whose answer is known (on SQLite and PostgreSQL: the window
function and the GROUP BY run on both).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from icalendar import Calendar

from bot.app import Services
from bot.buttons import ButtonAction, Kind
from bot.cli import main
from bot.clock import FakeClock
from bot.domain import MeetingStatus, PactMeeting, PriorityStatus
from bot.pact.rules import PUBLIC_WARNING, findings, markdown, slot_of
from bot.pact.service import MeetingRecord, PactError, validate_record
from handlers.files.charts import pact_attendance
from sim.world import SimWorld
from tests.conftest import make_config
from tests.helpers import PEOPLE_CSV, services_for

LONDON = ZoneInfo("Europe/London")
TEAMS = [
    {
        "key": "npt",
        "name": "Neighbourhood Policing Team",
        "organisation": "police",
        "slack_channel": "C0NPT",
        "members": ["U0JANE"],
    },
    {
        "key": "cohesion",
        "name": "Community Cohesion Team",
        "organisation": "council",
        "slack_channel": "C0COH",
        "members": ["U0JANE"],
    },
]
PACT = {
    "neighbourhoods": [
        {
            "key": "heath-town",
            "name": "Heath Town",
            "wards": ["Heath Town"],
            "partners": ["yusuf@example.org", "jane@example.org"],
            "chair": "asha@example.org",
        },
        {
            "key": "penn",
            "name": "Penn",
            "wards": ["Penn", "Blakenhall"],
            "chair": "mark@example.org",
        },
    ]
}


def _local(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=LONDON)


# ----------------------------------------------------------------- scheduling (core)


@pytest.fixture
async def services(db_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    async with services_for(db_url, clock, teams=TEAMS, pact=PACT) as s:
        await s.people.import_csv(PEOPLE_CSV, source="people.csv", actor="t")
        yield s


async def test_schedule_checks_every_field(services: Services) -> None:
    pact = services.pact
    ok = dict(
        neighbourhood="Heath Town",
        on="2026-12-10",
        at="18:30",
        venue="Heath Town Library",
        format="in_person",
        chair_email=None,
        actor="t",
    )
    meeting = await pact.schedule(**ok)  # type: ignore[arg-type]
    assert meeting.neighbourhood == "heath-town" and meeting.slot == "evening"
    assert meeting.weekday == 3  # a Thursday
    assert meeting.starts_at == _local("2026-12-10", "18:30").astimezone(UTC)
    assert meeting.ends_at - meeting.starts_at == timedelta(minutes=90)
    bad = {
        "neighbourhood": ("Atlantis", "neighbourhood 'Atlantis' is not known"),
        "on": ("10/12/2026", "is not of the form YYYY-MM-DD"),
        "at": ("half six", "is not of the form HH:MM"),
        "format": ("zoom", "format 'zoom' is not one of"),
        "venue": ("", "venue"),
        "chair_email": ("nobody@example.org", "nobody with the email"),
    }
    for field, (value, message) in bad.items():
        with pytest.raises(PactError, match=message):
            await pact.schedule(**{**ok, "on": "2026-12-17", field: value})  # type: ignore[arg-type]
    with pytest.raises(PactError, match="already has a meeting"):
        await pact.schedule(**ok)  # type: ignore[arg-type]
    with pytest.raises(PactError, match="in the past"):
        await pact.schedule(**{**ok, "on": "2026-11-01"})  # type: ignore[arg-type]


async def test_csv_import_is_all_or_nothing_and_reimport_updates(
    services: Services, tmp_path: Path
) -> None:
    good = (
        "neighbourhood,date,time,venue,format,chair_email,duration_minutes\n"
        "heath-town,2027-01-14,18:30,Heath Town Library,in_person,,\n"
        "Penn,2027-01-16,10:00,Penn Library,street_briefing,mark@example.org,60\n"
    )
    result = await services.pact.import_csv(good, source="season.csv", actor="t")
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    again = good.replace("Penn Library", "St Bart's Church Hall")
    result = await services.pact.import_csv(again, source="season.csv", actor="t")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    broken = (
        again + "penn,2027-02-30,10:00,Somewhere,in_person,,\nmars,2027-03-01,10:00,X Y,online,,\n"
    )
    with pytest.raises(PactError) as info:
        await services.pact.import_csv(broken, source="season.csv", actor="t")
    assert "season.csv:4:" in str(info.value) and "season.csv:5:" in str(info.value)
    async with services.db.uow() as uow:
        meetings = await uow.pact.meetings_between(
            datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
        )
    assert len(meetings) == 2 and "St Bart's Church Hall" in {m.venue for m in meetings}


# ----------------------------------------------------------------- the analysis


async def _record(
    services: Services, meeting: PactMeeting, public: int, new: int, partners: int = 0
) -> None:
    async with services.db.uow() as uow:
        chair = await uow.people.get(meeting.chair_id)
        assert chair is not None and meeting.id is not None
        context = await services.pact.context(uow, chair, meeting.id)
        ids = [pid for pid, _ in context.partners][:partners]
        record = MeetingRecord(public, new, ids, [], [])
        assert await services.pact.apply_record(uow, chair, context, record) == {}
        await uow.commit()


async def test_which_times_and_venues_draw_people(services: Services, clock: FakeClock) -> None:
    """Heath Town is three times the size of Penn. In both, evening meetings draw twice what
    afternoon ones do: the analysis must compare each meeting with its own neighbourhood's
    other meetings (leave-one-out; raw means would exaggerate, and a meeting in its own
    baseline pulls small neighbourhoods to 1.00x), total over total, and rank only groups of
    at least five meetings."""
    plan = [
        # (neighbourhood, date, time, venue, public, new)
        ("heath-town", "2026-09-03", "18:30", "Heath Town Community Centre", 40, 10),
        ("heath-town", "2026-09-19", "14:00", "Heath Town Library", 20, 2),
        ("heath-town", "2026-10-01", "18:30", "Heath Town Community Centre", 40, 6),
        ("heath-town", "2026-10-17", "14:00", "Heath Town Library", 20, 2),
        ("penn", "2026-09-10", "19:00", "Penn Community Hall", 12, 4),
        ("penn", "2026-09-26", "13:00", "Penn Library", 6, 0),
        ("penn", "2026-10-08", "19:00", "Penn Community Hall", 12, 2),
        ("penn", "2026-10-24", "13:00", "Penn Library", 6, 0),
        ("heath-town", "2026-11-05", "18:30", "Heath Town Community Centre", 40, 0),
        ("heath-town", "2026-11-21", "14:00", "Heath Town Library", 20, 0),
        ("penn", "2026-11-12", "19:00", "Penn Community Hall", 12, 0),
        ("penn", "2026-11-28", "13:00", "Penn Library", 6, 0),
    ]
    for hood, day, hm, venue, public, new in plan:
        meeting = await services.pact.schedule(
            neighbourhood=hood, on=day, at=hm, venue=venue, format="in_person",
            chair_email=None, actor="t", allow_past=True,
        )  # fmt: skip
        await _record(services, meeting, public, new, partners=1 if hood == "heath-town" else 0)

    # Recomputed from the plan: each meeting against the mean of its neighbourhood's others.
    def usual(i: int) -> float:
        others = [p[4] for j, p in enumerate(plan) if j != i and p[0] == plan[i][0]]
        return sum(others) / len(others)

    def ratio(evening: bool) -> float:
        chosen = [i for i, p in enumerate(plan) if (p[2] >= "17:00") == evening]
        return sum(plan[i][4] for i in chosen) / sum(usual(i) for i in chosen)

    evening, afternoon = ratio(True), ratio(False)
    assert evening == pytest.approx(10 / 7) and afternoon == pytest.approx(0.625)

    insight = await services.pact.insight("2026-09", "2026-11")
    slots = {r.key: r for r in insight.by["slot"]}
    assert set(slots) == {"afternoon", "evening"}
    assert slots["evening"].meetings == 6 and slots["evening"].mean == pytest.approx(26.0)
    assert slots["evening"].relative == pytest.approx(evening)
    assert slots["afternoon"].relative == pytest.approx(afternoon)
    days = {insight.label("weekday", r.key): r.relative for r in insight.by["weekday"]}
    assert days == {"Thursday": pytest.approx(evening), "Saturday": pytest.approx(afternoon)}
    venues = {r.key: r for r in insight.by["venue"]}
    assert venues["Heath Town Community Centre"].mean == pytest.approx(40.0)
    assert venues["Penn Community Hall"].relative == pytest.approx(36 / (3 * 8.4))
    hoods = {r.key: r for r in insight.by["neighbourhood"]}
    assert hoods["heath-town"].relative == pytest.approx(1.0)
    assert hoods["heath-town"].new_rate == pytest.approx(20 / 180)
    assert hoods["heath-town"].turnout == pytest.approx(0.5)  # 1 of 2 invited partners
    assert hoods["penn"].turnout is None  # nobody invited besides the chair
    overall = insight.overall
    assert overall is not None and (overall.meetings, overall.public) == (12, 234)
    text = "\n".join(findings(insight))
    assert f"Evening meetings drew {evening:.2f}x the neighbourhood's usual attendance" in text
    assert f"afternoon drew {afternoon:.2f}x" in text
    assert f"Thursday meetings drew {evening:.2f}x" in text
    # Three meetings a venue: too few to rank venues.
    assert "Community Centre drew" not in text and "Community Hall drew" not in text
    assert [m.public for m in insight.meetings][:4] == [40, 12, 20, 6]  # in date order
    md = markdown(insight)
    assert f"| evening | 6 | 26.0 | {evening:.2f}x |" in md
    penn = await services.pact.insight("2026-09", "2026-11", "Penn")
    assert [r.key for r in penn.by["neighbourhood"]] == ["penn"]

    # The chart draws what the analysis says: a line per neighbourhood, bars per slot.
    figure = pact_attendance(insight)
    trend, slot_axes = figure.axes[0], figure.axes[1]
    assert len(trend.get_lines()) == 2
    assert [round(b.get_width(), 3) for b in slot_axes.patches] == [
        round(afternoon, 3),
        round(evening, 3),
    ]


def test_pact_commands_and_exports(tmp_path: Path, db_url: str) -> None:
    """tensionbot pact import / schedule / list / insight, and PACT in the summary exports."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n'
        '[[teams]]\nkey = "npt"\nname = "NPT"\norganisation = "police"\n'
        'slack_channel = "C0NPT"\n'
        '[pact]\nreview_date = "2026-11-01"\n'
    )
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE_CSV)
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(main, [*base, "people", "import", str(people)]).exit_code == 0
    season = tmp_path / "meetings.csv"
    season.write_text(
        "neighbourhood,date,time,venue,format,chair_email\n"
        "Heath Town,2026-11-05,18:30,Community Centre,in_person,asha@example.org\n"
        "penn,2026-11-07,11:00,Penn Library,street_briefing,mark@example.org\n"
    )
    ok = runner.invoke(main, [*base, "pact", "import", str(season)])
    assert ok.exit_code == 0, ok.output
    assert "2 created, 0 updated, 0 unchanged" in ok.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "neighbourhood,date,time,venue,format,chair_email\nAtlantis,2026-11-05,18:30,X Y,online,asha@example.org\n"
    )
    failed = runner.invoke(main, [*base, "pact", "import", str(bad)])
    assert failed.exit_code == 2 and "bad.csv:2: neighbourhood 'Atlantis'" in failed.output
    scheduled = runner.invoke(
        main,
        [*base, "pact", "schedule", "--neighbourhood", "park", "--date", "2031-01-08",
         "--time", "19:00", "--venue", "Park Village Hall", "--chair", "yusuf@example.org"],
    )  # fmt: skip
    assert scheduled.exit_code == 0, scheduled.output
    assert "Wed 08 Jan 2031 19:00, Park Village Hall" in scheduled.output
    refused = runner.invoke(
        main,
        [*base, "pact", "schedule", "--neighbourhood", "park", "--date", "2031-01-08",
         "--time", "19:00", "--venue", "Park Village Hall", "--chair", "yusuf@example.org"],
    )  # fmt: skip
    assert refused.exit_code == 2 and "already has a meeting" in refused.output
    listed = json.loads(runner.invoke(main, [*base, "pact", "list", "--format", "json"]).output)
    assert [m["neighbourhood"] for m in listed] == ["heath-town", "penn", "park"]

    async def record() -> None:
        from bot.app import build_services
        from bot.config import load_config

        services = await build_services(load_config(config), migrate=False)
        try:
            async with services.db.uow() as uow:
                for m in await uow.pact.for_neighbourhood("heath-town"):
                    chair = await uow.people.get(m.chair_id)
                    assert chair is not None and m.id is not None
                    context = await services.pact.context(uow, chair, m.id)
                    record = MeetingRecord(27, 4, [], [], [("Speeding on Chester Avenue", "npt")])
                    assert await services.pact.apply_record(uow, chair, context, record) == {}
                await uow.commit()
        finally:
            await services.close()

    asyncio.run(record())
    insight = runner.invoke(
        main, [*base, "pact", "insight", "--since", "2026-09", "--until", "2026-12"]
    )
    assert insight.exit_code == 0, insight.output
    # One meeting in its neighbourhood: nothing to compare it with (it is not its own usual).
    assert "| evening | 1 | 27.0 | – | 15% |" in insight.output
    reviewed = runner.invoke(
        main,
        [*base, "pact", "insight", "--since", "2026-09", "--until", "2026-12",
         "--change-date", "2026-11-01"],
    )  # fmt: skip
    assert reviewed.exit_code == 0, reviewed.output
    assert (
        "Before and after 01 November 2026: no attendance comparison (0 meetings before, 1 after)."
        in reviewed.output
    )
    assert "| attendance | 0 | – | 1 | 27.0 | – | – to – |" in reviewed.output
    out = tmp_path / "out"
    result = runner.invoke(main, [*base, "summary", "--period", "2026-11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "## PACT meetings, 2025-12 to 2026-11" in (out / "summary.md").read_text()
    assert (
        (out / "pact_by_slot.csv").read_text().splitlines()[1].startswith("evening,1,27.0,,4,27,")
    )
    assert (out / "pact_priorities.csv").read_text().splitlines()[1] == "1,0,0,1,0,0.0,0.8"
    # [pact] review_date: before and after it in the exports.
    assert (out / "pact_review.csv").read_text().splitlines()[1:] == [
        "public_attendees,2026-11-01,0,0,1,27,,,",
        "new_attendees,2026-11-01,0,0,1,4,,,",
    ]
    assert not (out / "pact_model.csv").exists()  # one meeting: no model to report
    assert (out / "pact_attendance.png").read_bytes().startswith(b"\x89PNG")


async def test_the_insight_figures_are_those_of_its_meetings_and_priorities_counted_by_hand(
    services: Services,
) -> None:
    """A seeded season: meetings in and out of the window, some not recorded, priorities set,
    carried and closed. Every figure of the insight (attendance by each grouping, meetings by
    status, the priority counts) equals a count of the plan in Python: the figures read in
    one statement per kind are those the per-group queries gave."""
    import random

    rng = random.Random(17)
    planned = []
    for i in range(30):
        day = datetime(2026, 8, 1) + timedelta(days=rng.randrange(0, 120))
        planned.append(
            (
                rng.choice(["heath-town", "penn"]),
                f"{day:%Y-%m-%d}",
                rng.choice(["10:00", "14:00", "18:30", "19:00"]),
                rng.choice(["Library", "Church Hall", "Community Centre"]) + f" {i % 2}",
                rng.choice(["in_person", "online", "street_briefing"]),
            )
        )
    planned.sort(key=lambda p: (p[1], p[2]))
    start, end = _local("2026-09-01", "00:00"), _local("2026-12-01", "00:00")
    recorded: list[tuple[Any, ...]] = []  # (meeting, public, new, present)
    statuses: dict[str, int] = {}
    # priority id -> [created, closed_at or None, last reviewed meeting's start or None]
    priorities: dict[int, list[Any]] = {}
    for hood, on, hm, venue, fmt in planned:
        meeting = await services.pact.schedule(
            neighbourhood=hood, on=on, at=hm, venue=venue, format=fmt,
            chair_email=None, actor="t", allow_past=True,
        )  # fmt: skip
        assert meeting.id is not None
        if rng.random() < 0.2:  # never recorded: counted by status, not in the attendance
            if start <= meeting.starts_at < end:
                statuses[meeting.status] = statuses.get(meeting.status, 0) + 1
            continue
        async with services.db.uow() as uow:
            chair = await uow.people.get(meeting.chair_id)
            assert chair is not None
            context = await services.pact.context(uow, chair, meeting.id)
            present = [pid for pid, _ in context.partners if rng.random() < 0.5]
            reviews = []
            for p in context.priorities:
                assert p.id is not None
                decision = rng.choice(["closed", "carried"])
                reviews.append((p.id, decision, "done" if decision == "closed" else "ongoing"))
                priorities[p.id][2] = meeting.starts_at
                if decision == "closed":
                    priorities[p.id][1] = meeting.starts_at
            new = [
                (f"Priority {k}", rng.choice(["npt", "cohesion"])) for k in range(rng.randrange(3))
            ]
            public = rng.randrange(0, 60)
            record = MeetingRecord(public, rng.randrange(0, public + 1), present, reviews, new)
            assert await services.pact.apply_record(uow, chair, context, record) == {}
            await uow.commit()
            for p in await uow.pact.open_priorities(hood):
                assert p.id is not None
                priorities.setdefault(p.id, [p.created_at, None, None])
        if start <= meeting.starts_at < end:
            recorded.append((meeting, record.public, record.new, len(present)))
            statuses["recorded"] = statuses.get("recorded", 0) + 1

    insight = await services.pact.insight("2026-09", "2026-11")
    assert [m.id for m in insight.meetings] == [m.id for m, *_ in recorded]
    rows = {m.id: m for m in insight.meetings}
    for group in ("slot", "weekday", "venue", "format", "neighbourhood"):
        expected: dict[str, list[int]] = {}
        for meeting, public, new, present in recorded:
            key = str(getattr(rows[meeting.id], group))
            n, pub, nw, pres, inv = expected.get(key, [0, 0, 0, 0, 0])
            invited = rows[meeting.id].partners_invited
            expected[key] = [n + 1, pub + public, nw + new, pres + present, inv + invited]
        got = insight.by[group]
        assert [r.key for r in got] == sorted(expected), group
        for r in got:
            n, pub, nw, pres, inv = expected[r.key]
            assert (r.meetings, r.public, r.new, r.partners_present, r.partners_invited) == (
                n, pub, nw, pres, inv
            ), (group, r.key)  # fmt: skip
            assert r.mean == pytest.approx(pub / n, rel=1e-12)
    assert len(insight.by["weekday"]) > 2 and len(insight.by["venue"]) > 4
    assert insight.counts == statuses

    def inside(at: datetime | None) -> bool:
        return at is not None and start <= at < end

    assert insight.priorities == {
        "set": sum(1 for c, _, _ in priorities.values() if inside(c)),
        "resolved": sum(1 for c, x, _ in priorities.values() if inside(c) and x is not None),
        "closed": sum(1 for _, x, _ in priorities.values() if inside(x)),
        "carried": sum(1 for _, x, r in priorities.values() if x is None and inside(r)),
        "open": sum(1 for _, x, _ in priorities.values() if x is None),
    }
    assert min(insight.priorities.values()) > 0


async def test_an_empty_period_says_so(services: Services) -> None:
    insight = await services.pact.insight("2026-01", "2026-03")
    assert insight.empty and findings(insight) == ["No PACT meeting was recorded in this period."]


def test_time_slots() -> None:
    assert [slot_of(_local("2026-12-10", t)) for t in ("09:59", "12:00", "16:59", "17:00")] == [
        "morning",
        "afternoon",
        "afternoon",
        "evening",
    ]


async def test_validate_record_names_each_problem(services: Services, clock: FakeClock) -> None:
    meeting = await services.pact.schedule(
        neighbourhood="penn", on="2026-11-20", at="19:00", venue="Penn Library",
        format="online", chair_email=None, actor="t", allow_past=True,
    )  # fmt: skip
    async with services.db.uow() as uow:
        mark = await uow.people.by_email("mark@example.org")
        asha = await uow.people.by_email("asha@example.org")
        assert mark is not None and asha is not None and meeting.id is not None
        context = await services.pact.context(uow, mark, meeting.id)
        with pytest.raises(PactError, match="Only the chair"):
            await services.pact.context(uow, asha, meeting.id)
    four = [(f"Priority {n}", "npt") for n in range(4)]
    errors = validate_record(MeetingRecord(5, 9, [999], [], four), context, 1000)
    assert set(errors) == {"new", "partners", "priority:4"}
    assert "cannot be more than the members of the public" in errors["new"]
    errors = validate_record(
        MeetingRecord(5000, 0, [], [], [("x", "npt"), ("Ok!", "nobody")]), context, 1000
    )
    assert set(errors) == {"public", "priority:1", "priority:2"}


# ----------------------------------------------------------------- Telegram, end to end


@pytest.fixture
async def world(db_url: str, fake_telegram: Any, clock: FakeClock) -> AsyncIterator[SimWorld]:
    config = make_config(db_url, fake_telegram.base_url, teams=TEAMS, pact=PACT)
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


async def test_reminders_with_calendar_prompts_and_chases_on_a_fake_clock(
    world: SimWorld, clock: FakeClock
) -> None:
    asha = await world.link("asha@example.org", 501, "Asha")
    yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
    mark = await world.link("mark@example.org", 503, "Mark")
    meeting = await world.services.pact.schedule(
        neighbourhood="heath-town", on="2026-12-10", at="18:30", venue="Heath Town Library",
        format="in_person", chair_email=None, actor="t",
    )  # fmt: skip
    await world.tick()  # 1 December: nine days before, nothing yet
    assert not [m for m in world.fake.messages(yusuf.chat_id) if m.kind == "document"]

    clock.set(_local("2026-12-07", "19:00"))
    await world.tick()
    await world.tick()  # a second tick sends nothing twice
    for user, chairing in ((asha, True), (yusuf, False)):
        docs = [m for m in world.fake.messages(user.chat_id) if m.kind == "document"]
        assert len(docs) == 1, user.first_name
        assert ("You are chairing it" in (docs[0].caption or "")) is chairing
        assert docs[0].file_name == "pact-heath-town-20261210.ics"
        assert docs[0].file_data is not None
        event = Calendar.from_ical(docs[0].file_data).walk("VEVENT")[0]
        assert event.decoded("dtstart") == _local("2026-12-10", "18:30")
        assert str(event.get("location")) == "Heath Town Library"
    assert not [m for m in world.fake.messages(mark.chat_id) if m.kind == "document"]  # Penn

    clock.set(_local("2026-12-10", "18:35"))
    await world.tick()
    await asha.wait_for("you said, we did")
    clock.set(_local("2026-12-10", "20:05"))  # it ended at 20:00
    await world.tick()
    prompt = await asha.wait_for("How did the Heath Town PACT meeting go?")
    assert [b[0] for b in prompt.buttons()] == ["Record the meeting", "It was cancelled"]
    clock.set(_local("2026-12-12", "20:01"))  # 48 hours later, still not recorded
    await world.tick()
    await world.tick()
    chases = [m for m in world.fake.messages(asha.chat_id) if "not recorded yet" in (m.text or "")]
    assert len(chases) == 1

    await asha.press("It was cancelled", chases[0])
    await asha.wait_for("was cancelled. Its priorities stay open")
    async with world.services.db.uow() as uow:
        stored = await uow.pact.get_meeting(meeting.id or 0)
    assert stored is not None and stored.status == MeetingStatus.CANCELLED.value


async def test_a_chair_records_a_meeting_in_telegram(world: SimWorld, clock: FakeClock) -> None:
    asha = await world.link("asha@example.org", 501, "Asha")
    mark = await world.link("mark@example.org", 503, "Mark")
    first = await world.services.pact.schedule(
        neighbourhood="heath-town", on="2026-11-26", at="18:30", venue="Heath Town Library",
        format="in_person", chair_email=None, actor="t", allow_past=True,
    )  # fmt: skip
    future = await world.services.pact.schedule(
        neighbourhood="heath-town", on="2027-01-14", at="18:30", venue="Heath Town Library",
        format="in_person", chair_email=None, actor="t",
    )  # fmt: skip
    assert first.id is not None and future.id is not None

    # Not theirs, not yet, not a real payload: clear messages, nothing stored.
    await mark.send_command("/help")
    await mark.wait_for("/meeting")
    await mark.press_data(ButtonAction(Kind.PACT_RECORD, first.id).encode())
    await mark.wait_for("Only the chair of this meeting can record it")
    await asha.send_command("/help")
    await asha.wait_for("/meeting")
    await asha.press_data(ButtonAction(Kind.PACT_RECORD, future.id).encode())
    await asha.wait_for("has not happened yet")
    await asha.press_data("1.T.999.0.1")
    await world.settle()

    await asha.send_command("/meeting")
    await asha.wait_for("Heath Town PACT meeting, Thu 26 Nov 2026, 18:30")
    await asha.press("Record the meeting")
    await asha.wait_for("How many members of the public came?")
    for typed, answer in (
        ("-3", "cannot be negative"),
        ("lots", "as a whole number"),
        ("100000", "please check the number"),
    ):
        await asha.send_text(typed)
        await asha.wait_for(answer)
    await asha.send_text("25")
    await asha.wait_for("how many came to a PACT meeting for the first time")
    await asha.send_text("30")
    await asha.wait_for(
        "New attendees (30) cannot be more than the members of the public present (25)"
    )
    await asha.send_text("6")
    await asha.wait_for("Which partners were there?")
    await asha.press("Imam Yusuf Khan")
    await asha.wait_for(lambda m: any(b[0] == "✓ Imam Yusuf Khan" for b in m.buttons()))
    await asha.press("Done")
    titles = [
        "Speeding on Chester Avenue",
        "Litter behind the shops",
        "Youth provision in the park",
    ]
    for n, title in enumerate(titles, 1):
        await asha.wait_for(f"New priority {n} (at most 3)")
        await asha.send_text(title)
        await asha.wait_for("Which team owns")
        await asha.press("Neighbourhood Policing Team" if n != 2 else "Community Cohesion Team")
    await asha.wait_for("Please check the record")
    await asha.send_text("Dog fouling on the green")  # a fourth
    await asha.wait_for("at most 3 new priorities, so that one was not added")
    await asha.press("Save the record")
    saved = await asha.wait_for("Saved: Heath Town PACT meeting")
    assert "25 members of the public (6 new), 1 of 2 partners" in (saved.text or "")
    assert "Dog fouling" not in (saved.text or "")

    async with world.services.db.uow() as uow:
        stored = await uow.pact.get_meeting(first.id)
        assert stored is not None and stored.status == MeetingStatus.RECORDED.value
        assert (stored.public_attendees, stored.new_attendees, stored.partners_invited) == (
            25,
            6,
            2,
        )
        yusuf = await uow.people.by_email("yusuf@example.org")
        assert yusuf is not None and await uow.pact.attendance(first.id) == [yusuf.id]
        priorities = await uow.pact.open_priorities("heath-town")
    assert [p.title for p in priorities] == titles
    assert [p.owner_team for p in priorities] == ["npt", "cohesion", "npt"]

    # Recording it again is refused; the next meeting reviews the three priorities.
    await asha.press_data(ButtonAction(Kind.PACT_RECORD, first.id).encode())
    await asha.wait_for("already recorded")
    clock.set(_local("2027-01-14", "21:00"))
    await world.tick()
    await asha.wait_for("How did the Heath Town PACT meeting go?")
    await asha.press("Record the meeting")
    await asha.wait_for("How many members of the public came?")
    await asha.send_text("31")
    await asha.wait_for("first time")
    await asha.send_text("4")
    await asha.wait_for("Which partners were there?")
    await asha.press("Done")
    for decision, note in (("Closed", "Speed checks twice a week; 40 drivers warned"),
                           ("Carried", "Bins ordered"), ("Closed", "Youth club opened")):  # fmt: skip
        await asha.wait_for("Did the meeting close it, or carry it on?")
        await asha.press(decision)
        asking = await asha.wait_for("What was done?")
        # The chair is told, where they type it and before they save, that it goes public.
        assert PUBLIC_WARNING in (asking.text or "")
        await asha.send_text(note)
    await asha.wait_for("New priority 1")
    await asha.press("No more new priorities")
    check = await asha.wait_for("Please check the record")
    assert PUBLIC_WARNING in (check.text or "")
    await asha.press("Save the record")
    saved = await asha.wait_for(lambda m: "Saved:" in (m.text or "") and "2027" in (m.text or ""))
    assert "You said: Speeding on Chester Avenue. We did: Speed checks" in (saved.text or "")
    async with world.services.db.uow() as uow:
        left = await uow.pact.open_priorities("heath-town")
        reviewed = await uow.pact.priorities_reviewed_or_set(future.id)
    assert [(p.title, p.carried) for p in left] == [("Litter behind the shops", 1)]
    closed = [p for p in reviewed if p.status == PriorityStatus.CLOSED.value]
    assert {p.outcome for p in closed} == {
        "Speed checks twice a week; 40 drivers warned",
        "Youth club opened",
    }

    # The resolution rate, recomputed from the priorities' rows: of those set in the period,
    # the share closed now, against the partnership's measure of over 80%.
    from sqlalchemy import select

    from storage.tables import pact_priorities

    async with world.services.db.uow() as uow:
        rows = (
            await uow.people.session.execute(  # type: ignore[attr-defined]
                select(pact_priorities.c.created_at, pact_priorities.c.status)
            )
        ).all()
    insight = await world.services.pact.insight("2026-11", "2027-01")
    start = datetime(2026, 11, 1, tzinfo=ZoneInfo("Europe/London"))
    in_window = [status for created, status in rows if created >= start]
    resolved = sum(1 for status in in_window if status == PriorityStatus.CLOSED.value)
    assert (len(in_window), resolved) == (3, 2)
    text = "\n".join(findings(insight))
    assert (
        f"Of the {len(in_window)} priorities set in the period, {resolved} are resolved "
        f"({resolved / len(in_window):.0%}), short of the partnership's measure of over 80%."
    ) in text


async def test_recording_survives_a_restart_and_cancel_stores_nothing(
    world: SimWorld, clock: FakeClock
) -> None:
    asha = await world.link("asha@example.org", 501, "Asha")
    meeting = await world.services.pact.schedule(
        neighbourhood="heath-town", on="2026-11-26", at="18:30", venue="Library",
        format="online", chair_email=None, actor="t", allow_past=True,
    )  # fmt: skip
    await asha.send_command("/meeting")
    await asha.wait_for("Heath Town PACT meeting, Thu 26 Nov 2026")
    await asha.press("Record the meeting")
    await asha.wait_for("How many members of the public came?")
    await asha.send_text("12")
    await asha.wait_for("first time")
    await world.settle()
    await world.stop()
    world2 = await SimWorld.start(world.services.config, world.fake, clock)
    try:
        await asha.send_text("3")  # the answer to the question asked before the restart
        await asha.wait_for("Which partners were there?")
        await asha.send_command("/report")
        await asha.wait_for("You are recording a PACT meeting")
        await asha.send_command("/cancel")
        await asha.wait_for("Recording stopped; nothing was saved")
        async with world2.services.db.uow() as uow:
            stored = await uow.pact.get_meeting(meeting.id or 0)
        assert stored is not None and stored.status == MeetingStatus.SCHEDULED.value
    finally:
        await world2.stop()


async def test_pact_insight_in_telegram_is_for_the_prevent_officer(
    world: SimWorld, clock: FakeClock
) -> None:
    csv_text = PEOPLE_CSV + "Sam Clarke,prevent_officer,all,Council,sam@example.org,\n"
    await world.import_people(csv_text)
    sam = await world.link("sam@example.org", 510, "Sam")
    asha = await world.link("asha@example.org", 501, "Asha")
    meeting = await world.services.pact.schedule(
        neighbourhood="penn", on="2026-11-26", at="19:00", venue="Penn Library",
        format="in_person", chair_email=None, actor="t", allow_past=True,
    )  # fmt: skip
    await _record(world.services, meeting, 14, 3)
    await asha.send_command("/pact")
    await asha.wait_for("PACT insight is for the Prevent and Cohesion Officer and admins")
    await sam.send_command("/pact")
    await sam.wait_for("14 members of the public")
    await sam.wait_for(lambda m: m.kind == "photo")


async def test_a_tick_after_downtime_chases_once_without_a_stale_prompt(
    services: Services, clock: FakeClock
) -> None:
    """The bot was down from before the meeting until after the chase time: the chair gets the
    chase only (not "how did it go?" and a chase together), once."""
    await services.pact.schedule(
        neighbourhood="penn", on="2026-11-27", at="19:00", venue="Penn Library",
        format="in_person", chair_email=None, actor="t", allow_past=True,
    )  # fmt: skip
    first = await services.pact.tick()
    again = await services.pact.tick()
    assert (first["prompts"], first["chases"]) == (0, 1)
    assert not any(again.values())
