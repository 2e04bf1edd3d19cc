"""The conversation as people live it (issue 18), Slack side: what the team sees in its channel
and thread, and what the reporter is told on Telegram, over both fake servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from handlers.slack.ids import ActionId
from sim.fake_slack import FakeSlack, SlackMessage, SlackUser, shown
from sim.fake_telegram import SimUser
from sim.scripts import fill_tension, tension, until
from sim.world import SimWorld, free_port
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


async def _priya_opens_the_form(
    w: SimWorld, url: str, slack: FakeSlack
) -> tuple[SlackUser, dict[str, Any]]:
    """Priya (a Slack reporter) gets December's return and opens its modal."""
    await w.import_people(
        PEOPLE_CSV + "Priya Shah,community_leader,Park,Mosque,priya@example.org,U0PRIYA\n"
    )
    await w.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    form_dm = (await until(lambda: slack.dm("U0PRIYA")))[0]
    priya = SlackUser(slack, "U0PRIYA", url)
    await priya.click(form_dm, ActionId.START)
    return priya, (await until(slack.views_opened))[-1]


def _answers(location: str) -> dict[str, Any]:
    """A whole form's values as Slack sends them, with ``location`` for "Where exactly?"."""
    choices = {
        "ward": "Park",
        "category": "race",
        "basis": "experienced",
        "level": "2",
        "media": "none",
        "already_reported": "no",
        "consent_contact": "yes",
        "consent_share": "no",
    }
    values: dict[str, Any] = {
        k: {k: {"type": "static_select", "selected_option": {"value": v}}}
        for k, v in choices.items()
    }
    typed = {"description": "Hostile posts about the mosque on a local channel"}
    for k, v in {**typed, "location": location}.items():
        values[k] = {k: {"type": "plain_text_input", "value": v}}
    return values


async def _where_in_the_teams_post(slack: FakeSlack) -> str:
    post: SlackMessage = (await until(lambda: slack.top_level("C0COHESION")))[0]
    return next(
        b["text"]["text"]
        for b in post.blocks
        if b["type"] == "section" and "Where" in b["text"]["text"]
    )


async def test_a_slack_message_link_answers_where_exactly_and_reaches_the_team_as_a_link(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    """A reporter in Slack pastes a message link (Slack's "Copy link") for "Where exactly?": a
    link to this workspace is kept and shown to the team as a link; another workspace's, or a
    broken one, is refused with a clear message and the form kept."""
    w, url = world
    priya, modal = await _priya_opens_the_form(w, url, slack)
    elsewhere = "https://another-place.slack.com/archives/C0ABCDEF1/p1764590400123456"
    status, body = await priya.submit_view(modal, _answers(elsewhere))
    assert status == 200 and body is not None
    assert "another Slack workspace" in body["errors"]["location"]
    broken = "https://tensionbot-test.slack.com/archives/C0ABCDEF1/p17645904"
    status, body = await priya.submit_view(modal, _answers(broken))
    assert body is not None and "Copy link" in body["errors"]["location"]

    link = "https://tensionbot-test.slack.com/archives/C0ABCDEF1/p1764590400123456"
    status, body = await priya.submit_view(modal, _answers(link))
    assert status == 200 and body is None
    where = await _where_in_the_teams_post(slack)
    assert f"<{link}|" in where  # a link the team can open, nothing else made of it
    assert where.count("<") == where.count(">")


async def test_an_answer_dressed_as_a_stored_message_link_stays_text_for_the_team(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    """Only a link the platform's checker accepts is shown to the team as a link: "Where
    exactly?" answered with text shaped like a stored link to another site stays text."""
    w, url = world
    priya, modal = await _priya_opens_the_form(w, url, slack)
    typed = "Message link: https://evil.example/archives/C0ABCDEF1/p1764590400123456"
    status, body = await priya.submit_view(modal, _answers(typed))
    assert status == 200 and body is None
    where = await _where_in_the_teams_post(slack)
    assert "evil.example" in where and "<https://evil" not in where


async def test_delivered_and_acknowledged_within_a_minute_reach_the_reporter_as_one_message(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> None:
    """With the default one-minute hold: the post goes out and Jane acknowledges it within the
    minute; Asha gets one message naming both, once the minute is up (the fake clock)."""
    port = free_port()
    config = slack_config(
        db_url, fake_telegram.base_url, slack, port, outbox={"news_hold_seconds": 60}
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        asha = await _report(w, "Leaflets through doors on two streets")
        post: SlackMessage = (await until(lambda: slack.top_level("C0COHESION")))[0]
        await w.settle()  # the post is recorded as delivered (its news is held)
        jane = SlackUser(slack, "U0JANE", f"http://127.0.0.1:{port}/slack/events")
        await jane.click(post, ActionId.ACK)
        await until(lambda: slack.thread("C0COHESION", post.ts))
        await w.settle()  # everything due has gone; the news is held
        assert not [m for m in asha.messages if "Delivered" in (m.text or "")]
        clock.advance(timedelta(seconds=61))
        w.runtime.dispatcher.wake()
        told = await asha.wait_for("Delivered to Cohesion Team")
        assert "Acknowledged by Jane Smith, Cohesion Team" in (told.text or "")
        await w.settle()
        news = [m for m in asha.messages if "TR-2026-12-0001" in (m.text or "")]
        assert [m for m in news if "submitted" not in (m.text or "")] == [told]
    finally:
        await w.stop()
