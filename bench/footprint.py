"""Footprint: the resident memory of an idle ``tensionbot run``.

The real command line, as a service runs it: Telegram by webhook (registered with the simulated
Telegram server, which runs in its own process), Slack over HTTP against the fake Slack Web API
(so slack_bolt and slack_sdk are legitimately loaded), one team routed to Slack, the one HTTP
server (webhook, Slack, /healthz, /readyz, /metrics), SQLite, the scheduler on. The process is
measured once it is ready (``/readyz`` answers 200 and the webhook is registered), after it has
settled, with nobody writing: what a deployment holds between returns.

``{"slack": false, "webhook": false}`` measures the smallest service instead (polling, no Slack);
``{"migrated": false}`` a first start on an empty database (that start migrates it, and so holds
Alembic as well, until the next restart).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, BenchDatabase, Platform, rss_kib
from sim.fake_slack import FakeSlack
from sim.world import free_port

SLACK_ENV = {
    "TENSIONBOT_SLACK_BOT_TOKEN": "xoxb-test-token",
    "TENSIONBOT_SLACK_SIGNING_SECRET": "test-signing-secret",
}


def _config(db_url: str, telegram_api: str, slack_api: str | None, port: int | None) -> str:
    """The configuration file: webhook mode on ``port`` (None: polling), Slack at
    ``slack_api`` with one team routed to it (None: no Slack, nothing routed)."""
    webhook = (
        f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/telegram"\n'
        f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
        if port is not None
        else ""
    )
    text = (
        f'[database]\nurl = "{db_url}"\n\n'
        f'[telegram]\napi_base_url = "{telegram_api}"\npoll_timeout = 20\n{webhook}\n'
    )
    if port is not None:
        text += f'[server]\nlisten = "127.0.0.1"\nport = {port}\n\n'
    if slack_api is not None:
        text += (
            f'[slack]\napi_base_url = "{slack_api}"\nmode = "http"\n\n'
            '[[teams]]\nkey = "cohesion"\nname = "Community Cohesion Team"\n'
            'organisation = "council"\nslack_channel = "C0COHESION"\nmembers = ["U0JANE"]\n\n'
            '[routing]\ndefault_team = "cohesion"\n'
        )
    return text


async def _ready(session: aiohttp.ClientSession, port: int) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def run(
    settle: float = 5.0,
    samples: int = 5,
    slack: bool = True,
    webhook: bool = True,
    migrated: bool = True,
) -> dict[str, Any]:
    """Start ``tensionbot run``, wait until it is ready, let it settle, sample its RSS."""
    fake_slack = FakeSlack() if slack else None
    async with Platform() as platform, BenchDatabase("sqlite") as db:
        assert db.path is not None
        slack_api = await fake_slack.start() if fake_slack is not None else None
        port = free_port() if webhook else None
        config = db.path.parent / "config.toml"
        config.write_text(_config(db.url, platform.base_url, slack_api, port), encoding="utf-8")
        exe = Path(sys.executable).parent / "tensionbot"
        env = {**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN}
        if slack:
            env.update(SLACK_ENV)
        # Deployed, the schema is migrated already (by the previous start or by `tensionbot db
        # upgrade`): a start that finds it current loads no Alembic, one that migrates holds it.
        if migrated:
            upgrade = await asyncio.create_subprocess_exec(
                str(exe),
                "--config",
                str(config),
                "db",
                "upgrade",
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
            )
            if await upgrade.wait() != 0:
                raise RuntimeError("tensionbot db upgrade failed")
        proc = await asyncio.create_subprocess_exec(
            str(exe),
            "--config",
            str(config),
            "run",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # Ready: polling has begun, or the webhook is registered and /readyz says 200.
            method = "setWebhook" if webhook else "getUpdates"
            async with aiohttp.ClientSession() as session:
                for _ in range(1200):
                    if proc.returncode is not None:
                        raise RuntimeError("tensionbot run exited early")
                    registered = (await platform.call("method_count", method=method))["count"]
                    if registered and (port is None or await _ready(session, port)):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise RuntimeError("tensionbot run did not become ready in 60 s")
            await asyncio.sleep(settle)
            rss = []
            for _ in range(samples):
                rss.append(rss_kib(proc.pid)["VmRSS"])
                await asyncio.sleep(1.0)
            hwm = rss_kib(proc.pid)["VmHWM"]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            if fake_slack is not None:
                await fake_slack.stop()
    return {
        "idle_rss_kib": statistics.median(rss),
        "samples": rss,
        "hwm_kib": hwm,
        "slack": slack,
        "webhook": webhook,
        "migrated": migrated,
    }
