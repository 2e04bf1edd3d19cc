"""kill -9 in the middle of the form: how many reporters' conversations a restart loses.

The bot runs as a process of its own, taking updates by webhook from the simulated platform
(another process). Every reporter sends ``/report`` and answers the first questions, until
``stop_after`` of its updates have been answered and acknowledged (the platform has had a 2xx for
every webhook post). That is the known point: the bot is then killed with SIGKILL, started again
from what it had stored, and each reporter's restored state is compared with the step its
acknowledged updates had reached. A state that is missing or behind is *lost*; *updates lost*
counts the acknowledged updates it no longer reflects.

- ``pickle``: the PicklePersistence peer (``python -m bench.conversation serve-peer``), PTB's
  ``ConversationHandler`` with PTB's default flush every 60 s (``update_interval``). It reports
  the states its ``ConversationHandler`` restored from the pickle file.
- ``durable``: the product, the real ``tensionbot run`` in webhook mode on SQLite; its restored
  state is the ``conversations`` table it resumes from, read after it is up again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bench.common import (
    BENCH_NOW,
    TOKEN,
    WARDS,
    BenchDatabase,
    Platform,
    insert_linked_people,
    make_config,
)
from bench.conversation import FAST, FIRST_USER
from bot.app import build_services
from bot.clock import FakeClock
from sim.world import free_port

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60.0


async def _drain(platform: Platform) -> None:
    """Wait until every update posted to the webhook has been answered with a 2xx."""
    for _ in range(600):
        if not (await platform.call("webhook_pending"))["pending"]:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("updates still unacknowledged after 30 s")


async def _kill9(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def _stop(proc: asyncio.subprocess.Process | None) -> None:
    if proc is not None and proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _losses(reached: dict[str, list[str]], restored: dict[str, str]) -> dict[str, Any]:
    """Compare each reporter's acknowledged step (the last it reached) with its restored one."""
    lost_states = lost_updates = 0
    for chat, steps in reached.items():
        state = restored.get(chat)
        if state != steps[-1]:
            lost_states += 1
            kept = steps.index(state) + 1 if state in steps else 0
            lost_updates += len(steps) - kept
    return {
        "reporters": len(reached),
        "acknowledged_updates": sum(len(s) for s in reached.values()),
        "lost_states": lost_states,
        "lost_updates": lost_updates,
    }


async def _pickle(
    platform: Platform, users: int, stop_after: int, tmp: Path, update_interval: float | None
) -> dict[str, Any]:
    port = free_port()
    pickle_file = tmp / "peer.pickle"
    cmd = [sys.executable, "-m", "bench.conversation", "serve-peer"]
    args = [platform.base_url, str(port), str(pickle_file)]
    if update_interval is not None:  # a check of the harness: it flushes before the kill
        args.append(str(update_interval))

    async def start() -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(
            *cmd, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=sys.stderr
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
        if not line:
            raise RuntimeError("the PicklePersistence peer exited at start")
        return proc, dict(json.loads(line))

    proc, _ = await start()
    started = time.monotonic()
    try:
        run = await platform.call(
            "converse", first=FIRST_USER, count=users, wards=WARDS, stop_after=stop_after
        )
        await _drain(platform)
        if update_interval is not None:
            await asyncio.sleep(3 * update_interval)
        killed_after = time.monotonic() - started
        await _kill9(proc)
        proc, hello = await start()
        restored: dict[str, str] = hello["restored"]
    finally:
        await _stop(proc)
    return {**_losses(run["reached"], restored), "seconds_to_kill": killed_after, **_errors(run)}


def _errors(run: dict[str, Any]) -> dict[str, Any]:
    return {"error_count": run["error_count"], "errors": run["errors"]}


def _config_toml(db_url: str, api: str, port: int) -> str:
    wards = ", ".join(json.dumps(w) for w in WARDS)
    return (
        f"[partnership]\nwards = [{wards}]\n\n"
        f'[database]\nurl = "{db_url}"\n\n'
        f'[telegram]\napi_base_url = "{api}"\nbot_username = "bench_bot"\nmode = "webhook"\n'
        f'webhook_url = "http://127.0.0.1:{port}/telegram"\nwebhook_listen = "127.0.0.1"\n'
        f"webhook_port = {port}\nglobal_rate = {FAST['global_rate']}\n"
        f"per_chat_rate = {FAST['per_chat_rate']}\n"
    )


async def _healthy(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(READY_TIMEOUT / 0.1)):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("tensionbot run did not come up")


async def _durable(platform: Platform, users: int, stop_after: int, tmp: Path) -> dict[str, Any]:
    from storage import tables

    port = free_port()
    async with BenchDatabase("sqlite") as db:
        services = await build_services(
            make_config(db.url, platform.base_url), clock=FakeClock(BENCH_NOW)
        )
        await insert_linked_people(services.db.engine, FIRST_USER, users)
        await services.close()
        config = tmp / "config.toml"
        config.write_text(_config_toml(db.url, platform.base_url, port), encoding="utf-8")
        log = (tmp / "tensionbot.log").open("ab")
        env = {**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN}

        async def start() -> asyncio.subprocess.Process:
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "tensionbot"),
                "--config",
                str(config),
                "run",
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
            await _healthy(port)
            return proc

        proc = await start()
        started = time.monotonic()
        try:
            for _ in range(int(READY_TIMEOUT / 0.05)):
                if (await platform.call("webhook"))["url"]:
                    break
                await asyncio.sleep(0.05)
            run = await platform.call(
                "converse", first=FIRST_USER, count=users, wards=WARDS, stop_after=stop_after
            )
            await _drain(platform)
            killed_after = time.monotonic() - started
            await _kill9(proc)
            proc = await start()
            # What the restarted process resumes from: each reporter's open conversation.
            services = await build_services(
                make_config(db.url, platform.base_url), clock=FakeClock(BENCH_NOW), migrate=False
            )
            c, a = tables.conversations, tables.addresses
            async with services.db.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(a.c.address, c.c.step)
                        .join(a, a.c.person_id == c.c.person_id)
                        .where(a.c.platform == "telegram")
                        .order_by(c.c.id)
                    )
                ).all()
            await services.close()
            restored = {str(address): str(step) for address, step in rows}
        finally:
            await _stop(proc)
            log.close()
    return {**_losses(run["reached"], restored), "seconds_to_kill": killed_after, **_errors(run)}


async def run(
    path: str = "pickle",
    users: int = 200,
    stop_after: int = 5,
    update_interval: float | None = None,
) -> dict[str, Any]:
    """One kill -9 run of ``path`` (``pickle`` or ``durable``). ``update_interval`` (pickle
    only, a check of this harness): flush that often and wait three intervals before the kill,
    so that nothing should be lost."""
    with tempfile.TemporaryDirectory(prefix="tensionbot-bench-kill-") as name:
        async with Platform() as platform:  # limits lifted, as in the conversation rows
            if path == "pickle":
                result = await _pickle(platform, users, stop_after, Path(name), update_interval)
            else:
                result = await _durable(platform, users, stop_after, Path(name))
    return {"path": path, "stop_after": stop_after, **result}
