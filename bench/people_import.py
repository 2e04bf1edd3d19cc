"""``python -m bench import``: ``tensionbot people import`` of a large CSV, as an operator runs
it (the real command in its own process, on a fresh database), three times: the first import
(everyone new), the same file again (everyone unchanged) and a file with a tenth changed.

Run on its own (it is not part of the full ``python -m bench``): ``python -m bench import
[N] [sqlite|postgresql]``, PostgreSQL under ``scripts/with-postgres``. It prints one Markdown
table row per run for bench/RESULTS.md."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import WARDS, BenchDatabase

ROOT = Path(__file__).resolve().parent.parent
HEADER = "name,role,wards,organisation,email,slack_user_id\n"


def people_csv(n: int, *, changed_every: int = 0) -> str:
    """``n`` synthetic people; with ``changed_every`` k, every k-th has moved ward."""
    rows = []
    for i in range(n):
        moved = changed_every and i % changed_every == 0
        ward = WARDS[(i + (1 if moved else 0)) % len(WARDS)]
        role = "councillor" if i % 2 else "community_leader"
        slack = f"U{i:09d}" if i % 10 == 0 else ""
        rows.append(f"Person {i},{role},{ward},Bench,person{i}@bench.example,{slack}\n")
    return HEADER + "".join(rows)


def _timed_import(config: Path, csv: Path) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "people", "import", str(csv)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "TENSIONBOT_TELEGRAM_TOKEN": "123456:BENCH-TOKEN"},
    )
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout.strip().rsplit(": ", 1)[-1]


async def run(n: int = 100_000, backend: str = "sqlite") -> list[tuple[str, float, str]]:
    """The three imports; (label, seconds, what the command said) each."""
    async with BenchDatabase(backend) as db:
        with tempfile.TemporaryDirectory(prefix="tensionbot-bench-import-") as tmp:
            wards = ", ".join(f'"{w}"' for w in WARDS)
            config = Path(tmp) / "config.toml"
            config.write_text(
                f'[partnership]\nwards = [{wards}]\n[database]\nurl = "{db.url}"\n'
                '[telegram]\nbot_username = "bench_bot"\n'
            )
            first, changed = Path(tmp) / "people.csv", Path(tmp) / "changed.csv"
            first.write_text(people_csv(n))
            changed.write_text(people_csv(n, changed_every=10))
            out = []
            for label, path in (("new", first), ("again", first), ("a tenth changed", changed)):
                seconds, said = _timed_import(config, path)
                out.append((label, seconds, said))
            return out


def main(argv: list[str]) -> None:
    """Run and print the Markdown rows."""
    n = int(argv[0]) if argv else 100_000
    backend = argv[1] if len(argv) > 1 else "sqlite"
    load = os.getloadavg()
    for label, seconds, said in asyncio.run(run(n, backend)):
        print(f"| {n:,} rows, {backend}, {label} | {seconds:.1f} s | {said} |")
    print(f"(load average before the run: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f})")
