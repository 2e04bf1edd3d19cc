"""Crisis cadence from a Slack global shortcut (issue 18), from the person's side: the Prevent
and Cohesion Officer picks "Start a crisis return" from Slack's shortcut menu, fills the modal,
and the cadence starts (and is listed by ``/crisis``); a councillor is refused; the "Stop a
crisis return" shortcut stops it. Over the fake Slack and the fake Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from bot.clock import FakeClock
from handlers.slack.ids import ShortcutId
from sim.fake_slack import FakeSlack, SlackUser
from sim.manifest import MANIFEST_PATH
from sim.scripts import until
from sim.world import SimWorld, free_port
from tests.helpers import SLACK_PEOPLE_CSV, slack_config, team_slack

REFUSAL = "Only admins and the Prevent and Cohesion Officer can start or stop a crisis cadence."


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
    await w.import_people(SLACK_PEOPLE_CSV)  # Sam the Prevent officer, Mark a councillor
    yield w, f"http://127.0.0.1:{port}/slack/events"
    await w.stop()


def _told(slack: FakeSlack, user: str) -> list[str]:
    """What the bot told ``user`` privately (ephemerals, answers to their commands)."""
    return [e["text"] for e in slack.ephemerals(user)]


def _block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


async def test_the_prevent_officer_starts_and_stops_a_crisis_return_from_a_shortcut(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    asha = await w.link("asha@example.org", 501, "Asha")
    sam = SlackUser(slack, "U0SAM", url)

    assert await sam.shortcut(ShortcutId.CRISIS_START) == 200
    modal = (await until(lambda: slack.views_opened("U0SAM")))[-1]
    # Wards and neighbourhoods to choose from, roles, daily or weekly, an optional last day.
    places = _block(modal, "places")["element"]
    offered = [o["value"] for g in places["option_groups"] for o in g["options"]]
    assert "ward:Heath Town" in offered and "ward:Penn" in offered  # (no PACT config here)
    assert _block(modal, "until")["optional"] is True
    status, reply = await sam.submit_view(
        modal,
        {
            "places": {
                "pick": {
                    "type": "multi_static_select",
                    "selected_options": [{"value": "ward:Heath Town"}, {"value": "ward:Penn"}],
                }
            },
            "roles": {
                "pick": {
                    "type": "multi_static_select",
                    "selected_options": [{"value": "councillor"}],
                }
            },
            "every": {"pick": {"type": "radio_buttons", "selected_option": {"value": "weekly"}}},
            "until": {"pick": {"type": "datepicker", "selected_date": "2026-12-31"}},
        },
    )
    assert status == 200 and reply is None  # the modal closes
    started = (await until(lambda: _told(slack, "U0SAM")))[0]
    assert started.startswith("Started: crisis 1: weekly return for Heath Town, Penn")
    assert "(councillor), until 2026-12-31" in started
    await asha.wait_for("extra tension return")
    # Listed like any cadence, in /crisis and in campaign status.
    await sam.slash("/crisis", "")
    listed = (await until(lambda: len(_told(slack, "U0SAM")) == 2 and _told(slack, "U0SAM")))[1]
    assert listed.startswith("crisis 1: weekly return for Heath Town, Penn")
    assert [c.id for c in await w.services.crisis.active()] == [1]

    # Stop: the second shortcut offers the running cadences.
    assert await sam.shortcut(ShortcutId.CRISIS_STOP) == 200
    await until(lambda: len(slack.views_opened("U0SAM")) == 2)
    stop_modal = slack.views_opened("U0SAM")[-1]
    running = _block(stop_modal, "cadences")["element"]
    assert [o["value"] for o in running["options"]] == ["1"]
    status, reply = await sam.submit_view(
        stop_modal,
        {"cadences": {"pick": {"type": "checkboxes", "selected_options": [{"value": "1"}]}}},
    )
    assert status == 200 and reply is None
    stopped = (await until(lambda: len(_told(slack, "U0SAM")) == 3 and _told(slack, "U0SAM")))[2]
    assert stopped.startswith("Stopped: crisis 1")
    assert await w.services.crisis.active() == []
    actions = [a for a, _ in await _audit(w)]
    assert actions == ["crisis.start", "crisis.stop"]


async def test_a_councillor_is_refused_the_crisis_shortcuts_and_a_forged_modal(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    mark = SlackUser(slack, "U0MARK", url)
    for shortcut in (ShortcutId.CRISIS_START, ShortcutId.CRISIS_STOP):
        n = len(_told(slack, "U0MARK"))
        assert await mark.shortcut(shortcut) == 200
        told = await until(lambda n=n: _told(slack, "U0MARK")[n:])
        assert told == [REFUSAL]
    # A modal he was never shown, submitted all the same: refused on the form.
    sam = SlackUser(slack, "U0SAM", url)
    await sam.shortcut(ShortcutId.CRISIS_START)
    modal = (await until(lambda: slack.views_opened("U0SAM")))[-1]
    status, reply = await mark.submit_view(
        modal,
        {
            "places": {
                "pick": {
                    "type": "multi_static_select",
                    "selected_options": [{"value": "ward:Penn"}],
                }
            },
            "every": {"pick": {"type": "radio_buttons", "selected_option": {"value": "daily"}}},
        },
    )
    assert status == 200 and reply is not None and reply["response_action"] == "errors"
    assert REFUSAL in " ".join(reply["errors"].values())
    await w.settle()
    assert slack.views_opened("U0MARK") == []
    assert await w.services.crisis.all() == []


async def test_a_last_day_already_past_is_shown_on_the_date(
    world: tuple[SimWorld, str], slack: FakeSlack
) -> None:
    w, url = world
    sam = SlackUser(slack, "U0SAM", url)
    await sam.shortcut(ShortcutId.CRISIS_START)
    modal = (await until(lambda: slack.views_opened("U0SAM")))[-1]
    status, reply = await sam.submit_view(
        modal,
        {
            "places": {
                "pick": {
                    "type": "multi_static_select",
                    "selected_options": [{"value": "ward:Penn"}],
                }
            },
            "every": {"pick": {"type": "radio_buttons", "selected_option": {"value": "daily"}}},
            "until": {"pick": {"type": "datepicker", "selected_date": "2020-01-01"}},
        },
    )
    assert status == 200 and reply is not None
    assert reply["errors"] == {"until": "2020-01-01 has passed."}
    assert await w.services.crisis.all() == []


def test_the_manifest_declares_each_shortcut_as_global() -> None:
    """Slack shows a shortcut only if the app declares it: each listened for is in the
    manifest, as a global shortcut, with a name and description within Slack's limits."""
    data = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
    declared = {s["callback_id"]: s for s in data["features"]["shortcuts"]}
    assert set(declared) == {str(s) for s in ShortcutId}
    for shortcut in declared.values():
        assert shortcut["type"] == "global"
        assert 0 < len(shortcut["name"]) <= 24 and 0 < len(shortcut["description"]) <= 150


async def _audit(w: SimWorld) -> list[tuple[str, str]]:
    async with w.services.db.uow() as uow:
        entries = await uow.privacy.audit_about(["crisis:1"])
    return [(e.action, e.actor) for e in entries]
