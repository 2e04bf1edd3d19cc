"""A running ``tensionbot run`` holds only what its configuration uses.

Each heavy library costs the idle service megabytes of resident memory for as long as it runs
(bench/footprint.py measures it). So the real command is started as a process, left to become
the leader and run each scheduler tick once, and then asked (SIGUSR1) which modules it has
loaded: charts, spreadsheets and statistics are loaded only when a summary is made, Slack only
when it is configured, email, the web pages and calendars only when they are used, cryptography
only when text is encrypted or decrypted (not for PTB's Telegram Passport, handlers/ptb.py, nor
for an encryption key that has not been used yet), the migration
tool never (a start that finds the database behind migrates it in a child process), and the
PostgreSQL driver and SQLAlchemy's PostgreSQL
dialect only on PostgreSQL. No timing and no memory figure is asserted: only which modules.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sim.fake_slack import FakeSlack
from sim.world import free_port
from tests.conftest import SLACK_ENV, backend
from tests.processes import ROOT, BotProcess

#: Charts, spreadsheets and statistics: loaded when a summary or an export is made, never idle.
ANALYSIS = ("matplotlib", "openpyxl", "scipy", "numpy", "statsmodels", "PIL", "pandas")
#: Loaded only for a feature this test's configurations leave off (Alembic: never in the service,
#: which migrates in a child process; the test databases are migrated already anyway;
#: cryptography only once text is encrypted or decrypted, for the Fernet columns: PTB's Passport
#: support, which would load it whenever it is installed, is left out, handlers/ptb.py).
UNUSED = ("aiosmtplib", "jinja2", "icalendar", "alembic", "mako", "playwright", "cryptography")
SLACK = ("slack_bolt", "slack_sdk")

#: The scheduler's ticks, each run once at start-up (scheduler/__init__.py).
TICKS = ("campaign", "action", "summary", "pact", "retention")

#: ``tensionbot run`` exactly as the console script runs it, plus a SIGUSR1 handler that writes
#: the loaded modules' names, and the files whose source lines are cached, to a file (a signal
#: handler runs on the main thread, between two steps of the event loop).
PROBE = """
import json, linecache, os, signal, sys
out = sys.argv[1]
def dump(signum, frame):
    with open(out + ".tmp", "w") as fh:
        json.dump({"modules": sorted(sys.modules), "sources": sorted(linecache.cache)}, fh)
    os.replace(out + ".tmp", out)
