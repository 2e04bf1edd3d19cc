"""The conversation as people live it (issue 18), each point from the person's side: the chat
transcript over the real python-telegram-bot Application and the fake Telegram server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.forms import FormDefinition
from sim.fake_telegram import SentMessage, SimUser
from sim.scripts import fill_tension, tension
from sim.world import SimWorld
from storage import tables
from tests.conftest import make_config
from tests.helpers import PEOPLE_CSV


@pytest.fixture
async def world(db_url: str, fake_telegram: Any, clock: FakeClock) -> AsyncIterator[SimWorld]:
    config = make_config(db_url, fake_telegram.base_url)
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


async def _form(world: SimWorld) -> FormDefinition:
    async with world.services.db.uow() as uow:
        return (await world.services.forms.current(uow)).definition


def _snapshot(user: SimUser) -> list[tuple[int, int, str]]:
    """Every bot message in the chat as (id, edits, text): what the person can see."""
    return [(m.message_id, m.edits, m.text or "") for m in user.messages]


async def _tap(world: SimWorld, user: SimUser, query_id: str) -> str | None:
    """Wait until the tap is answered and everything it queued is sent; the toast."""
    toast = await world.fake.answer_to(query_id)
    await world.settle()
    return toast


def _now(user: SimUser, message: SentMessage) -> SentMessage:
    """``message`` as it stands now (after any edits)."""
    return next(m for m in user.messages if m.message_id == message.message_id)


def _data(message: SentMessage, label: str) -> str:
    return next(d for text, d in message.buttons() if label.casefold() in text.casefold())


async def _december(
    world: SimWorld, email: str, uid: int, name: str
) -> tuple[SimUser, SentMessage]:
    user = await world.link(email, uid, name)
    await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    form_message = await user.wait_for("tension return for December 2026")
    return user, form_message


# ----------------------------------------------------------------- 1. every button answers once


async def test_tapping_report_a_tension_twice_asks_question_one_once(world: SimWorld) -> None:
    asha, form_message = await _december(world, "asha@example.org", 501, "Asha")
    start = _data(form_message, "Report a tension")
    await _tap(world, asha, await asha.press("Report a tension"))
    assert sum("Which ward" in (m.text or "") for m in asha.messages) == 1
    # The form's buttons are taken away once the return is started ...
    assert _now(asha, form_message).buttons() == []
    before = _snapshot(asha)
    # ... and a second tap (a slow client still showing them) edits nothing and sends nothing.
    toast = await _tap(world, asha, await asha.press_data(start, form_message))
    assert _snapshot(asha) == before
    assert toast is not None and "already" in toast.casefold()


async def test_a_late_nothing_to_report_after_a_report_says_already_done(world: SimWorld) -> None:
    asha, form_message = await _december(world, "asha@example.org", 501, "Asha")
    nil = _data(form_message, "Nothing to report")
    await asha.press("Report a tension")
    await fill_tension(asha, await _form(world), tension("Heath Town", "race", "Leaflets again"))
    await _tap(world, asha, await asha.press("Submit"))
    await asha.wait_for("has been submitted")
    before = _snapshot(asha)
    toast = await _tap(world, asha, await asha.press_data(nil, form_message))
    assert _snapshot(asha) == before
    assert toast is not None and "already" in toast.casefold()


async def test_a_second_tap_on_submit_or_nil_changes_nothing(world: SimWorld) -> None:
    asha, _ = await _december(world, "asha@example.org", 501, "Asha")
    await asha.press("Report a tension")
    await fill_tension(asha, await _form(world), tension("Heath Town", "race", "Leaflets again"))
    review = asha.last
    assert review is not None
    submit = _data(review, "Submit")
    await _tap(world, asha, await asha.press("Submit"))
    before = _snapshot(asha)
    toast = await _tap(world, asha, await asha.press_data(submit, review))
    assert _snapshot(asha) == before
    assert toast is not None and "already" in toast.casefold()

    yusuf, form_message = await _december(world, "yusuf@example.org", 502, "Yusuf")
    nil = _data(form_message, "Nothing to report")
    await _tap(world, yusuf, await yusuf.press("Nothing to report"))
    before = _snapshot(yusuf)
    toast = await _tap(world, yusuf, await yusuf.press_data(nil, form_message))
    assert _snapshot(yusuf) == before
    assert toast is not None and "already" in toast.casefold()


async def test_a_typed_answer_takes_the_keyboard_off_the_question_it_answers(
    world: SimWorld,
) -> None:
    asha, _ = await _december(world, "asha@example.org", 501, "Asha")
    await asha.press("Report a tension")
    await asha.wait_for("Which ward")
    await asha.press("Heath Town")
    await asha.wait_for("What kind of tension")
    await asha.press("Race or ethnicity")
    question = await asha.wait_for("What is happening")
    assert question.buttons()  # Back / Cancel
    # A person reads the question before answering: by then its send is recorded (its message
    # id is what the keyboard is taken off by).
    await world.settle()
    await asha.send_text("Leaflets about the mosque on two streets.")
    await asha.wait_for("Where exactly")
    await world.settle()
    assert _now(asha, question).buttons() == []


# ----------------------------------------------------------------- 4. references name the period


@pytest.fixture
async def november(db_url: str, fake_telegram: Any) -> AsyncIterator[SimWorld]:
    """The bot on 30 November 2026, the day before December's return is due."""
    config = make_config(db_url, fake_telegram.base_url)
    clock = FakeClock(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


async def test_references_name_the_return_they_answer_and_urgent_ones_their_month(
    november: SimWorld,
) -> None:
    world = november  # December's return is opened a day early
    asha, _ = await _december(world, "asha@example.org", 501, "Asha")
    form = await _form(world)
    await asha.press("Report a tension")
    await fill_tension(asha, form, tension("Heath Town", "race", "Leaflets again on Monday"))
    await asha.press("Submit")
    done = await asha.wait_for("has been submitted")
    assert "TR-2026-12-0001" in (done.text or "")
    # An urgent report the same day belongs to the month it arrives in.
    await asha.send_command("/report")
    await fill_tension(asha, form, tension("Heath Town", "race", "A fight at the bus station"))
    await asha.press("Submit")
    done = await asha.wait_for("has been submitted")
    assert "TR-2026-11-0001" in (done.text or "")
    async with world.services.db.uow() as uow:
        periods = {r.reference: r.period for r in await uow.reports.for_person(1)}
    assert periods == {"TR-2026-12-0001": "2026-12", "TR-2026-11-0001": "2026-11"}


# ----------------------------------------------------------------- 2. reminders only to who owes


@pytest.mark.parametrize("counts", [True, False])
async def test_an_urgent_report_during_the_return_counts_as_taking_part(
    db_url: str, fake_telegram: Any, clock: FakeClock, counts: bool
) -> None:
    config = make_config(
        db_url, fake_telegram.base_url, schedule={"urgent_report_answers_return": counts}
    )
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        asha, _ = await _december(world, "asha@example.org", 501, "Asha")
        yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
        await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
        await yusuf.wait_for("tension return for December 2026")
        await asha.send_command("/report")
        await fill_tension(
            asha, await _form(world), tension("Heath Town", "race", "A fight at the bus station")
        )
        await asha.press("Submit")
        await asha.wait_for("has been submitted")
        world.clock.set(datetime(2026, 12, 8, 9, 1, tzinfo=UTC))  # the first reminder is due
        await world.tick()
        await yusuf.wait_for("Reminder")
        reminded = [m for m in asha.messages if "Reminder" in (m.text or "")]
        assert len(reminded) == (0 if counts else 1)
    finally:
        await world.stop()


# ----------------------------------------------------------------- 5. crisis cadence from chat

CRISIS_PEOPLE = PEOPLE_CSV + "Sam Clarke,prevent_officer,all,Council,sam@example.org,\n"


def _extra_returns(user: SimUser) -> list[SentMessage]:
    return [m for m in user.messages if "extra tension return" in (m.text or "")]


async def _audited(world: SimWorld, action: str) -> int:
    async with world.services.db.uow() as uow:
        session = uow.people.session  # type: ignore[attr-defined]
        t = tables.audit_log
        return int(
            await session.scalar(select(func.count()).select_from(t).where(t.c.action == action))
        )


async def test_a_crisis_cadence_runs_from_chat_until_its_last_day(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    config = make_config(db_url, fake_telegram.base_url)
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(CRISIS_PEOPLE)
        asha = await world.link("asha@example.org", 501, "Asha")
        sarah = await world.link("sarah@example.org", 503, "Sarah")
        sam = await world.link("sam@example.org", 505, "Sam")
        jane = await world.link("jane@example.org", 504, "Jane")

        # Only admins and the Prevent and Cohesion Officer may start one.
        for user in (asha, jane):
            await user.send_command("/crisis", "daily Heath Town")
            await user.wait_for("Only admins and the Prevent and Cohesion Officer")
        await sam.send_command("/crisis", "hourly Heath Town")
        await sam.wait_for("Usage: /crisis daily|weekly")
        await sam.send_command("/crisis", "daily Heath Town, Nowhere")
        await sam.wait_for("Unknown ward or neighbourhood: Nowhere")
        await sam.send_command("/crisis", "daily Heath Town until 2026-12-02")
        started = await sam.wait_for("Started: crisis 1")
        assert "daily return for Heath Town" in (started.text or "")
        assert "until 2026-12-02" in (started.text or "")
        await asha.wait_for("extra tension return")
        await world.tick()  # the same day again: nothing new
        assert len(_extra_returns(asha)) == 1 and _extra_returns(sarah) == []

        world.clock.advance(timedelta(days=1))
        await world.tick()
        await world.tick()
        assert len(_extra_returns(asha)) == 2

        # A restart (the cadence and its occurrences live in the database): still once.
        await world.stop()
        world = await SimWorld.start(config, fake_telegram, world.clock)
        await world.tick()
        assert len(_extra_returns(asha)) == 2

        world.clock.advance(timedelta(days=1))  # 3 December: past its last day
        await world.tick()
        assert len(_extra_returns(asha)) == 2
        cadences = await world.services.crisis.all()
        assert [c.stopped_at is not None for c in cadences] == [True]
        assert "2 sent" in world.services.crisis.describe(cadences[0])

        # Weekly until stopped, then /crisis stop.
        await sam.send_command("/crisis", "weekly heath town roles councillor")
        await sam.wait_for("Started: crisis 2")
        await asha.wait_for(lambda m: len(_extra_returns(asha)) == 3)
        await jane.send_command("/crisis", "stop")
        await jane.wait_for("Only admins", after=len(jane.messages))
        await sam.send_command("/crisis", "stop")
        await sam.wait_for("Stopped: crisis 2")
        world.clock.advance(timedelta(days=7))
        await world.tick()
        assert len(_extra_returns(asha)) == 3
        assert await _audited(world, "crisis.start") == 2
        assert await _audited(world, "crisis.stop") == 1
    finally:
        await world.stop()


# ----------------------------------------------------------------- 6. where exactly?


async def test_a_shared_location_answers_where_exactly_to_about_100_metres(
    world: SimWorld,
) -> None:
    asha, _ = await _december(world, "asha@example.org", 501, "Asha")
    await asha.press("Report a tension")
    await asha.wait_for("Which ward")
    await asha.send_location(52.5886123, -2.1103456)  # not the question yet: told, kept asking
    await asha.wait_for("answers the “Where exactly” question")
    await asha.wait_for("Which ward", after=len(asha.messages))  # asked again, below
    await asha.press("Heath Town")
    await asha.wait_for("What kind of tension")
    await asha.press("Race or ethnicity")
    await asha.wait_for("What is happening")
    await asha.send_text("Leaflets about the mosque on two streets.")
    await asha.wait_for("Where exactly")
    await asha.send_location(52.5886123, -2.1103456)
    await asha.wait_for("Since when")
    async with world.services.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
    assert conv is not None
    where = conv.draft["location"]
    # Stored coarse (three decimals: about 100 m, a street), never the exact point.
    assert "52.589, -2.110" in where and "52.5886" not in where
    assert "Heath Town" in where


async def test_a_chair_schedules_a_meeting_step_by_step_from_past_venues(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    pact = {"neighbourhoods": [{"key": "heath-town", "name": "Heath Town", "wards": ["Heath Town"], "chair": "asha@example.org"}]}  # fmt: skip
    config = make_config(db_url, fake_telegram.base_url, pact=pact)
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        for on, venue in (
            ("2026-10-14", "Heath Town Library"),
            ("2026-11-11", "Old Fallings Hall"),
        ):
            await world.services.pact.schedule(
                neighbourhood="heath-town", on=on, at="18:30", venue=venue, format="in_person",
                chair_email="asha@example.org", actor="t", allow_past=True,
            )  # fmt: skip
        asha = await world.link("asha@example.org", 501, "Asha")
        await asha.send_command("/schedule")
        await asha.wait_for("Which date?")
        await asha.send_text("13 January")
        await asha.wait_for("YYYY-MM-DD, e.g.", after=len(asha.messages))
        await asha.send_text("2027-01-13")
        await asha.wait_for("What time")
        await asha.send_text("18:30")
        venues = await asha.wait_for("Where?")
        assert "1. Old Fallings Hall\n2. Heath Town Library" in (venues.text or "")
        await asha.send_text("2")
        done = await asha.wait_for("Scheduled: Heath Town PACT meeting")
        assert "Wed 13 Jan 2027, 18:30" in (done.text or "")
        assert "Heath Town Library" in (done.text or "")
        # A new venue typed; and the one-liner still works.
        await asha.send_command("/schedule")
        await asha.wait_for("Which date?", after=len(asha.messages))
        await asha.send_text("2027-02-10")
        await asha.wait_for("What time", after=len(asha.messages))
        await asha.send_text("19:00")
        await asha.wait_for("Where?", after=len(asha.messages))
        await asha.send_text("Heath Town Baptist Church")
        await asha.wait_for("Heath Town Baptist Church", after=len(asha.messages))
        await asha.send_command("/schedule", "2027-03-10 18:30 in_person Heath Town Library")
        await asha.wait_for("Wed 10 Mar 2027, 18:30", after=len(asha.messages))
        # /cancel stops a guided schedule half-way; nothing is stored.
        await asha.send_command("/schedule")
        await asha.wait_for("Which date?", after=len(asha.messages))
        await asha.send_command("/cancel")
        await asha.wait_for("no meeting was scheduled")
        async with world.services.db.uow() as uow:
            meetings = await uow.pact.for_neighbourhood("heath-town")
        assert len(meetings) == 5
    finally:
        await world.stop()


def test_a_crisis_names_wards_or_a_neighbourhood_that_stands_for_its_wards(db_url: str) -> None:
    from bot.returns.crisis import CrisisError, parse

    pact = {"neighbourhoods": [{"key": "east", "name": "East Park and Heath Town", "wards": ["Heath Town", "Park"]}]}  # fmt: skip
    config = make_config(db_url, pact=pact)
    request = parse("weekly  east, Penn until 2027-01-31 roles councillor,community_leader", config)
    assert request.wards == ["Heath Town", "Park", "Penn"]
    assert request.every == "weekly" and str(request.until) == "2027-01-31"
    assert request.roles == ["councillor", "community_leader"]
    assert parse("DAILY East Park and Heath Town", config).wards == ["Heath Town", "Park"]
    for bad in ("daily", "monthly Penn", "daily Penn roles mayor", "daily Penn until 2027-02-30"):
        with pytest.raises(CrisisError):
            parse(bad, config)


BOUNDARIES = Path(__file__).resolve().parents[1] / "sim/data/wards_simplified.geojson"


@pytest.fixture
async def bounded(db_url: str, fake_telegram: Any, clock: FakeClock) -> AsyncIterator[SimWorld]:
    """The world with (simplified, invented) boundaries for Heath Town and Park."""
    config = make_config(db_url, fake_telegram.base_url, wards={"boundaries_file": str(BOUNDARIES)})
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


async def _shares_location_for(world: SimWorld, ward: str) -> tuple[SimUser, int]:
    """Asha reports in ``ward`` and shares a point in Heath Town for "Where exactly?"; with
    how many messages she had before."""
    asha, _ = await _december(world, "asha@example.org", 501, "Asha")
    await asha.press("Report a tension")
    await asha.wait_for("Which ward")
    await asha.press(ward)
    await asha.wait_for("What kind of tension")
    await asha.press("Race or ethnicity")
    await asha.wait_for("What is happening")
    await asha.send_text("Leaflets about the mosque on two streets.")
    await asha.wait_for("Where exactly")
    before = len(asha.messages)
    await asha.send_location(52.5886123, -2.1103456)  # in the Heath Town box
    return asha, before


async def _draft(world: SimWorld) -> dict[str, Any]:
    async with world.services.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
    assert conv is not None
    return dict(conv.draft)


async def test_a_shared_location_in_the_chosen_ward_is_checked_and_kept_coarse(
    bounded: SimWorld,
) -> None:
    asha, before = await _shares_location_for(bounded, "Heath Town")
    await asha.wait_for("Since when", after=before)
    assert not any("looks like" in (m.text or "") for m in asha.messages)
    where = (await _draft(bounded))["location"]
    assert "in Heath Town" in where and "52.589, -2.110" in where and "52.5886" not in where


async def test_a_shared_location_outside_the_chosen_ward_is_said_and_the_ward_can_change(
    bounded: SimWorld,
) -> None:
    asha, before = await _shares_location_for(bounded, "Park")
    notice = await asha.wait_for("looks like it is in Heath Town", after=before)
    assert "Park" in (notice.text or "")
    await asha.wait_for("Since when", after=before)
    draft = await _draft(bounded)
    assert draft["ward"] == "Park" and "outside Park (looks like Heath Town)" in draft["location"]
    before = len(asha.messages)
    await asha.press("Change the ward to Heath Town", notice)
    await asha.wait_for("The ward is now Heath Town", after=before)
    draft = await _draft(bounded)
    assert draft["ward"] == "Heath Town" and "in Heath Town" in draft["location"]
    await asha.wait_for("Since when", after=before)  # carried on where it was


async def test_a_shared_location_with_no_boundaries_says_the_ward_was_not_checked(
    world: SimWorld,
) -> None:
    asha, before = await _shares_location_for(world, "Park")
    await asha.wait_for("Since when", after=before)
    assert "Park given, not checked" in (await _draft(world))["location"]
