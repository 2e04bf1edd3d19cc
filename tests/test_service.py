"""Service mode: one HTTP server (Telegram webhook, Slack, /healthz, /readyz, /metrics) and a
graceful SIGTERM, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, insert, select, text

from bot.app import build_services, telegram_token
from bot.runtime import Runtime
from sim.world import free_port
from storage import tables
from storage.database import Database, make_engine
from tests.conftest import SLACK_ENV, make_config
from tests.processes import BotProcess

SECRET = "pinned-webhook-secret_1"


# ----------------------------------------------------------------- helpers (also test_scaleout)


async def insert_reporters(
    db_url: str, fake: Any, n: int, *, first_chat: int = 10_000
) -> list[int]:
    """``n`` linked councillors in Park, inserted in bulk; each gets a chat on the fake server."""
    now = datetime.now(UTC)
    chats = [first_chat + i for i in range(n)]
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            ids = await conn.execute(
                insert(tables.people).returning(tables.people.c.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"Reporter {c}",
                        "role": "councillor",
                        "email": f"r{c}@example.org",
                        "organisation": "",
                        "wards": ["Park"],
                        "linked_at": now,
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for c in chats
                ],
            )
            await conn.execute(
                insert(tables.addresses),
                [
                    {
                        "person_id": r.id,
                        "platform": "telegram",
                        "address": str(c),
                        "chat": str(c),
                        "linked_at": now,
                    }
                    for r, c in zip(ids, chats, strict=True)
                ],
            )
    finally:
        await db.dispose()
    for c in chats:
        fake.user(c, first_name=f"R{c}")
    return chats


async def outbox_counts(db_url: str) -> dict[str, int]:
    """Outbox rows by status."""
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            o = tables.outbox.c
            rows = await conn.execute(select(o.status, func.count()).group_by(o.status))
            return {str(s): int(n) for s, n in rows.all()}
    finally:
        await engine.dispose()


def write_config(path: Path, db_url: str, api: str, port: int, **telegram: Any) -> Path:
    """A config file for ``tensionbot run`` with its HTTP server on ``port``."""
    tg = {
        "global_rate": 20.0,
        "per_chat_rate": 5.0,
        "max_in_flight": 4,
        "outbox_lease_seconds": 5,
        **telegram,
    }
    tg_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in tg.items())
    path.write_text(f"""
[partnership]
wards = ["Bilston South", "Blakenhall", "Heath Town", "Park", "Penn"]
[database]
url = "{db_url}"
[telegram]
api_base_url = "{api}"
bot_username = "swp_tension_bot"
poll_timeout = 1
{tg_lines}
[server]
listen = "127.0.0.1"
port = {port}
shutdown_seconds = 15
[cluster]
leader_retry_seconds = 0.5
[schedule]
tick_seconds = 3600
""")
    return path


class Proc(BotProcess):
    """``tensionbot run`` as a real process, with its HTTP port."""

    stop_timeout = 30.0

    def __init__(self, config: Path, log: Path, port: int) -> None:
        super().__init__(config, log)
        self.port = port

    async def get(self, path: str) -> tuple[int, str]:
        """(status, body) of a GET, or (0, error) when nothing answers."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.get(f"http://127.0.0.1:{self.port}{path}") as response,
            ):
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, repr(exc)

    async def ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            assert self.proc.returncode is None, self.log.read_text()[-3000:]
            status, body = await self.get("/readyz")
            if status == 200:
                return dict(json.loads(body))
            await asyncio.sleep(0.2)
        raise AssertionError(f"not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    async def is_leader(self) -> bool:
        status, body = await self.get("/readyz")
        return status == 200 and bool(json.loads(body).get("leader"))


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------- in-process


@pytest.fixture
async def runtime(
    db_url: str, fake_telegram: Any, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Runtime, str]]:
    """The runtime in webhook mode with Slack over HTTP, all on one port."""
    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        env={**SLACK_ENV, "TENSIONBOT_TELEGRAM_WEBHOOK_SECRET": SECRET},
        telegram={
            "mode": "webhook",
            "webhook_url": f"http://127.0.0.1:{port}/telegram",
        },
        server={"listen": "127.0.0.1", "port": port},
        slack={"api_base_url": "http://127.0.0.1:9", "port": free_port()},
        cluster={"leader_retry_seconds": 0.5},
    )
    services = await build_services(config)
    rt = Runtime(services, telegram_token(config), run_scheduler=False)
    task = asyncio.create_task(rt.run())
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(1200):  # up to a minute or more: a condition, not a time
                try:
                    async with http.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        yield rt, base
    finally:
        rt.stop()
        await task
        await services.close()


