"""Shared helpers for the benchmark workers: databases, configuration, people, RSS, the
platform process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bot.config import Config, config_from_mapping

TOKEN = "123456:BENCH-TOKEN"
PG_ENV = "TENSIONBOT_TEST_DATABASE_URL"
WARDS = [f"Ward {i:02d}" for i in range(1, 21)]  # 20 wards, national-scale synthetic data
BENCH_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

os.environ.setdefault("PTB_TIMEDELTA", "1")  # as `tensionbot` does at start (bot/cli/base.py)


# ----------------------------------------------------------------- databases


def pg_url() -> str | None:
    """The throwaway PostgreSQL cluster's URL (from scripts/with-postgres), if any."""
    return os.environ.get(PG_ENV, "").strip() or None


async def _pg_admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    url = make_url(pg_url() or "")
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class BenchDatabase:
    """A fresh, empty database for one run: a SQLite file or a new PostgreSQL database."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.url = ""
        self.path: Path | None = None
        self._pg_name: str | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> BenchDatabase:
        if self.backend == "postgresql":
            base = pg_url()
            if base is None:
                raise RuntimeError(f"{PG_ENV} is not set: run under scripts/with-postgres")
            self._pg_name = f"bench_{uuid.uuid4().hex[:10]}"
            await _pg_admin(f'CREATE DATABASE "{self._pg_name}"')
            self.url = make_url(base).set(database=self._pg_name).render_as_string(False)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="tensionbot-bench-")
            self.path = Path(self._tmp.name) / "bench.sqlite3"
            self.url = f"sqlite+aiosqlite:///{self.path}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pg_name is not None:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
        if self._tmp is not None:
            self._tmp.cleanup()


def make_config(db_url: str, api_base_url: str, **telegram: Any) -> Config:
    """A benchmark configuration: 20 wards, no Slack, no routing teams."""
    data: dict[str, Any] = {
        "partnership": {"wards": WARDS},
        "database": {"url": db_url},
        "telegram": {"api_base_url": api_base_url, "bot_username": "bench_bot", **telegram},
    }
    return config_from_mapping(data, source="<bench>", env={"TENSIONBOT_TELEGRAM_TOKEN": TOKEN})


async def insert_linked_people(engine: Any, first_user_id: int, count: int) -> None:
    """Bulk-insert ``count`` councillors already linked to Telegram (chat id == user id,
    ``first_user_id`` on), as if each had tapped their invitation link."""
    from storage import tables

    rows = [
        {
            "name": f"Reporter {i}",
            "role": "councillor" if i % 2 else "community_leader",
            "email": f"reporter{i}@bench.example",
            "organisation": "Bench",
            "wards": [WARDS[i % len(WARDS)]],
            "linked_at": BENCH_NOW,
            "active": True,
            "created_at": BENCH_NOW,
            "updated_at": BENCH_NOW,
        }
        for i in range(count)
    ]
    async with engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            ids = await conn.execute(
                insert(tables.people).returning(tables.people.c.id, sort_by_parameter_order=True),
                rows[start : start + 2000],
            )
            addresses = [
                {
                    "person_id": pid,
                    "platform": "telegram",
                    "address": str(first_user_id + i),
                    "chat": str(first_user_id + i),
                    "linked_at": BENCH_NOW,
                }
                for i, pid in enumerate((r.id for r in ids), start=start)
            ]
            await conn.execute(insert(tables.addresses), addresses)


# ----------------------------------------------------------------- memory


def rss_kib(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB, from /proc."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


class RssSampler:
    """Samples this process's RSS in the background; ``peak`` is the largest sample."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kib()["VmRSS"])
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start sampling."""
        self.peak = rss_kib()["VmRSS"]
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> int:
        """Stop sampling; returns the peak in KiB."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_kib()["VmRSS"])
        return self.peak


# ----------------------------------------------------------------- the platform process


class Platform:
    """The fake Telegram Bot API server, running in its own process (bench/platform.py)."""

    def __init__(self, global_rate: float | None = None, per_chat_rate: float | None = None):
        self.options = {"global_rate": global_rate, "per_chat_rate": per_chat_rate, "token": TOKEN}
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""

    async def __aenter__(self) -> Platform:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.platform",
            json.dumps(self.options),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        hello = await self._read()
        self.base_url = str(hello["base_url"])
        return self

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the platform process died")
        return dict(json.loads(line))

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        answer = await self._read()
        if "error" in answer:
            raise RuntimeError(f"platform: {answer['error']}")
        return answer

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.call("quit"), 10)
            except (RuntimeError, TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def load_avg() -> tuple[float, float, float]:
    """os.getloadavg()."""
    return os.getloadavg()


def median_spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of several runs."""
    import statistics

    vals = list(values)
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
