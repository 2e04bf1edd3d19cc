"""Slack end to end: a tension submitted on Telegram becomes an action in the team's Slack
channel; officers act on it through the real Bolt app (signed HTTP requests) and the reporter
hears about every step on Telegram. Both platforms are local fake servers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.clock import FakeClock
from handlers.slack.ids import ActionId, ViewId
from sim.fake_slack import FakeSlack, SlackMessage, SlackUser
from sim.scripts import fill_tension, tension, until
from sim.world import SimWorld, free_port
from tests.conftest import SLACK_ENV, make_config
from tests.helpers import PEOPLE_CSV, start_slack_world, team_slack
from tests.test_actions import ROUTING, TEAMS


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack() as fake:
        yield fake


@pytest.fixture
async def world(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[tuple[SimWorld, str]]:
    w, port = await start_slack_world(db_url, fake_telegram, slack, clock, people=PEOPLE_CSV)
    yield w, f"http://127.0.0.1:{port}/slack/events"
    await w.stop()


async def _wait(predicate: Any, timeout: float = 60.0) -> Any:
    return await until(predicate, timeout)


async def _submit(w: SimWorld, category: str, description: str) -> Any:
    asha = await w.link("asha@example.org", 501, "Asha")
    async with w.services.db.uow() as uow:
        form = (await w.services.forms.current(uow)).definition
    await asha.send_command("/report")
    await fill_tension(asha, form, tension("Heath Town", category, description))
    await asha.press("Submit")
    await asha.wait_for("has been submitted")
    return asha


async def test_an_acknowledgement_before_the_bot_knows_its_post_still_reaches_slack(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    """The post is in the channel, but Slack's answer (with its ts) has not reached the bot yet
    when an officer acknowledges it: the post and its thread must still show the change.
    (Found under load by the fault suite: the acknowledgement was dropped.)"""
    w, url = world
    slack.hold_answers("chat.postMessage")
    await _submit(w, "religion", "Graffiti on the community centre")
    post: SlackMessage = (await _wait(lambda: slack.top_level("C0COHESION")))[0]
    await _wait(lambda: slack.held > 0)
    jane = SlackUser(slack, "U0JANE", url)
    assert await jane.click(post, ActionId.ACK) == 200
    await _wait(lambda: any("Acknowledged" in e["text"] for e in slack.ephemerals("U0JANE")))
    slack.release_answers()
    await _wait(lambda: "Status:* Acknowledged" in json.dumps(post.blocks))
    await _wait(
        lambda: any(m.text.startswith("Acknowledged:") for m in slack.thread("C0COHESION", post.ts))
    )
    await w.settle()
    thread = [m for m in slack.thread("C0COHESION", post.ts) if m.text.startswith("Acknowledged:")]
    assert len(thread) == 1 and post.updates == 1  # caught up once, not twice


async def test_action_lifecycle_through_slack(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    evil = "Leaflets: <!channel> <@U0PC> <https://evil.example|click> & more"
    asha = await _submit(w, "religion", evil)
    post: SlackMessage = (await _wait(lambda: slack.top_level("C0COHESION")))[0]
    section = json.dumps(post.blocks)
    assert "&lt;!channel&gt; &lt;@U0PC&gt; &lt;https://evil.example|click&gt; &amp; more" in section
    assert "<!channel>" not in section and "<!channel>" not in post.text
    assert post.action_ids() == [
        ActionId.ACK,
        ActionId.UPDATE,
        ActionId.CLOSE,
        ActionId.REASSIGN,
        ActionId.RECATEGORISE,
    ]
    await asha.wait_for("delivered to Cohesion Team")

    # Nobody acknowledges it by its deadline (Thu 3 Dec 09:30): the ladder's first rung reminds
    # the team in the message's thread.
    from datetime import timedelta

    w.clock.advance(timedelta(days=2))
    assert await w.services.actions.tick() == {"team": 1}
    await _wait(
        lambda: any("not acknowledged yet" in m.text for m in slack.thread("C0COHESION", post.ts))
    )

    # Someone outside the team is refused, privately, and nothing changes.
    outsider = SlackUser(slack, "U0PC", url)
    assert await outsider.click(post, ActionId.ACK) == 200
    await _wait(lambda: slack.ephemerals("U0PC"))
    assert "Only members of Cohesion Team" in slack.ephemerals("U0PC")[0]["text"]

    jane = SlackUser(slack, "U0JANE", url)
    assert await jane.click(post, ActionId.ACK) == 200
    await _wait(lambda: post.updates >= 1)
    assert "Status:* Acknowledged" in json.dumps(post.blocks)
    assert ActionId.ACK not in post.action_ids()
    await asha.wait_for("Acknowledged by Jane Smith, Cohesion Team")
    assert any(
        m.text == "Acknowledged by Jane Smith, Cohesion Team"
        for m in slack.thread("C0COHESION", post.ts)
    )
    # A double click on the stale Acknowledge button: told, no second event.
    stale = SlackMessage(post.channel, post.ts, post.text, json.loads(section), None, post.user)
    await jane.click(stale, ActionId.ACK)
    await _wait(lambda: any("Someone else" in e["text"] for e in slack.ephemerals("U0JANE")))

    # Add an update for the reporter through the modal.
    await jane.click(post, ActionId.UPDATE)
    modal = (await _wait(slack.views_opened))[-1]
    assert modal["callback_id"] == ViewId.UPDATE
    status, body = await jane.submit_view(
        modal,
        {
            "text": {
                "text": {"type": "plain_text_input", "value": "Officers visited <b>today</b>."}
            },
            "for_reporter": {
                "for_reporter": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}
            },
        },
    )
    assert status == 200 and body is None
    await asha.wait_for("Officers visited <b>today</b>.".replace("<", "&lt;").replace(">", "&gt;"))
    await _wait(lambda: "Status:* In progress" in json.dumps(post.blocks))  # refreshed buttons

    # Resolve: "not our responsibility" without saying where to go is refused in the modal.
    await jane.click(post, ActionId.CLOSE)
    modal = (
        await _wait(lambda: [v for v in slack.views_opened() if v["callback_id"] == ViewId.CLOSE])
    )[-1]
    status, body = await jane.submit_view(
        modal,
        {
            "outcome": {
                "outcome": {
                    "type": "static_select",
                    "selected_option": {"value": "not_our_responsibility"},
                }
            },
            "note": {"note": {"type": "plain_text_input", "value": ""}},
        },
    )
    assert status == 200 and body is not None and body["response_action"] == "errors"
    status, body = await jane.submit_view(
        modal,
        {
            "outcome": {
                "outcome": {
                    "type": "static_select",
                    "selected_option": {"value": "not_our_responsibility"},
                }
            },
            "note": {"note": {"type": "plain_text_input", "value": "Housing: call 01902 556789"}},
        },
    )
    assert status == 200 and body is None
    await asha.wait_for("Housing: call 01902 556789")
    await _wait(lambda: "Closed: not our responsibility" in json.dumps(post.blocks))
    assert post.action_ids() == []

    timeline = [e.kind for e in await w.services.actions.timeline(1)]
    assert timeline == ["created", "delivered", "reminder", "acknowledged", "update", "closed"]
    # What the reporter saw, in order, each with the reference.
    told = [m.text or "" for m in asha.messages if "TR-2026-12-0001" in (m.text or "")]
    assert [t.split("</b>")[0].split("<b>")[-1] for t in told[1:]] == [
        "Delivered to Cohesion Team",
        "Acknowledged by Jane Smith, Cohesion Team",
        "Update from Jane Smith, Cohesion Team",
        "Closed by Jane Smith, Cohesion Team",
    ]


async def test_forged_and_stale_signatures_are_refused(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    await _submit(w, "race", "Name-calling outside the school gates every morning.")
    post = (await _wait(lambda: slack.top_level("C0COHESION")))[0]
    user = SlackUser(slack, "U0JANE", url)
    body = b'payload={"type":"block_actions"}'
    status, _ = await user.raw(
        body,
        {
            **user.sign(body),
            "X-Slack-Signature": "v0=" + "0" * 64,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 401
    old = user.sign(body, timestamp=int(time.time()) - 600)
    status, _ = await user.raw(body, {**old, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    await asyncio.sleep(0.2)
    assert post.updates == 0 and slack.ephemerals("U0JANE") == []


async def test_unpostable_channel_keeps_the_action_queued(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, _ = world
    await w.import_people("name,role,wards,email\nAda Admin,admin,all,ada@example.org\n")
    ada = await w.link("ada@example.org", 599, "Ada")
    slack.inject("chat.postMessage", error="not_in_channel", times=1)
    asha = await _submit(w, "disability", "Abuse shouted at a wheelchair user near the market.")
    post = (await _wait(lambda: slack.top_level("C0COHESION"), timeout=60))[0]
    assert "TR-2026-12-0001" in post.text
    await asha.wait_for("delivered to Cohesion Team")
    assert next(c.error for c in slack.calls_for("chat.postMessage")) == "not_in_channel"
    alert = await ada.wait_for("tensionbot alert")
    assert "C0COHESION" in (alert.text or "") and "stays queued" in (alert.text or "")


async def test_escalation_reaches_channels_and_people(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> None:
    from datetime import timedelta

    slack.add_channel("C0DUTY", "swp-duty", ["U0SAM"])
    config = make_config(
        db_url,
        fake_telegram.base_url,
        env=SLACK_ENV,
        teams=TEAMS,
        routing=ROUTING,
        slack={"api_base_url": slack.base_url, "port": free_port()},
        escalation={
            "rungs": [
                {"after_hours": 0, "target": "team"},
                {"after_hours": 1, "target": "C0DUTY"},
                {"after_hours": 2, "target": "U0SAM"},
            ]
        },
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        await _submit(w, "crime_asb", "Two groups of teenagers squaring up outside the chip shop.")
        post = (await _wait(lambda: slack.top_level("C0NPT")))[0]
        await w.settle()  # the posts are recorded as delivered before the deadline passes
        for hours in (24 * 3, 1, 1):  # Tue 1 Dec 09:30 + 2 working days is Thu 3 Dec 09:30
            clock.advance(timedelta(hours=hours))
            await w.services.actions.tick()
        await w.settle()
        assert any("not acknowledged yet" in m.text for m in slack.thread("C0NPT", post.ts))
        # Crime/ASB went to two teams; each unacknowledged action climbs its own ladder.
        duty = slack.top_level("C0DUTY")
        assert sorted(m.text.split("Routed to ")[1].split(" and")[0] for m in duty) == [
            "Cohesion Team",
            "Neighbourhood Police",
        ]
        assert {c.params["users"] for c in slack.calls_for("conversations.open")} == {"U0SAM"}
        dm = [m for c in slack._channels for m in slack.messages(c) if c.startswith("D")]
        assert len(dm) == 2 and all("Escalation" in m.text for m in dm)
    finally:
        await w.stop()


async def test_a_reporter_who_lives_in_slack(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> None:
    w, port = await start_slack_world(db_url, fake_telegram, slack, clock)
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        await w.import_people(
            "name,role,wards,email,slack_user_id\n"
            "Priya Shah,community_leader,Park,priya@example.org,U0PRIYA\n"
        )
        await w.services.campaigns.open_monthly("2026-12", actor="t", force=True)
        form_dm = (await _wait(lambda: slack.dm("U0PRIYA")))[0]
        assert "tension return for December 2026" in form_dm.text
        assert form_dm.action_ids() == [ActionId.START, ActionId.NIL]

        priya = SlackUser(slack, "U0PRIYA", url)
        await priya.click(form_dm, ActionId.START)
        modal = (await _wait(slack.views_opened))[-1]
        assert modal["callback_id"] == ViewId.REPORT
        assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"][:3] == [
            "ward",
            "category",
            "description",
        ]

        def select(value: str) -> dict[str, Any]:
            return {"type": "static_select", "selected_option": {"value": value}}

        def text(value: str) -> dict[str, Any]:
            return {"type": "plain_text_input", "value": value}

        values = {
            "ward": {"ward": select("Park")},
            "category": {"category": select("race")},
            "description": {"description": text("short")},
            "basis": {"basis": select("experienced")},
            "level": {"level": select("2")},
            "media": {"media": select("none")},
            "already_reported": {"already_reported": select("no")},
            "consent_contact": {"consent_contact": select("yes")},
        }
        status, body = await priya.submit_view(modal, values)
        assert status == 200 and body is not None
        assert body["errors"] == {
            "description": "Please give at least 10 characters.",
            "consent_share": "Please answer this.",
        }
        values["description"] = {"description": text("Racist graffiti on the <!here> bus shelter")}
        values["consent_share"] = {"consent_share": select("no")}
        status, body = await priya.submit_view(modal, values)
        assert status == 200 and body is None
        post = (await _wait(lambda: slack.top_level("C0COHESION")))[0]
        assert "&lt;!here&gt;" in json.dumps(post.blocks) and "<!here>" not in post.text
        await _wait(lambda: any("has been submitted" in m.text for m in slack.dm("U0PRIYA")))
        await _wait(
            lambda: any("Delivered to Cohesion Team" in m.text for m in slack.dm("U0PRIYA"))
        )
        campaign = await w.services.campaigns.resolve("2026-12")
        assert campaign.id is not None
        status_ = await w.services.campaigns.status(campaign.id, actor="t")
        assert status_.counts == {"responded": 1}

        # The App Home: her reports and where they stand; a stranger is refused.
        assert (
            await priya.event({"type": "app_home_opened", "user": "U0PRIYA", "tab": "home"}) == 200
        )
        home = json.dumps((await _wait(lambda: slack.home_views("U0PRIYA")))[-1])
        assert "TR-2026-12-0001" in home and "Report a tension" in home
        stranger = SlackUser(slack, "U0EVE", url)
        await stranger.event({"type": "app_home_opened", "user": "U0EVE", "tab": "home"})
        refused = json.dumps((await _wait(lambda: slack.home_views("U0EVE")))[-1])
        assert "only for people invited" in refused
        await priya.click(form_dm, ActionId.NIL)  # after reporting: told, nothing changes
        await _wait(
            lambda: any("already sent reports" in e["text"] for e in slack.ephemerals("U0PRIYA"))
        )
    finally:
        await w.stop()


async def test_socket_mode_for_development(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> None:
    """In Socket Mode the bot connects out to Slack: clicks arrive over the websocket and are
    acknowledged there; no HTTP endpoint is needed."""
    config = make_config(
        db_url,
        fake_telegram.base_url,
        env={**SLACK_ENV, "TENSIONBOT_SLACK_APP_TOKEN": slack.app_token},
        teams=TEAMS,
        routing=ROUTING,
        slack={"api_base_url": slack.base_url, "mode": "socket", "port": free_port()},
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        await slack.wait_connected()
        asha = await _submit(w, "religion", "Graffiti on the gurdwara wall, twice this week.")
        post = (await _wait(lambda: slack.top_level("C0COHESION")))[0]
        await w.settle()
        jane = SlackUser(slack, "U0JANE", "http://127.0.0.1:9/unused")
        await jane.click(post, ActionId.ACK, socket=True)
        await _wait(lambda: post.updates >= 1)
        await asha.wait_for("Acknowledged by Jane Smith, Cohesion Team")
        assert slack.socket_acks and "envelope_id" in slack.socket_acks[0]
    finally:
        await w.stop()


async def test_rate_limits_are_honoured_and_reassign_works_from_slack(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    slack.inject("chat.postMessage", status=429, retry_after=1, times=1)
    started = time.monotonic()
    asha = await _submit(w, "religion", "Abuse shouted at worshippers leaving Friday prayers.")
    post = (await _wait(lambda: slack.top_level("C0COHESION")))[0]
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert [c.status for c in slack.calls_for("chat.postMessage")][:2] == [429, 200]
    assert len(slack.top_level("C0COHESION")) == 1  # sent once
    await w.settle()

    jane = SlackUser(slack, "U0JANE", url)
    await jane.click(post, ActionId.REASSIGN)
    modal = (await _wait(slack.views_opened))[-1]
    assert modal["callback_id"] == ViewId.REASSIGN
    options = modal["blocks"][0]["element"]["options"]
    assert [o["value"] for o in options] == ["npt", "prevent"]  # every other team
    status, body = await jane.submit_view(
        modal, {"team": {"team": {"type": "static_select", "selected_option": {"value": "npt"}}}}
    )
    assert status == 200 and body is None
    moved = (await _wait(lambda: slack.top_level("C0NPT")))[0]
    assert "TR-2026-12-0001" in moved.text
    await asha.wait_for("passed to Neighbourhood Police")
    await _wait(lambda: "reassigned to Neighbourhood Police" in json.dumps(post.blocks))
