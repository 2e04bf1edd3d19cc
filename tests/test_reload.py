"""SIGHUP: ``tensionbot run`` re-reads teams, routing, deadlines and escalation without a restart.

A real process, the simulated Slack and Telegram: an officer outside the team is refused; an
invalid config on SIGHUP is refused with a log line and changes nothing; a valid one that adds
the officer (by email, through the people import's slack_user_id) lets the same click through.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_services
from bot.config import load_config
from bot.domain import Report
from handlers.slack.ids import ActionId
from sim.fake_slack import FakeSlack, SlackUser
from sim.scripts import until
from sim.world import free_port
from tests.conftest import SLACK_ENV
from tests.helpers import team_slack
from tests.processes import BotProcess

PEOPLE = """name,role,wards,organisation,email,slack_user_id
Jane Smith,officer,all,Council,jane@example.org,U0JANE
PC Dan Lee,officer,all,Police,dan@example.org,U0PC
Cllr Asha Patel,councillor,Heath Town,Council,asha@example.org,
"""


def _config(db_url: str, telegram: str, slack: str, port: int, members: list[str]) -> str:
    return f"""
[partnership]
wards = ["Heath Town", "Park"]
[database]
url = "{db_url}"
[telegram]
api_base_url = "{telegram}"
bot_username = "swp_tension_bot"
poll_timeout = 1
[slack]
api_base_url = "{slack}"
port = {port}
[cluster]
leader_retry_seconds = 0.5
[schedule]
tick_seconds = 3600
[routing]
default_team = "cohesion"
[[teams]]
key = "cohesion"
name = "Cohesion Team"
organisation = "council"
slack_channel = "C0COHESION"
members = {json.dumps(members)}
"""


class SlackBot(BotProcess):
    def _env(self) -> dict[str, str]:
        return {**super()._env(), **SLACK_ENV}


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack() as fake:
        yield fake


async def _route_a_report(config: Path) -> None:
    """A report routed in this process: the running bot's outbox posts it to the team."""
    services = await build_services(load_config(config, env={}), migrate=False)
    try:
        async with services.db.uow() as uow:
            asha = await uow.people.by_email("asha@example.org")
            assert asha is not None and asha.id is not None
            form = await services.forms.current(uow)
            report = Report(
                reference="TR-2026-12-0001",
                person_id=asha.id,
                source="adhoc",
                ward="Heath Town",
                category="religion",
                level=2,
                basis="experienced",
                answers={},
                form_version_id=form.id,
                created_at=datetime.now(UTC),
                period="2026-12",
            )
            await uow.reports.add(report)
            await services.actions.create_for_reports(uow, [report], datetime.now(UTC))
            await uow.commit()
    finally:
        await services.close()


async def test_sighup_reloads_team_members_and_refuses_an_invalid_config(
    tmp_path: Path, db_url: str, fake_telegram: Any, slack: FakeSlack
) -> None:
    port = free_port()
    config = tmp_path / "config.toml"

    def write(members: list[str], **replace: str) -> None:
        text = _config(db_url, fake_telegram.base_url, slack.base_url, port, members)
        for old, new in replace.items():
            text = text.replace(old, new)
        config.write_text(text)

    write(["U0JANE"])
    (tmp_path / "people.csv").write_text(PEOPLE)
    bot = SlackBot(config, tmp_path / "bot.log")
    await bot.cli("people", "import", str(tmp_path / "people.csv"))
    await bot.start()
    try:
        await until(lambda: "tensionbot is running" in bot.log.read_text(), 60)
        await _route_a_report(config)
        post = (await until(lambda: slack.top_level("C0COHESION"), 60))[0]
        url = f"http://127.0.0.1:{port}/slack/events"
        dan = SlackUser(slack, "U0PC", url)

        assert await dan.click(post, ActionId.ACK) == 200
        await until(lambda: slack.ephemerals("U0PC"))
        assert "Only members of Cohesion Team" in slack.ephemerals("U0PC")[0]["text"]

        # An invalid file (a misspelt default team) is refused; the running config stays.
        write(
            ["U0JANE", "dan@example.org"],
            **{'default_team = "cohesion"': 'default_team = "cohesoin"'},
        )
        assert bot.proc is not None
        bot.proc.send_signal(signal.SIGHUP)
        await until(lambda: "configuration reload refused" in bot.log.read_text(), 60)
        assert "routing.default_team: unknown team 'cohesoin'" in bot.log.read_text()
        assert await dan.click(post, ActionId.ACK) == 200
        await until(lambda: len(slack.ephemerals("U0PC")) >= 2)
        assert "Only members of Cohesion Team" in slack.ephemerals("U0PC")[1]["text"]

        # The same edit, valid: Dan (by his email, U0PC in the people import) may act.
        write(["U0JANE", "dan@example.org"])
        bot.proc.send_signal(signal.SIGHUP)
        await until(lambda: "configuration reloaded" in bot.log.read_text(), 60)
        assert await dan.click(post, ActionId.ACK) == 200
        await until(lambda: post.updates >= 1, 60)
        assert "Status:* Acknowledged" in json.dumps(post.blocks)
        assert bot.proc.returncode is None  # one process all along
        assert "dan@example.org" not in bot.log.read_text()  # emails are never logged
    finally:
        await bot.stop()


def test_a_reload_may_change_teams_and_routing_but_not_what_needs_a_restart() -> None:
    from bot.app import reload_problem
    from bot.config import config_from_mapping

    team = {"key": "npt", "name": "P", "organisation": "police", "slack_channel": "C01"}
    running = config_from_mapping({"teams": [team]}, source="c.toml", env={})
    more = config_from_mapping(
        {
            "teams": [dict(team, members=["U0PC", "dan@example.org"])],
            "routing": {"default_team": "npt"},
            "deadlines": {"urgent_ack_hours": 2},
            "escalation": {"rungs": [{"after_hours": 1, "target": "team"}]},
        },
        source="c.toml",
        env={},
    )
    assert reload_problem(running, more) is None
    moved = config_from_mapping(
        {"teams": [team], "database": {"url": "postgresql+asyncpg://u:p@db/x"}},
        source="c.toml",
        env={},
    )
    assert reload_problem(running, moved) == (
        "[database] changed, which needs a restart (a reload applies only teams, routing, "
        "deadlines, escalation)"
    )
