"""No personal data in any log at any verbosity: ``tensionbot -vv`` (the most verbose setting) runs
a whole flow as real processes against the fake Telegram and Slack (import, link, a report
posted to a team's Slack channel, a summary, an erasure), and every log line is searched for the
person's name, email, Telegram name and report text. Data errors (a database refusing a row)
are logged without their parameters or row contents."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.logs import configure_logging
from sim.fake_slack import FakeSlack
from sim.world import free_port
from storage.database import Database
from tests.conftest import SLACK_ENV, TOKEN
from tests.helpers import team_slack
from tests.processes import ROOT, BotProcess


@dataclass
class Secrets:
    """Personal data found nowhere else (a fresh tag each run)."""

    name: str
    email: str
    first_name: str
    report: str
    since: str

    @classmethod
    def make(cls) -> Secrets:
        tag = uuid.uuid4().hex[:8]
        return cls(
            name=f"Ottoline Brackwater {tag}",
            email=f"obrack.{tag}@example.org",
            first_name=f"Otto{tag}",
            report=f"Threats {tag} painted on the synagogue gate",
            since=f"Since the {tag} march",
        )

    def all(self) -> list[str]:
        """Every value, and the parts a log might show alone."""
        return [self.name, self.email, self.first_name, self.report, self.since, "Brackwater"]


async def _cli(config: Path, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``tensionbot -vv --config CONFIG ARGS``: (exit status, stdout, stderr). The log goes to
    stderr; stdout is the command's answer (a list of people names people, by design)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "--config",
        str(config),
        "-vv",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class VerboseBot(BotProcess):
    """``tensionbot -vv run``."""

    def __init__(self, config: Path, log: Path, env: dict[str, str]) -> None:
        super().__init__(config, log)
        self.env = env

    def _env(self) -> dict[str, str]:
        return {**super()._env(), **self.env}

    async def start(self) -> None:
        with self.log.open("ab") as handle:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "--config",
                str(self.config),
                "-vv",
                "run",
                stdout=handle,
                stderr=handle,
                cwd=ROOT,
                env=self._env(),
            )


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack() as fake:
        yield fake


def _config(tmp_path: Path, db_url: str, telegram: str, slack: FakeSlack) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[partnership]
wards = ["Bilston South", "Blakenhall", "Heath Town", "Park", "Penn"]
[database]
url = "{db_url}"
[telegram]
api_base_url = "{telegram}"
bot_username = "swp_tension_bot"
poll_timeout = 1
[slack]
api_base_url = "{slack.base_url}"
port = {free_port()}
[schedule]
tick_seconds = 3600
[[teams]]
key = "cohesion"
name = "Cohesion Team"
organisation = "council"
slack_channel = "C0COHESION"
members = ["U0JANE"]
[routing]
default_team = "cohesion"
""")
    return config