async def test_health_readiness_and_metrics(runtime: tuple[Runtime, str], db_url: str) -> None:
    rt, base = runtime
    await wait_until(lambda: rt.is_leader, 10, "leadership")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{base}/readyz") as r:
            body = await r.json()
            assert r.status == 200, body
            assert body["ready"] is True
            assert body["database"] == "ok"
            assert body["migrations"] == "current"
            assert body["leader"] is True  # one process on SQLite, or the only one on PostgreSQL
        await rt.services.campaigns.open_monthly("2026-12", actor="test", force=True)
        async with http.get(f"{base}/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            metrics = await r.text()
    for line in (
        "tensionbot_messages_sent_total ",
        "tensionbot_messages_failed_total ",
        'tensionbot_outbox_messages{status="pending"}',
        'tensionbot_outbox_messages{status="sending"}',
        "tensionbot_actions_open 0.0",
        "tensionbot_actions_overdue 0.0",
        'tensionbot_return_rate{campaign="monthly:2026-12"} 0.0',
        "tensionbot_leader 1.0",
        "tensionbot_figures_up 1.0",
    ):
        assert line in metrics, line


async def test_not_ready_when_migrations_are_behind_or_the_database_is_gone(
    runtime: tuple[Runtime, str],
) -> None:
    rt, base = runtime
    engine = rt.services.db.engine
    async with engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as r:
            body = await r.json()
            assert r.status == 503
            assert body["ready"] is False
            assert body["database"] == "ok"
            assert "0005" in body["migrations"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE alembic_version SET version_num = :h"), {"h": str(head)}
            )

    gone = make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")
    rt.services.db.engine = gone
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
                assert r.status == 503
                assert body["database"].startswith("unreachable")
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200  # alive, just not ready
    finally:
        rt.services.db.engine = engine
        await gone.dispose()


async def test_webhook_secret_and_slack_signatures_on_the_one_server(
    runtime: tuple[Runtime, str], fake_telegram: Any
) -> None:
    _, base = runtime
    await wait_until(lambda: fake_telegram.calls_for("setWebhook"), 10, "setWebhook")
    registered = fake_telegram.calls_for("setWebhook")[-1].params
    assert registered["secret_token"] == SECRET  # shared by every process, from the environment
    update = {"update_id": 99, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi"}}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        for given in ("guess", ""):
            async with http.post(
                f"{base}/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": given},
            ) as r:
                assert r.status == 403
        async with http.post(
            f"{base}/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        ) as r:
            assert r.status == 200

        body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
        ts = str(int(time.time()))
        good = hmac.new(
            SLACK_ENV["TENSIONBOT_SLACK_SIGNING_SECRET"].encode(),
            f"v0:{ts}:".encode() + body,
            hashlib.sha256,
        ).hexdigest()
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts}
        async with http.post(
            f"{base}/slack/events", data=body, headers={**headers, "X-Slack-Signature": "v0=00"}
        ) as r:
            assert r.status == 401
        async with http.post(
            f"{base}/slack/events",
            data=body,
            headers={**headers, "X-Slack-Signature": f"v0={good}"},
        ) as r:
            assert r.status == 200
            assert "c-123" in await r.text()


# ----------------------------------------------------------------- a real process


async def test_sigterm_drains_in_flight_sends_and_exits_cleanly(
    tmp_path: Path, db_url: str, fake_telegram: Any
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "config.toml", db_url, fake_telegram.base_url, port, global_rate=15.0
    )
    bot = Proc(config, tmp_path / "bot.log", port)
    await insert_reporters(db_url, fake_telegram, 60)
    await bot.start()
    try:
        ready = await bot.ready()
        assert ready["leader"] is True
        # Ten sends go through, the next are held at the fake: SIGTERM lands mid-campaign with
        # sends in flight, however fast or slow the machine (a poll of the count raced the bot,
        # and on a busy machine all 60 went before the signal).
        fake_telegram.hold_sends(10)
        await bot.cli("campaign", "open", "--period", "2026-12")
        await wait_until(lambda: fake_telegram.held > 0, 120, "sending to start")
        assert bot.proc is not None
        started = time.monotonic()
        bot.proc.send_signal(signal.SIGTERM)
        fake_telegram.release_sends()  # the sends in flight are answered: the drain finishes them
        code = await asyncio.wait_for(bot.proc.wait(), 30)
        took = time.monotonic() - started
    finally:
        await bot.stop()
    log = bot.log.read_text()
    assert code == 0, log[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f}s"
    counts = await outbox_counts(db_url)
    assert counts.get("sending", 0) == 0, counts  # in-flight sends were finished, not abandoned
    assert counts.get("sent", 0) >= 10
    assert counts.get("pending", 0) > 0, counts  # it stopped mid-campaign; the rest waits
    assert "stopped" in log


async def _health(bot: BotProcess) -> tuple[int, str]:
    """``tensionbot health`` as Docker's HEALTHCHECK runs it: (exit status, output)."""
    import sys

    from tests.processes import ROOT

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "--config",
        str(bot.config),
        "health",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
        env=bot._env(),
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_health_command_works_in_polling_and_webhook_mode(
    tmp_path: Path, db_url: str, fake_telegram: Any
) -> None:
    """Docker's healthcheck: polling mode opens no port, so `tensionbot health` checks the
    heartbeat file there, and /healthz in webhook mode; both check the database first."""
    polling = tmp_path / "polling.toml"
    polling.write_text(f"""
[database]
url = "{db_url}"
[telegram]
api_base_url = "{fake_telegram.base_url}"
bot_username = "swp_tension_bot"
poll_timeout = 1
[server]
heartbeat_file = "run/beat"
[cluster]
leader_retry_seconds = 0.5
""")
    (tmp_path / "run").mkdir()
    bot = BotProcess(polling, tmp_path / "polling.log")
    code, out = await _health(bot)
    assert code != 0 and "no heartbeat" in out  # nothing runs yet
    await bot.start()
    try:
        await wait_until(lambda: (tmp_path / "run" / "beat").exists(), 60, "a heartbeat")
        code, out = await _health(bot)
        assert code == 0, out + bot.log.read_text()[-3000:]
        assert "heartbeat" in out
    finally:
        await bot.stop()
    (tmp_path / "run" / "beat").unlink()
    code, out = await _health(bot)
    assert code != 0 and "no heartbeat" in out

    port = free_port()
    webhook = write_config(
        tmp_path / "webhook.toml",
        db_url,
        fake_telegram.base_url,
        port,
        mode="webhook",
        webhook_url=f"http://127.0.0.1:{port}/telegram",
    )
    web = Proc(webhook, tmp_path / "webhook.log", port)
    await web.start()
    try:
        await web.ready()
        code, out = await _health(web)
        assert code == 0, out
        assert f"http://127.0.0.1:{port}/healthz answers" in out
    finally:
        await web.stop()
    code, out = await _health(web)
    assert code != 0 and "does not answer" in out
