"""Shared fixtures.

The database under test is SQLite by default; set ``TENSIONBOT_TEST_DATABASE_URL`` to a
``postgresql+asyncpg://`` URL (``make test`` does, with a throwaway cluster) and every test gets
its own fresh PostgreSQL database, cloned from a template migrated once per session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.clock import FakeClock
from bot.config import Config, config_from_mapping
from storage.database import Database
from storage.migrate import upgrade

# As `tensionbot` does at start: python-telegram-bot's timedelta durations (see bot/cli/base.py).
os.environ.setdefault("PTB_TIMEDELTA", "1")
PG_URL = os.environ.get("TENSIONBOT_TEST_DATABASE_URL", "").strip()
TOKEN = "123456:TEST-TOKEN"


def backend() -> str:
    """'postgresql' or 'sqlite'."""
    return "postgresql" if PG_URL else "sqlite"


async def _pg_admin(sql: str) -> None:
    import asyncpg  # only needed on PostgreSQL runs

    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database="postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated template database (a file for SQLite, a database name for PostgreSQL)."""
    if PG_URL:
        name = f"tb_template_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

        async def migrate() -> None:
            db = Database(url)
            await upgrade(db.engine)
            await db.dispose()

        asyncio.run(migrate())
        yield name
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"

        async def migrate_sqlite() -> None:
            db = Database(f"sqlite+aiosqlite:///{path}")
            await upgrade(db.engine)
            await db.dispose()

        asyncio.run(migrate_sqlite())
        yield str(path)


@pytest.fixture
async def db_url(template_db: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    if PG_URL:
        name = f"tb_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path / "test.sqlite3"
        shutil.copy(template_db, path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def fake_telegram() -> AsyncIterator[Any]:
    """A local fake Telegram Bot API server on 127.0.0.1."""
    from sim.fake_telegram import FakeTelegram

    fake = FakeTelegram(token=TOKEN, bot_username="swp_tension_bot")
    await fake.start()
    yield fake
    await fake.stop()


SLACK_ENV = {
    "TENSIONBOT_SLACK_BOT_TOKEN": "xoxb-test-token",
    "TENSIONBOT_SLACK_SIGNING_SECRET": "test-signing-secret",
}


def make_config(
    db_url: str,
    api_base_url: str = "http://127.0.0.1:9",
    env: dict[str, str] | None = None,
    **sections: Any,
) -> Config:
    """A test configuration (six wards keep keyboards short)."""
    data: dict[str, Any] = {
        "partnership": {
            "wards": ["Bilston South", "Blakenhall", "Heath Town", "Park", "Penn", "Whitmore Reans"]
        },
        "database": {"url": db_url},
        "telegram": {
            "api_base_url": api_base_url,
            "bot_username": "swp_tension_bot",
            "poll_timeout": 1,
            "global_rate": 200.0,
            "per_chat_rate": 50.0,
        },
        # News to reporters goes at once unless a test holds it (the tests of combining do).
        "outbox": {"news_hold_seconds": 0},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_mapping(
        data, source="<test>", env={"TENSIONBOT_TELEGRAM_TOKEN": TOKEN, **(env or {})}
    )


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 09:30 on 1 December 2026 (the December return is open)."""
    return FakeClock(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: the fault suite (tests/test_faults.py) runs many more seeds."""
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the fault-injection suite over many seeds (tests/test_faults.py)",
    )