async def test_the_most_verbose_logs_hold_no_names_emails_or_report_text(
    tmp_path: Path, db_url: str, fake_telegram: Any, slack: FakeSlack
) -> None:
    who = Secrets.make()
    env = {**SLACK_ENV, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN}
    config = _config(tmp_path, db_url, fake_telegram.base_url, slack)
    people = tmp_path / "people.csv"
    people.write_text(
        f"name,role,wards,organisation,email\n{who.name},councillor,Heath Town,Council,"
        f"{who.email}\n"
    )
    logs: list[str] = []
    status, _, err = await _cli(config, "people", "import", str(people), env=env)
    assert status == 0, err
    logs.append(err)
    status, invites, err = await _cli(config, "invites", "--format", "csv", env=env)
    assert status == 0 and who.name in invites, err  # the answer names them, by design
    logs.append(err)
    link = invites.strip().splitlines()[1].split(",")[2]

    bot = VerboseBot(config, tmp_path / "bot.log", env)
    await bot.start()
    try:
        user = fake_telegram.user(424242, first_name=who.first_name)
        await user.send_command("/start", link.split("start=")[1])
        await user.wait_for("Welcome", timeout=30)
        await user.send_command("/report")
        await user.wait_for("Which ward", timeout=15)
        await user.press("Heath Town")
        await user.wait_for("What kind of tension")
        await user.press("Religion or faith")
        await user.wait_for("What is happening")
        await user.send_text(who.report)
        await user.wait_for("Where exactly")
        await user.press("Skip")
        await user.wait_for("Since when")
        await user.send_text(who.since)
        for question, label in (
            ("How do you know", "Evidenced"),
            ("How serious", "2 Tension"),
            ("media", "Social media"),
            ("What impact", "Skip"),
            ("already been reported", "No"),
            ("May an officer", "No"),
            ("share your name", "No, keep"),
        ):
            await user.wait_for(question)
            await user.press(label)
        await user.wait_for(who.report)  # the review screen
        await user.press("Submit")
        await user.wait_for("TR-", timeout=15)

        async def posted() -> None:  # the team's Slack post carries the report text
            while not any(who.report in m.text for m in slack.messages("C0COHESION")):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(posted(), 30)
    finally:
        await bot.stop()
    logs.append(bot.log.read_text())
    status, _, err = await _cli(config, "people", "erase", who.email, "--yes", env=env)
    assert status == 0, err
    logs.append(err)

    logged = "\n".join(logs)
    assert "INFO bot.runtime" in logged  # the logs were captured
    assert [s for s in who.all() if s.casefold() in logged.casefold()] == []


async def test_a_database_error_is_logged_without_its_parameters_or_row(db_url: str) -> None:
    """A refused row (a repeated email) logged with its traceback, as a handler would."""
    db = Database(db_url)
    who = Secrets.make()
    insert = text(
        "INSERT INTO people (name, role, email, organisation, wards, active) "
        "VALUES (:name, 'councillor', :email, '', '[]', true)"
    )
    try:
        async with db.engine.begin() as conn:
            await conn.execute(insert, {"name": who.name, "email": who.email})
        with pytest.raises(IntegrityError) as caught:
            async with db.engine.begin() as conn:
                await conn.execute(insert, {"name": who.first_name, "email": who.email})
    finally:
        await db.dispose()
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        configure_logging(2, stream=stream)
        levels = [logging.getLogger(n).getEffectiveLevel() for n in ("bot.services", "aiosqlite")]
        try:
            raise RuntimeError("import failed") from caught.value
        except RuntimeError:
            logging.getLogger("bot.people.service").exception("people import failed")
        logging.getLogger("bot.people.service").error("refused: %s", caught.value)
    finally:
        root.handlers, root.level = saved
    logged = stream.getvalue()
    # Still says what happened, and which constraint (a name, not a value).
    assert "Traceback" in logged and "IntegrityError" in logged and "email" in logged
    assert [s for s in who.all() if s.casefold() in logged.casefold()] == []
    assert levels == [logging.DEBUG, logging.INFO]  # -vv: our code at DEBUG, libraries not


async def test_a_failing_people_import_at_the_most_verbose_prints_no_personal_data(
    tmp_path: Path, db_url: str
) -> None:
    """Two rows share a Slack id: the import is refused, and neither row's name, email or Slack
    id is printed (the log, the traceback, the message)."""
    who, other = Secrets.make(), Secrets.make()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\\nurl = "{db_url}"\\n')
    people = tmp_path / "people.csv"
    people.write_text(
        "name,role,wards,organisation,email,slack_user_id\\n"
        f"{who.name},councillor,Park,Council,{who.email},U0SAME\\n"
        f"{other.name},councillor,Park,Council,{other.email},U0SAME\\n"
    )
    status, out, err = await _cli(config, "people", "import", str(people), env={})
    assert status != 0
    printed = out + err
    secrets = [*who.all(), *other.all(), "U0SAME"]
    assert [s for s in secrets if s.casefold() in printed.casefold()] == []
