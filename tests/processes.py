"""``tensionbot run`` (and other ``tensionbot`` commands) as real processes, for the tests that
kill, restart or run several bots: test_restart, test_faults, test_service, test_scaleout."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[1]


def write_bot_config(
    tmp_path: Path, db_url: str, api_base_url: str, *, max_in_flight: int | None = None
) -> Path:
    """A ``config.toml`` in ``tmp_path`` for a real ``tensionbot run`` polling the fake Bot API:
    12/s overall, 1/s a chat, a one-second lease (a dead process's sends are settled quickly),
    and an hourly scheduler tick (tests drive the rest)."""
    in_flight = "" if max_in_flight is None else f"max_in_flight = {max_in_flight}\n"
    config = tmp_path / "config.toml"
    config.write_text(f"""
[partnership]
wards = ["Bilston South", "Blakenhall", "Heath Town", "Park", "Penn"]
[database]
url = "{db_url}"
[telegram]
api_base_url = "{api_base_url}"
bot_username = "swp_tension_bot"
poll_timeout = 1
global_rate = 12.0
per_chat_rate = 1.0
{in_flight}outbox_lease_seconds = 1
[schedule]
tick_seconds = 3600
""")
    return config


class BotProcess:
    """``tensionbot run`` in a subprocess, its output appended to ``log``."""

    #: How long ``stop`` waits after SIGTERM before it kills.
    stop_timeout = 15.0

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: asyncio.subprocess.Process | None = None

    def _env(self) -> dict[str, str]:
        return {**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": TOKEN}

    async def cli(self, *args: str) -> str:
        """Run ``tensionbot --config CONFIG ARGS`` to the end; its output (it must succeed)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "--config",
            str(self.config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
            env=self._env(),
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        return out.decode()

    async def start(self) -> None:
        with self.log.open("ab") as handle:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "--config",
                str(self.config),
                "-v",
                "run",
                stdout=handle,
                stderr=handle,
                cwd=ROOT,
                env=self._env(),
            )

    async def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``stop_timeout``."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), self.stop_timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
