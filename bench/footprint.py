"""Footprint: the resident memory of an idle ``tensionbot run`` (the real command line, polling
the simulated Telegram server, SQLite, scheduler on, nobody writing)."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.common import TOKEN, BenchDatabase, Platform, rss_kib


async def run(settle: float = 5.0, samples: int = 5) -> dict[str, Any]:
    """Start ``tensionbot run``, wait until it polls, let it settle, sample its RSS."""
    async with Platform() as platform, BenchDatabase("sqlite") as db:
        assert db.path is not None
        config = db.path.parent / "config.toml"
        config.write_text(
            f'[database]\nurl = "{db.url}"\n\n'
            f'[telegram]\napi_base_url = "{platform.base_url}"\npoll_timeout = 20\n',
            encoding="utf-8",
        )
        exe = Path(sys.executable).parent / "tensionbot"
        env = {**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN}
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
            for _ in range(600):
                if (await platform.call("method_count", method="getUpdates"))["count"]:
                    break
                if proc.returncode is not None:
                    raise RuntimeError("tensionbot run exited early")
                await asyncio.sleep(0.05)
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
    return {"idle_rss_kib": statistics.median(rss), "samples": rss, "hwm_kib": hwm}
