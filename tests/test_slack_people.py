"""People who live in Slack only (issue 14): everything a person is told goes to the platform
they use. A Slack-only reporter gets the four-weekly "is this still a problem?" check and answers
it in Slack; a Slack-only admin gets the admins' alerts. Both over the real Bolt app and the
fake Slack and Telegram servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from handlers.slack.ids import ActionId
from sim.fake_slack import FakeSlack, SlackMessage, SlackUser
from sim.scripts import until
from sim.world import SimWorld, free_port
from tests.helpers import slack_config, team_slack

PEOPLE = (
    "name,role,wards,email,slack_user_id\n"
    "Priya Shah,community_leader,Park,priya@example.org,U0PRIYA\n"
    "Jane Smith,officer,all,jane@example.org,U0JANE\n"
    "Ada Admin,admin,all,ada@example.org,U0ADA\n"
    "Cllr Asha Patel,councillor,Heath Town,asha@example.org,\n"
)


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
    await w.import_people(PEOPLE)
    yield w, f"http://127.0.0.1:{port}/slack/events"
    await w.stop()


def _select(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


async def _report_in_slack(w: SimWorld, slack: FakeSlack, priya: SlackUser) -> None:
    """Priya answers the month's return with one tension, in a Slack modal."""
    await w.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    form_dm = (await until(lambda: slack.dm("U0PRIYA")))[0]
    await priya.click(form_dm, ActionId.START)
    modal = (await until(slack.views_opened))[-1]
    values = {
        "ward": {"ward": _select("Park")},
        "category": {"category": _select("race")},
        "description": {
            "description": {"type": "plain_text_input", "value": "Racist graffiti on a shelter"}
        },
        "basis": {"basis": _select("experienced")},
        "level": {"level": _select("2")},
        "media": {"media": _select("none")},
        "already_reported": {"already_reported": _select("no")},
        "consent_contact": {"consent_contact": _select("yes")},
        "consent_share": {"consent_share": _select("no")},
    }
    status, body = await priya.submit_view(modal, values)
    assert status == 200 and body is None


def _check(slack: FakeSlack) -> list[SlackMessage]:
    return [m for m in slack.dm("U0PRIYA") if "Is this still a problem?" in m.text]


async def test_a_slack_only_reporter_is_asked_every_four_weeks_and_answers_in_slack(
    world: tuple[SimWorld, str], slack: FakeSlack, clock: FakeClock
) -> None:
    w, url = world
    priya, jane = SlackUser(slack, "U0PRIYA", url), SlackUser(slack, "U0JANE", url)
    await _report_in_slack(w, slack, priya)
    post = (await until(lambda: slack.top_level("C0COHESION")))[0]
    await jane.click(post, ActionId.ACK)
    await until(lambda: any("acknowledged by" in m.text.lower() for m in slack.dm("U0PRIYA")))

    clock.advance(timedelta(weeks=4))
    await w.tick()
    check = (await until(lambda: _check(slack)))[0]
    assert "TR-2026-12-0001" in check.text
    assert check.action_ids() == [ActionId.STILL, ActionId.SORTED]

    assert await priya.click(check, ActionId.STILL) == 200
    told = await until(
        lambda: [e for e in slack.ephemerals("U0PRIYA") if "still a problem" in e["text"]]
    )
    assert "We have told the team" in told[0]["text"]
    # The team is asked to acknowledge again, in its message and its thread.
    await until(
        lambda: (
            ActionId.ACK in slack.top_level("C0COHESION")[0].action_ids()
            and any(
                "still a problem" in m.text
                for m in slack.thread("C0COHESION", slack.top_level("C0COHESION")[0].ts)
            )
        )
    )

    # Someone else's click on her check changes nothing.
    seen = len(slack.ephemerals("U0JANE"))  # her earlier notes (the acknowledgement)
    assert await jane.click(check, ActionId.SORTED) == 200
    refused = await until(lambda: slack.ephemerals("U0JANE")[seen:])
    assert "not valid" in refused[0]["text"]


async def test_a_slack_only_admin_gets_the_admins_alerts(
    world: tuple[SimWorld, str], slack: FakeSlack, fake_telegram: Any
) -> None:
    w, _ = world
    asha = await w.link("asha@example.org", 501, "Asha")
    fake_telegram.block(asha.chat_id)
    await w.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    await w.settle()
    alerts = await until(lambda: [m for m in slack.dm("U0ADA") if "has blocked the bot" in m.text])
    assert "Cllr Asha Patel" in alerts[0].text and "tensionbot alert" in alerts[0].text
    await w.settle()
    assert len([m for m in slack.dm("U0ADA") if "has blocked the bot" in m.text]) == 1