signal.signal(signal.SIGUSR1, dump)
from bot.cli import main
main(sys.argv[2:], prog_name="tensionbot")
"""


class ProbedBot(BotProcess):
    """``tensionbot run`` that tells, on SIGUSR1, which modules it has loaded."""

    stop_timeout = 30.0

    def __init__(self, config: Path, log: Path, env: dict[str, str]) -> None:
        super().__init__(config, log)
        self.extra_env = env
        self.modules_file = log.with_suffix(".modules.json")

    def _env(self) -> dict[str, str]:
        return {**super()._env(), **self.extra_env}

    async def start(self) -> None:
        with self.log.open("ab") as handle:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                PROBE,
                str(self.modules_file),
                "--config",
                str(self.config),
                "-v",
                "run",
                stdout=handle,
                stderr=handle,
                cwd=ROOT,
                env=self._env(),
            )

    async def wait_log(self, needles: tuple[str, ...], timeout: float = 120) -> None:
        """Until every needle is in the log (a condition, not a time: generous for CI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            text = self.log.read_text()
            assert self.proc.returncode is None, text[-3000:]
            if all(n in text for n in needles):
                return
            await asyncio.sleep(0.2)
        missing = [n for n in needles if n not in self.log.read_text()]
        raise AssertionError(f"not in the log after {timeout}s: {missing}")

    async def loaded_when_idle(self) -> tuple[set[str], list[str]]:
        """Start; wait until it leads and every scheduler tick has run once (APScheduler logs
        each job's end); ask for the modules and the cached sources; stop."""
        await self.start()
        try:
            await self.wait_log(("this process is the leader", "tensionbot is running"))
            deadline = time.monotonic() + 120
            while self.log.read_text().count("executed successfully") < len(TICKS):
                assert time.monotonic() < deadline, self.log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            assert self.proc is not None
            self.proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 60
            while not self.modules_file.exists():
                assert time.monotonic() < deadline, "no module list written"
                assert self.proc.returncode is None, self.log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            found = json.loads(self.modules_file.read_text())
            return set(found["modules"]), list(found["sources"])
        finally:
            await self.stop()


def _config(path: Path, db_url: str, telegram: str, *, webhook: str = "", extra: str = "") -> Path:
    """A configuration file; ``webhook``: Telegram's webhook URL (else polling)."""
    mode = f'mode = "webhook"\nwebhook_url = "{webhook}"' if webhook else ""
    path.write_text(
        f"""
[partnership]
wards = ["Bilston South", "Heath Town", "Park"]
[database]
url = "{db_url}"
[telegram]
api_base_url = "{telegram}"
bot_username = "swp_tension_bot"
poll_timeout = 1
{mode}
[cluster]
leader_retry_seconds = 0.5
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """The fake Slack Web API on 127.0.0.1."""
    slack = FakeSlack()
    await slack.start()
    yield slack
    await slack.stop()


def _heavy(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of ``names`` (packages and their submodules) that are loaded."""
    return sorted(m for m in loaded if m.split(".")[0] in names)


async def test_the_polling_bot_without_slack_loads_no_slack_charts_or_statistics(
    tmp_path: Path, db_url: str, fake_telegram: Any
) -> None:
    config = _config(tmp_path / "config.toml", db_url, fake_telegram.base_url)
    bot = ProbedBot(config, tmp_path / "bot.log", {})
    loaded, _ = await bot.loaded_when_idle()
    assert "telegram.ext" in loaded and "apscheduler" in loaded  # the probe saw a running bot
    assert _heavy(loaded, ANALYSIS) == []
    assert _heavy(loaded, SLACK) == []
    assert _heavy(loaded, UNUSED) == []
    if backend() == "sqlite":  # neither the driver nor SQLAlchemy's dialect for PostgreSQL
        assert _heavy(loaded, ("asyncpg",)) == []
        assert "sqlalchemy.dialects.postgresql" not in loaded


async def test_the_service_with_slack_and_a_webhook_loads_slack_but_no_charts_or_statistics(
    tmp_path: Path, db_url: str, fake_telegram: Any, fake_slack: FakeSlack
) -> None:
    port = free_port()
    config = _config(
        tmp_path / "config.toml",
        db_url,
        fake_telegram.base_url,
        webhook=f"http://127.0.0.1:{port}/telegram",
        extra=f"""
[server]
listen = "127.0.0.1"
port = {port}
[slack]
api_base_url = "{fake_slack.base_url}"
[[teams]]
key = "cohesion"
name = "Community Cohesion Team"
organisation = "council"
slack_channel = "C0COHESION"
members = ["U0JANE"]
[routing]
default_team = "cohesion"
""",
    )
    # With an encryption key too (as DATA_PROTECTION.md advises): the idle service has
    # encrypted and decrypted nothing, so it holds no cryptography (storage/encryption.py).
    key = "q0Kg2Qk0m0oT8nJ9X4s3bVn1cP7yZ6wR5tU2eI8oA1E="
    bot = ProbedBot(config, tmp_path / "bot.log", {**SLACK_ENV, "TENSIONBOT_ENCRYPTION_KEY": key})
    loaded, sources = await bot.loaded_when_idle()
    assert "slack_bolt.async_app" in loaded  # Slack is configured: loading it is right
    # Nor the source of any module: Bolt, left to name the app itself, reads every calling
    # module's source (inspect.stack), and linecache keeps it for as long as the process runs.
    assert [s for s in sources if not s.startswith("<")] == []  # (attrs keeps its generated
    # methods' few lines there, under names such as "<attrs generated init ...>")
    assert fake_telegram.calls_for("setWebhook")
    assert _heavy(loaded, ANALYSIS) == []
    assert _heavy(loaded, UNUSED) == []
    if backend() == "sqlite":  # neither the driver nor SQLAlchemy's dialect for PostgreSQL
        assert _heavy(loaded, ("asyncpg",)) == []
        assert "sqlalchemy.dialects.postgresql" not in loaded


#: A fresh interpreter: python-telegram-bot imported as the service imports it, then everything
#: we use of it and of cryptography, which must still import afterwards for the Fernet columns.
WITHOUT_PASSPORT = """
import sys
from handlers.ptb import import_telegram
import_telegram()
assert "telegram.ext" in sys.modules and "cryptography" not in sys.modules, "cryptography loaded"
import telegram._bot, telegram._passport.credentials
assert not telegram._bot.CRYPTO_INSTALLED and not telegram._passport.credentials.CRYPTO_INSTALLED
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationBuilder
try:
    Bot("1:x", private_key=b"-----BEGIN PRIVATE KEY-----")
except RuntimeError as exc:  # Passport, which we do not use, says so plainly
    assert "passport" in str(exc), exc
else:
    raise AssertionError("Passport decryption without cryptography")
import_telegram()  # a second call changes nothing
assert "cryptography" not in sys.modules
from cryptography.fernet import Fernet
from sqlalchemy.dialects import sqlite
from storage.encryption import EncryptedText, attach_cipher, make_cipher
dialect = sqlite.dialect()
attach_cipher(dialect, make_cipher(Fernet.generate_key().decode()))
column = EncryptedText()
stored = column.process_bind_param("a report", dialect)
assert stored.startswith("fernet:") and "a report" not in stored
assert column.process_result_value(stored, dialect) == "a report"
print("ok")
"""


async def test_telegram_is_imported_without_passport_and_cryptography_still_works_after() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WITHOUT_PASSPORT,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and out.decode().strip() == "ok", out.decode()


async def test_a_start_that_migrates_does_so_in_a_child_and_holds_no_alembic(
    tmp_path: Path, fake_telegram: Any
) -> None:
    # An empty database: this start has to migrate it. Alembic (some 130 modules, about 13 MiB)
    # runs in a child process that exits, so the service never holds it. (SQLite: an empty
    # database of its own whatever the backend; the test databases are migrated already.)
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    config = _config(tmp_path / "config.toml", db_url, fake_telegram.base_url)
    bot = ProbedBot(config, tmp_path / "bot.log", {})
    loaded, _ = await bot.loaded_when_idle()
    assert "telegram.ext" in loaded  # the probe saw a running bot, so the schema is at the head
    assert _heavy(loaded, ("alembic", "mako")) == []


async def test_a_migration_that_fails_in_the_child_stops_the_start(
    tmp_path: Path, fake_telegram: Any
) -> None:
    # The database claims a revision this code does not ship: Alembic, in the child, refuses it,
    # and the service must not start on a schema it cannot vouch for.
    path = tmp_path / "strange.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('nonesuch')")
    config = _config(
        tmp_path / "config.toml", f"sqlite+aiosqlite:///{path}", fake_telegram.base_url
    )
    bot = BotProcess(config, tmp_path / "bot.log")
    await bot.start()
    assert bot.proc is not None
    status = await asyncio.wait_for(bot.proc.wait(), 120)  # a bound for a hang, not a timing
    log = (tmp_path / "bot.log").read_text()
    assert status != 0
    assert "the database migration failed" in log
    assert "nonesuch" in log  # Alembic's own reason, from the child
