"""Exercise an installed tensionbot the way the Docker image runs it, in polling and webhook mode.

Run by scripts/docker-smoke with the Python of a fresh venv installed from requirements.lock.
``--prefix`` is the command that runs ``tensionbot`` (the venv's script, or ``docker run … image``)
and ``--exec`` the one that runs a command beside the running bot (the same, or ``docker exec``):
for each mode, ``check-config`` must pass, ``run`` must start, ``health`` (the image's HEALTHCHECK)
must pass while it runs, and SIGTERM must stop it with status 0. A simulated Telegram
(sim/fake_telegram/, from the checkout) stands in for api.telegram.org; the database is SQLite
in ``--work``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from pathlib import Path

# The simulators (sim/) are not installed with the package: the driver takes them from this
# checkout. Appended, not prepended, so `bot` still comes from the installed package under test.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from sim.fake_telegram import FakeTelegram
from sim.world import free_port

TOKEN = "7000000001:SMOKE-TOKEN-not-a-real-one"  # noqa: S105 - for the simulator only


def _config(work: Path, mode: str, api: str, port: int) -> Path:
    if mode == "polling":  # no HTTP server at all: health checks the heartbeat file instead
        telegram, server = "", 'heartbeat_file = "polling.beat"'
    else:
        telegram = f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/telegram"'
        server = f'listen = "127.0.0.1"\nport = {port}'
    path = work / f"{mode}.toml"
    path.write_text(f"""
[database]
url = "sqlite+aiosqlite:///{mode}.sqlite3"      # relative: beside this file
[telegram]
api_base_url = "{api}"
bot_username = "swp_tension_bot"
poll_timeout = 1
{telegram}
[server]
{server}
""")
    return path


async def _cli(prefix: list[str], config: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _mode(mode: str, work: Path, api: str, run: list[str], exec_: list[str]) -> None:
    config = _config(work, mode, api, free_port())
    code, out = await _cli(run, config, "check-config")
    print(f"[{mode}] check-config: exit {code}\n{out.rstrip()}")
    if code != 0:
        raise SystemExit(f"[{mode}] check-config failed")
    log = (work / f"{mode}.log").open("wb")
    bot = await asyncio.create_subprocess_exec(
        *run, "--config", str(config), "-v", "run", stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            code, out = await _cli(exec_, config, "health")
            if code == 0:
                print(f"[{mode}] health: {out.strip()}")
                break
            if bot.returncode is not None or time.monotonic() > deadline:
                log.flush()
                print((work / f"{mode}.log").read_text()[-3000:])
                raise SystemExit(f"[{mode}] never healthy: {out.strip()}")
            await asyncio.sleep(1)
    finally:
        if bot.returncode is None:
            bot.terminate()
        status = await asyncio.wait_for(bot.wait(), 60)
        log.close()
    print(f"[{mode}] SIGTERM: exit {status}")
    if status != 0:
        raise SystemExit(f"[{mode}] did not stop cleanly")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True, help="a writable folder")
    parser.add_argument("--prefix", required=True, help="how to run tensionbot")
    parser.add_argument("--exec", dest="exec_", default=None, help="how to run it beside")
    args = parser.parse_args()
    os.environ["TENSIONBOT_TELEGRAM_TOKEN"] = TOKEN  # the docker prefix passes it with -e
    fake = FakeTelegram(token=TOKEN, bot_username="swp_tension_bot")
    await fake.start()
    try:
        run = shlex.split(args.prefix)
        for mode in ("polling", "webhook"):
            await _mode(mode, args.work, fake.base_url, run, shlex.split(args.exec_ or args.prefix))
    finally:
        await fake.stop()
    print("smoke: OK")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
