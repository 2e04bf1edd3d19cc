"""Fan-out: open the monthly return for N linked reporters through the real sending path.

CampaignService.open_monthly -> deliveries + outbox rows -> OutboxDispatcher (claims, global and
per-chat token buckets, 429 pause) -> TelegramMessenger -> python-telegram-bot ``Bot`` -> HTTP ->
FakeTelegram in another process, which enforces ``limit`` messages/s overall and 1/s per chat and
answers 429 with ``retry_after`` beyond them. The bot is configured at ``fraction`` of the limit.
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

from bench.common import (
    BENCH_NOW,
    TOKEN,
    WARDS,
    BenchDatabase,
    Platform,
    RssSampler,
    insert_linked_people,
    make_config,
    rss_kib,
)
from bot.app import build_services
from bot.clock import FakeClock
from bot.domain import OutboxStatus
from bot.runtime import Runtime

FIRST_CHAT = 10_000_000
NEEDLE = "return for December"


async def run(
    n: int,
    limit: float,
    backend: str = "sqlite",
    fraction: float = 0.97,
    max_in_flight: int = 8,
    profile: bool = False,
    processes: int = 1,
) -> dict[str, Any]:
    """One fan-out run; returns rates, 429s, duplicates, losses and memory (and, with
    ``profile``, a pyinstrument profile of the bot process while it sends). With
    ``processes`` > 1 (PostgreSQL), that many ``tensionbot run`` processes send together, each
    configured at the whole rate: the shared rate buckets keep them within it together."""
    if processes > 1:
        return await run_processes(n, limit, backend, fraction, max_in_flight, processes)
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled") if profile else None
    async with Platform(global_rate=limit, per_chat_rate=1) as platform:
        await platform.call("users", first=FIRST_CHAT, count=n)
        async with BenchDatabase(backend) as db:
            config = make_config(
                db.url,
                platform.base_url,
                global_rate=limit * fraction,
                per_chat_rate=1.0,
                max_in_flight=max_in_flight,
                poll_timeout=5,
            )
            services = await build_services(config, clock=FakeClock(BENCH_NOW))
            await insert_linked_people(services.db.engine, FIRST_CHAT, n)
            runtime = Runtime(services, TOKEN, run_scheduler=False)
            task = asyncio.create_task(runtime.run())
            try:
                while (await platform.call("method_count", method="getUpdates"))["count"] == 0:
                    await asyncio.sleep(0.05)
                sampler = RssSampler()
                sampler.start()
                if profiler is not None:
                    profiler.start()
                t0 = time.monotonic()
                await services.campaigns.open_monthly("2026-12", actor="bench", force=True)
                opened = time.monotonic() - t0
                deadline = time.monotonic() + n / (limit * fraction) * 3 + 120
                while True:
                    async with services.db.uow() as uow:
                        counts = await uow.outbox.counts()
                    busy = counts.get(OutboxStatus.PENDING.value, 0) + counts.get(
                        OutboxStatus.SENDING.value, 0
                    )
                    if busy == 0 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
                total = time.monotonic() - t0
                if profiler is not None:
                    profiler.stop()
                peak = await sampler.stop()
                stats = await platform.call(
                    "fanout_stats", first=FIRST_CHAT, count=n, needle=NEEDLE
                )
                dispatch = runtime.dispatcher.stats
            finally:
                runtime.stop()
                await task
                await services.close()
    span = (stats["last_at"] or 0.0) - (stats["first_at"] or 0.0)
    rate = (stats["sent_ok"] - 1) / span if span > 0 else 0.0
    return {
        "n": n,
        "limit": limit,
        "configured_rate": limit * fraction,
        "backend": backend,
        "open_seconds": opened,
        "total_seconds": total,
        "send_seconds": span,
        "rate": rate,
        "ratio": rate / limit,
        "throttled_fake": stats["throttled"],
        "throttled_bot": dispatch.throttled,
        "duplicates": stats["duplicates"],
        "lost": stats["lost"],
        "failed": dispatch.failed,
        "outbox": counts,
        "max_1s_window": stats["max_1s_window"],
        "peak_rss_kib": peak,
        "hwm_rss_kib": rss_kib()["VmHWM"],
        "profile": profiler.output_text(unicode=False, color=False) if profiler else "",
    }


def _process_config(path: Path, db_url: str, api: str, rate: float, max_in_flight: int) -> Path:
    """A ``tensionbot run`` configuration for one of several sending processes."""
    path.write_text(f"""
