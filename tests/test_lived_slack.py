"""The conversation as people live it (issue 18), Slack side: what the team sees in its channel
and thread, and what the reporter is told on Telegram, over both fake servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.sim.fake_slack import FakeSlack, SlackMessage, SlackUser, shown
from bot.sim.fake_telegram import SimUser
from bot.sim.scripts import fill_tension, tension, until
from bot.sim.world import SimWorld, free_port
from handlers.slack.ids import ActionId
from tests.helpers import PEOPLE_CSV, slack_config, team_slack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack() as fake:
        yield fake


@pytest.fixture
async def world(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[tuple[SimWorld, str]]:
    port = free_port()
    w = await SimWorld.start(
        slack_config(db_url, fake_telegram.base_url, slack, port), fake_telegram, clock
    )
    await w.import_people(PEOPLE_CSV)
    yield w, f"http://127.0.0.1:{port}/slack/events"
    await w.stop()


async def _report(w: SimWorld, description: str) -> SimUser:
    asha = await w.link("asha@example.org", 501, "Asha")
    async with w.services.db.uow() as uow:
        form = (await w.services.forms.current(uow)).definition
    await asha.send_command("/report")
    await fill_tension(asha, form, tension("Heath Town", "religion", description))
    await asha.press("Submit")
    await asha.wait_for("has been submitted")
    return asha


def _seen(message: SlackMessage) -> str:
    """The team's message as Slack shows it."""
    return "\n".join(
        shown(b["text"]["text"]).text for b in message.blocks if b["type"] == "section"
    )


async def test_reporters_formatting_shows_in_slack_as_typed(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, _ = world
    typed = "Stickers saying *go home* on _every_ lamp post ~near~ the `mosque`"
    await _report(w, typed)
    post: SlackMessage = (await until(lambda: slack.top_level("C0COHESION")))[0]
    description = next(
        b["text"]["text"]
        for b in post.blocks
        if b["type"] == "section" and "lamp" in b["text"]["text"]
    )
    assert typed in _seen(post)
    # The heading is still bold; the reporter's words carry no formatting of their own.
    line = next(x for x in description.split("\n") if "lamp" in x)
    assert shown(line) == type(shown(line))(typed, ())


async def test_notices_say_what_happened_and_who_once(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    asha = await _report(w, "Leaflets through doors on two streets")
    post: SlackMessage = (await until(lambda: slack.top_level("C0COHESION")))[0]
    await asha.wait_for("Delivered to Cohesion Team")
    jane = SlackUser(slack, "U0JANE", url)
    await jane.click(post, ActionId.ACK)
    told = await asha.wait_for("Acknowledged by Jane Smith, Cohesion Team")
    text = (told.text or "").casefold()
    assert text.count("acknowledged") == 1 and "has been" not in text
    thread = await until(lambda: slack.thread("C0COHESION", post.ts))
    said = shown(thread[0].blocks[0]["text"]["text"]).text
    assert said == "Acknowledged by Jane Smith, Cohesion Team"


async def test_two_reports_posted_to_three_teams_make_one_delivered_notice(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, _ = world
    asha = await w.link("asha@example.org", 501, "Asha")
    async with w.services.db.uow() as uow:
        form = (await w.services.forms.current(uow)).definition
    await asha.send_command("/report")
    await fill_tension(asha, form, tension("Heath Town", "crime_asb", "Cars racing every night"))
    await asha.press("Add another tension")
    await fill_tension(asha, form, tension("Heath Town", "race", "Leaflets on two streets"))
    await asha.press("Submit all")
    await asha.wait_for("reports have been submitted")
    await until(lambda: len(slack.top_level("C0COHESION")) == 2 and slack.top_level("C0NPT"))
    told = await asha.wait_for("delivered")
    await w.settle()
    notices = [m for m in asha.messages if "delivered" in (m.text or "").casefold()]
    assert notices == [told]
    text = told.text or ""
    assert "TR-2026-12-0001</code> to Neighbourhood Police and Cohesion Team" in text or (
        "TR-2026-12-0001</code> to Cohesion Team and Neighbourhood Police" in text
    )
    assert "TR-2026-12-0002</code> to Cohesion Team" in text


async def test_crisis_from_slack_for_the_prevent_officer_only(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    await w.import_people(
        PEOPLE_CSV + "Sam Clarke,prevent_officer,all,Council,sam@example.org,U0SAM\n"
    )
    asha = await w.link("asha@example.org", 501, "Asha")
    jane, sam = SlackUser(slack, "U0JANE", url), SlackUser(slack, "U0SAM", url)

    def said(user: str) -> list[str]:
        return [r["text"] for r in slack.responses if r.get("user") == user]

    await jane.slash("/crisis", "daily Heath Town")
    await until(lambda: said("U0JANE"))
    assert "Only admins and the Prevent and Cohesion Officer" in said("U0JANE")[0]
    await sam.slash("/crisis", "weekly Heath Town until 2026-12-31")
    await until(lambda: said("U0SAM"))
    assert said("U0SAM")[0].startswith("Started: crisis 1: weekly return for Heath Town")
    await asha.wait_for("extra tension return")
    await sam.slash("/crisis", "stop")
    await until(lambda: len(said("U0SAM")) == 2)
    assert said("U0SAM")[1].startswith("Stopped: crisis 1")
