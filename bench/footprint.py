"""Footprint: the resident memory of an idle ``tensionbot run``.

The real command line, as a service runs it: Telegram by webhook (registered with the simulated
Telegram server, which runs in its own process), Slack over HTTP against the fake Slack Web API
(so slack_bolt and slack_sdk are legitimately loaded), one team routed to Slack, the one HTTP
server (webhook, Slack, /healthz, /readyz, /metrics), SQLite, the scheduler on. The process is
measured once it is ready (``/readyz`` answers 200 and the webhook is registered), after it has
settled, with nobody writing: what a deployment holds between returns.

``{"slack": false, "webhook": false}`` measures the smallest service instead (polling, no Slack);
``{"migrated": false}`` a first start on an empty database (that start migrates it, and so holds
Alembic as well, until the next restart); ``{"encrypted": true}`` a service with an encryption key
(``TENSIONBOT_ENCRYPTION_KEY``: the Fernet columns, and so cryptography, loaded).

The service runs from a production install: a venv holding exactly ``requirements.lock`` (hashes
checked), as deploy/Dockerfile installs it, and this checkout's code (``python -m bot.cli`` from
the repository root, so the code measured is the code here, not a stale installed copy). The dev
venv holds more, and some libraries import what happens to be installed (httpx imports rich and
pygments, dev-only, through its command-line module: 2.3 MiB the image never holds). The venv is
made once per lock file and Python version (about two minutes, from the pip cache) and kept in
``$XDG_CACHE_HOME/tensionbot-bench`` (default ``~/.cache``). ``{"venv": "dev"}`` measures in the
running interpreter's venv instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, BenchDatabase, Platform, rss_kib
from sim.fake_slack import FakeSlack
from sim.world import free_port

ROOT = Path(__file__).resolve().parents[1]

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


def production_python() -> Path:
    """The interpreter of a venv installed as the image installs (``requirements.lock``, hashes
    checked); made on first use, then kept for that lock file and Python version. Built aside
    and renamed into place, so that two benchmarks starting at once never share a half-made
    venv."""
    lock = ROOT / "requirements.lock"
    key = hashlib.sha256(lock.read_bytes() + sys.version.encode()).hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tensionbot-bench"
    venv = home / f"production-{key}"
    if not (venv / "bin" / "python").exists():
        home.mkdir(parents=True, exist_ok=True)
        building = home / f".building-{key}-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
        pip = [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run(
            [*pip, "--disable-pip-version-check", "--require-hashes", "-r", str(lock)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        try:
            building.rename(venv)  # only `python -m` is used: a venv runs from where it lies
        except OSError:  # another benchmark finished first: use its venv
            shutil.rmtree(building, ignore_errors=True)
    return venv / "bin" / "python"


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
    venv: str = "production",
    encrypted: bool = False,
) -> dict[str, Any]:
    """Start ``tensionbot run``, wait until it is ready, let it settle, sample its RSS.
    ``venv``: "production" (requirements.lock only, see the module's doc) or "dev" (this one)."""
    if venv not in ("production", "dev"):
        raise ValueError(f"venv: 'production' or 'dev', not {venv!r}")
    python = production_python() if venv == "production" else Path(sys.executable)
    # `tensionbot` is `python -m bot.cli`; from the root, the checkout's code is what runs.
    tensionbot = [str(python), "-m", "bot.cli"]
    fake_slack = FakeSlack() if slack else None
    async with Platform() as platform, BenchDatabase("sqlite") as db:
        assert db.path is not None
        slack_api = await fake_slack.start() if fake_slack is not None else None
        port = free_port() if webhook else None
        config = db.path.parent / "config.toml"
        config.write_text(_config(db.url, platform.base_url, slack_api, port), encoding="utf-8")
        env = {**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN}
        env.pop("PYTHONPATH", None)
        if slack:
            env.update(SLACK_ENV)
        if encrypted:
            env["TENSIONBOT_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
        # Deployed, the schema is migrated already (by the previous start or by `tensionbot db
        # upgrade`): a start that finds it current loads no Alembic, one that migrates holds it.
        if migrated:
            upgrade = await asyncio.create_subprocess_exec(
                *tensionbot,
                "--config",
                str(config),
                "db",
                "upgrade",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
            )
            if await upgrade.wait() != 0:
                raise RuntimeError("tensionbot db upgrade failed")
        proc = await asyncio.create_subprocess_exec(
            *tensionbot,
            "--config",
            str(config),
            "run",
            cwd=ROOT,
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
        "venv": venv,
        "encrypted": encrypted,
        "setup": (
            ("Slack over HTTP, " if slack else "no Slack, ")
            + ("the Telegram webhook" if webhook else "polling")
            + ", SQLite, scheduler on, "
            + ("a production install (requirements.lock)" if venv == "production" else "dev venv")
        ),
    }
