"""``tensionbot doctor`` against the simulated Telegram and Slack: all good exits 0; each fault
(wrong username, missing scope, bot not in a channel, webhook elsewhere, bad tokens, no signing
secret, database not migrated) is a ✗ line naming the fix, and exit status 1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from sim.fake_slack import FakeSlack
from sim.fake_telegram import FakeTelegram
from sim.manifest import manifest_scopes
from tests.conftest import SLACK_ENV, TOKEN
from tests.helpers import team_slack
from tests.test_actions import TEAMS

ENV = {"TENSIONBOT_TELEGRAM_TOKEN": TOKEN, **SLACK_ENV}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings and numbers: JSON's form is TOML's


def write_config(
    path: Path, db_url: str, telegram: FakeTelegram, slack: FakeSlack, **telegram_keys: Any
) -> Path:
    """A config file for the fakes: the three teams, a duty channel and a summary channel."""
    keys = {"api_base_url": telegram.base_url, "bot_username": "swp_tension_bot", **telegram_keys}
    lines = [f'[database]\nurl = "{db_url}"', "[telegram]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items() if v is not None]
    lines += ["[slack]", f'api_base_url = "{slack.base_url}"']
    lines += ["[summaries]", 'channels = ["C0BOARD"]']
    lines += ["[[escalation.rungs]]", "after_hours = 0", 'target = "team"']
    lines += ["[[escalation.rungs]]", "after_hours = 4", 'target = "C0DUTY"']
    for team in TEAMS:
        lines.append("[[teams]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in team.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


async def doctor(config: Path, env: dict[str, str | None] | None = None) -> Result:
    """Run ``tensionbot --config CONFIG doctor`` (in a thread: the fakes answer on this loop)."""
    runner = CliRunner()
    environment: dict[str, str | None] = {**ENV, **(env or {})}
    return await asyncio.to_thread(
        runner.invoke, main, ["--config", str(config), "doctor"], env=environment
    )


def failures(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("✗")]


@pytest.fixture
async def slack() -> Any:
    extra = [("C0BOARD", "swp-board", []), ("C0DUTY", "duty", [])]
    async with team_slack(*extra) as fake:
        yield fake


async def test_all_good_exits_zero(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    result = await doctor(write_config(tmp_path / "c.toml", db_url, fake_telegram, slack))
    assert result.exit_code == 0, result.output
    assert failures(result) == []
    for expected in (
        "✓ Telegram token valid: the bot is @swp_tension_bot",
        "✓ no webhook set (telegram.mode is polling)",
        "✓ Slack token has every scope the features need",
        "✓ the bot is a member of #prevent (G0PREVENT, team prevent)",
        "✓ the bot is a member of #duty (C0DUTY, escalation (duty))",
        "✓ the bot is a member of #swp-board (C0BOARD, summaries)",
        "✓ database reachable and migrated",
        "✓ proxy for Telegram: none (direct)",
    ):
        assert expected in result.output
    assert result.output.rstrip().endswith("all good")


async def test_a_bot_username_that_is_not_this_tokens_bot(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    config = write_config(
        tmp_path / "c.toml", db_url, fake_telegram, slack, bot_username="tensionbot"
    )
    result = await doctor(config)
    assert result.exit_code == 1
    (line,) = failures(result)
    assert "bot_username is @tensionbot but the token is @swp_tension_bot's" in line
    assert 'set bot_username = "swp_tension_bot"' in line


async def test_unset_bot_username_uses_getme(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    config = write_config(tmp_path / "c.toml", db_url, fake_telegram, slack, bot_username=None)
    result = await doctor(config)
    assert result.exit_code == 0, result.output
    assert "✓ invitation links name @swp_tension_bot (getMe; bot_username unset)" in result.output


async def test_a_missing_scope_names_the_scope_and_the_feature(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    slack.scopes = [s for s in manifest_scopes() if s != "files:write"]
    result = await doctor(write_config(tmp_path / "c.toml", db_url, fake_telegram, slack))
    assert result.exit_code == 1
    (line,) = failures(result)
    assert "lacks scopes: files:write (uploads)" in line
    assert "reinstall the app" in line


async def test_a_channel_the_bot_is_not_in(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    slack.add_channel("C0NPT", "npt", ["U0PC"], bot_is_member=False)
    slack.add_channel("C0DUTY", "duty", [], bot_is_member=False)
    result = await doctor(write_config(tmp_path / "c.toml", db_url, fake_telegram, slack))
    assert result.exit_code == 1
    assert failures(result) == [
        "✗ the bot is not a member of #npt (C0NPT, team npt) — in that channel type "
        "/invite @tensionbot",
        "✗ the bot is not a member of #duty (C0DUTY, escalation (duty)) — in that channel type "
        "/invite @tensionbot",
    ]


async def test_a_webhook_elsewhere_than_the_config_says(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{fake_telegram.base_url}/bot{TOKEN}/setWebhook"
        async with http.post(url, json={"url": "https://old.example.org/tg"}) as resp:
            assert resp.status == 200
    webhook = write_config(
        tmp_path / "w.toml",
        db_url,
        fake_telegram,
        slack,
        mode="webhook",
        webhook_url="https://bot.example.org/telegram",
    )
    result = await doctor(webhook)
    assert result.exit_code == 1
    (line,) = failures(result)
    assert "webhook is https://old.example.org/tg, the config says " in line
    assert "fix telegram.webhook_url" in line

    polling = await doctor(write_config(tmp_path / "p.toml", db_url, fake_telegram, slack))
    assert polling.exit_code == 1
    (line,) = failures(polling)
    assert "a webhook is set (https://old.example.org/tg) but telegram.mode is polling" in line


async def test_bad_tokens(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    config = write_config(tmp_path / "c.toml", db_url, fake_telegram, slack)
    env: dict[str, str | None] = {
        "TENSIONBOT_TELEGRAM_TOKEN": "123456:WRONG",
        "TENSIONBOT_SLACK_BOT_TOKEN": "xoxb-wrong",
    }
    result = await doctor(config, env)
    assert result.exit_code == 1
    telegram, slack_token = failures(result)
    assert "Telegram refused the token" in telegram
    assert "set TENSIONBOT_TELEGRAM_TOKEN to the token @BotFather gave" in telegram
    assert "Slack refused the token (auth.test: invalid_auth)" in slack_token
    assert "Bot User OAuth Token" in slack_token


async def test_no_signing_secret_in_http_mode(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    config = write_config(tmp_path / "c.toml", db_url, fake_telegram, slack)
    result = await doctor(config, {"TENSIONBOT_SLACK_SIGNING_SECRET": None})
    assert result.exit_code == 1
    (line,) = failures(result)
    assert "Slack signing secret not set (slack.mode is http)" in line
    assert "set TENSIONBOT_SLACK_SIGNING_SECRET" in line


async def test_a_database_not_migrated(
    tmp_path: Path, fake_telegram: FakeTelegram, slack: FakeSlack
) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    result = await doctor(write_config(tmp_path / "c.toml", empty, fake_telegram, slack))
    assert result.exit_code == 1
    (line,) = failures(result)
    assert "run `tensionbot db upgrade`" in line


async def test_invitation_links_name_the_tokens_bot_when_the_config_leaves_it_unset(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[telegram]\napi_base_url = "{fake_telegram.base_url}"\n'
    )
    people = tmp_path / "people.csv"
    people.write_text("name,role,wards,email\nAsha,councillor,Heath Town,asha@x.org\n")
    runner = CliRunner()
    env = {"TENSIONBOT_TELEGRAM_TOKEN": TOKEN}
    base = ["--config", str(config)]
    imported = await asyncio.to_thread(
        runner.invoke, main, [*base, "people", "import", str(people)], env=env
    )
    assert imported.exit_code == 0, imported.output
    result = await asyncio.to_thread(
        runner.invoke, main, [*base, "invites", "--format", "json"], env=env
    )
    assert result.exit_code == 0, result.output
    (link,) = json.loads(result.output)
    assert link["link"].startswith("https://t.me/swp_tension_bot?start=")
    assert [c.method for c in fake_telegram.calls] == ["getMe"]

    # Without a token there is no way to know the bot: a one-line error, no link to a stranger.
    no_token = await asyncio.to_thread(
        runner.invoke, main, [*base, "invites"], env={"TENSIONBOT_TELEGRAM_TOKEN": ""}
    )
    assert no_token.exit_code == 2
    assert "set telegram.bot_username" in no_token.output