[partnership]
wards = {json.dumps(WARDS)}
[database]
url = "{db_url}"
[telegram]
api_base_url = "{api}"
bot_username = "bench_bot"
poll_timeout = 5
global_rate = {rate}
per_chat_rate = 1.0
max_in_flight = {max_in_flight}
[cluster]
leader_retry_seconds = 1
[schedule]
tick_seconds = 3600
""")
    return path


async def run_processes(
    n: int, limit: float, backend: str, fraction: float, max_in_flight: int, processes: int
) -> dict[str, Any]:
    """Fan-out sent by ``processes`` real ``tensionbot run`` processes on one database, each
    configured at ``limit * fraction`` (the whole rate, no hand division). This process only
    opens the return and counts."""
    if backend != "postgresql":
        raise ValueError("several processes need PostgreSQL")
    root = Path(__file__).resolve().parents[1]
    async with Platform(global_rate=limit, per_chat_rate=1) as platform:
        await platform.call("users", first=FIRST_CHAT, count=n)
        async with BenchDatabase(backend) as db:
            config = make_config(db.url, platform.base_url, global_rate=limit * fraction)
            services = await build_services(config, clock=FakeClock(BENCH_NOW))
            await insert_linked_people(services.db.engine, FIRST_CHAT, n)
            procs: list[asyncio.subprocess.Process] = []
            with tempfile.TemporaryDirectory(prefix="tensionbot-bench-") as tmp:
                try:
                    for i in range(processes):
                        cfg = _process_config(
                            Path(tmp) / f"config{i}.toml",
                            db.url,
                            platform.base_url,
                            limit * fraction,
                            max_in_flight,
                        )
                        procs.append(
                            await asyncio.create_subprocess_exec(
                                sys.executable, "-m", "bot.cli", "--config", str(cfg), "run",
                                cwd=root,
                                env={**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN},
                                stdout=asyncio.subprocess.DEVNULL,
                                stderr=sys.stderr,
                            )
                        )  # fmt: skip
                    # Every process has started its bot (getMe) before the return opens.
                    while (await platform.call("method_count", method="getMe"))[
                        "count"
                    ] < processes:
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(3)  # their dispatchers' first claim (poll: 1 s)
                    t0 = time.monotonic()
                    await services.campaigns.open_monthly("2026-12", actor="bench", force=True)
                    opened = time.monotonic() - t0
                    deadline = time.monotonic() + n / (limit * fraction) * 3 + 120
                    while True:
                        async with services.db.uow() as uow:
                            counts = await uow.outbox.counts()
                        busy = counts.get(OutboxStatus.PENDING.value, 0) + counts.get(
                            OutboxStatus.SENDING.value, 0
                        )
                        if busy == 0 or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.1)
                    total = time.monotonic() - t0
                    peak = max(rss_kib(p.pid).get("VmHWM", 0) for p in procs)
                    stats = await platform.call(
                        "fanout_stats", first=FIRST_CHAT, count=n, needle=NEEDLE
                    )
                finally:
                    for p in procs:
                        if p.returncode is None:
                            p.send_signal(signal.SIGTERM)
                    for p in procs:
                        await p.wait()
                    await services.close()
    span = (stats["last_at"] or 0.0) - (stats["first_at"] or 0.0)
    rate = (stats["sent_ok"] - 1) / span if span > 0 else 0.0
    return {
        "n": n,
        "limit": limit,
        "configured_rate": limit * fraction,
        "processes": processes,
        "backend": backend,
        "open_seconds": opened,
        "total_seconds": total,
        "send_seconds": span,
        "rate": rate,
        "ratio": rate / limit,
        "throttled_fake": stats["throttled"],
        "throttled_bot": stats["throttled"],
        "duplicates": stats["duplicates"],
        "lost": stats["lost"],
        "failed": counts.get(OutboxStatus.FAILED.value, 0),
        "outbox": counts,
        "max_1s_window": stats["max_1s_window"],
        "peak_rss_kib": peak,
        "hwm_rss_kib": peak,
        "profile": "",
    }
