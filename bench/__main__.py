"""``python -m bench``: run every benchmark (each run in a fresh worker process) and write
``bench/RESULTS.md``. PostgreSQL runs need ``TENSIONBOT_TEST_DATABASE_URL`` (``make bench`` runs
this under ``scripts/with-postgres``); without it they are skipped and RESULTS.md says so."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import median_spread, pg_url

HERE = Path(__file__).parent
RESULTS = HERE / "RESULTS.md"
PROFILES = HERE / "profiles"

# (label, kind, args, repetitions). Scaled to keep `make bench` under 15 minutes on 2 cores.
FANOUT: list[tuple[str, dict[str, Any], int]] = [
    ("N=1,000 at 30/s, SQLite", {"n": 1000, "limit": 30, "backend": "sqlite"}, 2),
    ("N=1,000 at 100/s, SQLite", {"n": 1000, "limit": 100, "backend": "sqlite"}, 3),
    ("N=1,000 at 100/s, PostgreSQL", {"n": 1000, "limit": 100, "backend": "postgresql"}, 3),
    ("N=10,000 at 100/s, PostgreSQL", {"n": 10000, "limit": 100, "backend": "postgresql"}, 1),
    # Three `tensionbot run` processes, each configured at the whole rate: shared buckets.
    (
        "N=1,000 at 30/s, PostgreSQL, 3 processes",
        {"n": 1000, "limit": 30, "backend": "postgresql", "processes": 3},
        1,
    ),
    # Far above what Telegram allows: where the bot's own CPU becomes the bound on 2 cores.
    ("N=1,000 at 300/s (ceiling), SQLite", {"n": 1000, "limit": 300, "backend": "sqlite"}, 2),
    (
        "N=1,000 at 300/s (ceiling), PostgreSQL",
        {"n": 1000, "limit": 300, "backend": "postgresql"},
        2,
    ),
]
CONVERSATION: list[tuple[str, str, dict[str, Any], int]] = [
    ("in memory (baseline)", "memory", {"users": 200}, 3),
    ("durable, SQLite", "conversation", {"users": 200, "backend": "sqlite"}, 1),
    ("durable, PostgreSQL", "conversation", {"users": 200, "backend": "postgresql"}, 1),
]
SUMMARIES: list[tuple[str, dict[str, Any]]] = [
    ("100,000 reports, SQLite", {"n": 100_000, "backend": "sqlite", "repeats": 5}),
    ("100,000 reports, PostgreSQL", {"n": 100_000, "backend": "postgresql", "repeats": 5}),
    ("1,000,000 reports, SQLite", {"n": 1_000_000, "backend": "sqlite", "repeats": 3}),
    ("1,000,000 reports, PostgreSQL", {"n": 1_000_000, "backend": "postgresql", "repeats": 3}),
]


if os.environ.get("BENCH_SMOKE"):  # a two-minute check of the harness itself, not figures
    FANOUT = [(label, {**a, "n": 50}, 1) for label, a, _ in FANOUT[:2]]
    CONVERSATION = [(label, k, {**a, "users": 10}, 1) for label, k, a, _ in CONVERSATION]
    SUMMARIES = [(label, {**a, "n": 20_000, "repeats": 2}) for label, a in SUMMARIES[:2]]
    RESULTS = Path(os.environ.get("TMPDIR", "/tmp")) / "tensionbot-bench-smoke.md"


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def worker(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark in a fresh process; its stderr goes to bench/profiles/worker.log."""
    PROFILES.mkdir(exist_ok=True)
    t0 = time.monotonic()
    with open(PROFILES / "worker.log", "a", encoding="utf-8") as err:
        err.write(f"\n=== {kind} {json.dumps(args)}\n")
        err.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.worker", kind, json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
            cwd=HERE.parent,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {args} failed (see bench/profiles/worker.log)")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = time.monotonic() - t0
    log(f"{kind} {args}: done in {result['wall']:.0f}s")
    return result


def fmt(stats: dict[str, float], unit: str = "", digits: int = 2) -> str:
    """``median (min–max)``."""
    if stats["n"] == 1:
        return f"{stats['median']:.{digits}f}{unit} (1 run)"
    return (
        f"{stats['median']:.{digits}f}{unit} "
        f"({stats['min']:.{digits}f}–{stats['max']:.{digits}f}, {int(stats['n'])} runs)"
    )


def ms(values: list[float]) -> str:
    """Seconds as milliseconds, median and spread."""
    return fmt(median_spread([v * 1000 for v in values]), " ms", 0)


def profile_excerpt(text: str, lines: int = 45) -> str:
    """The top of a pyinstrument text profile."""
    body = [ln for ln in text.splitlines() if ln.strip()]
    start = next(
        (i for i, ln in enumerate(body) if ln.lstrip().startswith(("0.", "1.", "2.", "3."))), 0
    )
    return "\n".join(body[start : start + lines])


def versions() -> str:
    """Python and the libraries that matter here."""
    names = [
        "python-telegram-bot",
        "httpx",
        "aiohttp",
        "SQLAlchemy",
        "aiosqlite",
        "asyncpg",
        "aiolimiter",
        "pyinstrument",
    ]
    parts = [f"Python {platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    import sqlite3

    parts.append(f"SQLite {sqlite3.sqlite_version}")
    return ", ".join(parts)


def pg_version() -> str:
    """The PostgreSQL server version of the throwaway cluster."""
    if not pg_url():
        return "not available"
    out = subprocess.run(
        [sys.executable, "-c", _PG_VERSION], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


_PG_VERSION = """
import asyncio, os
import asyncpg
from sqlalchemy.engine import make_url
u = make_url(os.environ["TENSIONBOT_TEST_DATABASE_URL"])
async def main():
    c = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database="postgres")
    print(await c.fetchval("SHOW server_version"))
    await c.close()
asyncio.run(main())
"""


def machine() -> str:
    """CPU model, cores and memory."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(ln.split()[1]) // 1024
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem = 0
    return f"{model}, {os.cpu_count()} cores, {mem:,} MiB RAM, {platform.platform()}"


def main() -> None:
    """Run everything, write RESULTS.md."""
    started = time.monotonic()
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    has_pg = pg_url() is not None
    skipped: list[str] = []
    if PROFILES.exists():
        for old in PROFILES.iterdir():
            old.unlink()

    def wanted(args: dict[str, Any], label: str) -> bool:
        if args.get("backend") == "postgresql" and not has_pg:
            skipped.append(label)
            return False
        return True

    loads: list[tuple[str, tuple[float, float, float]]] = []

    # 4. Footprint first, on a quiet machine.
    log("footprint: idle `tensionbot run`")
    foot = worker("footprint", {})
    loads.append(("footprint", os.getloadavg()))

    # 1. Fan-out.
    fan: list[tuple[str, list[dict[str, Any]]]] = []
    for label, args, reps in FANOUT:
        if wanted(args, f"fan-out {label}"):
            fan.append((label, [worker("fanout", args) for _ in range(reps)]))
            loads.append((f"fan-out {label}", os.getloadavg()))
    fan_profile = worker(
        "fanout",
        {"n": 50 if os.environ.get("BENCH_SMOKE") else 1000, "limit": 300, "profile": True},
    )
    (PROFILES / "fanout-sqlite-1000-300.txt").write_text(fan_profile["profile"])

    # 2. Conversation handling.
    conv: list[tuple[str, list[dict[str, Any]]]] = []
    for label, kind, args, reps in CONVERSATION:
        if wanted(args, f"conversation {label}"):
            conv.append((label, [worker(kind, args) for _ in range(reps)]))
            loads.append((f"conversation {label}", os.getloadavg()))
    conv_profile = worker("conversation", {"users": 30, "backend": "sqlite", "profile": True})
    (PROFILES / "conversation-sqlite-30.txt").write_text(conv_profile.get("profile", ""))

    # 3. Summaries.
    summ: list[tuple[str, dict[str, Any]]] = []
    for label, args in SUMMARIES:
        if wanted(args, f"summaries {label}"):
            summ.append((label, worker("summaries", args)))
            loads.append((f"summaries {label}", os.getloadavg()))
    for label, r in summ:
        name = label.replace(",", "").replace(" ", "-").lower()
        (PROFILES / f"summary-{name}.txt").write_text(r.get("profile", ""))

    elapsed = time.monotonic() - started
    write_results(
        started_at,
        elapsed,
        load_before,
        loads,
        foot,
        fan,
        fan_profile,
        conv,
        conv_profile,
        summ,
        skipped,
    )
    log(f"wrote {RESULTS} after {elapsed / 60:.1f} minutes")


def write_results(
    started_at: datetime,
    elapsed: float,
    load_before: tuple[float, float, float],
    loads: list[tuple[str, tuple[float, float, float]]],
    foot: dict[str, Any],
    fan: list[tuple[str, list[dict[str, Any]]]],
    fan_profile: dict[str, Any],
    conv: list[tuple[str, list[dict[str, Any]]]],
    conv_profile: dict[str, Any],
    summ: list[tuple[str, dict[str, Any]]],
    skipped: list[str],
) -> None:
    """Render bench/RESULTS.md."""
    out: list[str] = []
    w = out.append
    w("# tensionbot benchmark results\n")
    w(
        f"Written by `make bench` on {started_at:%Y-%m-%d %H:%M} UTC; the whole run took "
        f"**{elapsed / 60:.1f} minutes**. Every figure is the median of the runs, with the "
        "min–max spread in brackets. Each run is a fresh worker process and a fresh database; "
        "the simulated Telegram server runs in a process of its own.\n"
    )
    w(f"- Machine: {machine()}")
    w(f"- Versions: {versions()}; PostgreSQL {pg_version()}")
    w(
        "- PostgreSQL is the throwaway cluster of `scripts/with-postgres` (127.0.0.1, "
        "`fsync=off`, `full_page_writes=off`: commits are cheaper than on a production server)."
        " SQLite is a file in /tmp with the product's pragmas (WAL, synchronous=NORMAL)."
    )
    w(
        f"- Load average (1/5/15 min) before the run: {load_before[0]:.2f} / "
        f"{load_before[1]:.2f} / {load_before[2]:.2f}; after each part: "
        + "; ".join(f"{name} {la[0]:.2f}" for name, la in loads)
        + ". Other work (test runs) may have shared the two cores."
    )
    if skipped:
        w(f"- **Skipped** (no PostgreSQL): {', '.join(skipped)}")
    w("")

    # ---------------------------------------------------------------- fan-out
    w("## 1. Fan-out: opening a return for N reporters\n")
    w(
        "The real path: `CampaignService.open_monthly` → deliveries and outbox rows → "
        "`OutboxDispatcher` (claims, global and per-chat token buckets, 429 pause) → "
        "`TelegramMessenger` → python-telegram-bot → HTTP → the fake Bot API server, which "
        "enforces the limit overall and 1/s per chat and answers 429 with `retry_after` beyond "
        "it. The bot's `telegram.global_rate` is set to 0.97 × the limit; `max_in_flight` is the "
        "default 8. Reporters are bulk-inserted already linked. *Rate* is counted at the fake "
        "server, from the first to the last accepted `sendMessage`; *open* is the time to "
        "create the campaign, deliveries and outbox rows (before the first send).\n"
    )
    w(
        "| run | achieved rate | ratio to limit (target ≥ 0.95) | 429s | duplicates | "
        "losses | busiest 1 s | open | total | peak RSS |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, runs in fan:

        def f(key: str, runs: list[dict[str, Any]] = runs) -> dict[str, float]:
            return median_spread([float(r[key]) for r in runs])

        w(
            f"| {label} | {fmt(f('rate'), '/s', 1)} | {fmt(f('ratio'))} | "
            f"{sum(r['throttled_fake'] for r in runs)} | {sum(r['duplicates'] for r in runs)} | "
            f"{sum(r['lost'] for r in runs)} | {max(r['max_1s_window'] for r in runs)} | "
            f"{fmt(f('open_seconds'), ' s', 1)} | {fmt(f('total_seconds'), ' s', 1)} | "
            f"{max(r['peak_rss_kib'] for r in runs) / 1024:.0f} MiB |"
        )
    w(
        "\n429s, duplicates and losses are totals over all runs of a row; *busiest 1 s* is the "
        "most sends the fake counted in any one-second window (the limit is what it allows)."
    )
    fp = fan_profile
    w(
        f"\nProfiled run (pyinstrument, N=1,000 at 300/s, SQLite, slower under the profiler: "
        f"{fp['rate']:.1f}/s). The top of the profile of the bot process while it sends "
        "(full: `bench/profiles/fanout-sqlite-1000-300.txt`):\n"
    )
    w("```text\n" + profile_excerpt(fp["profile"]) + "\n```\n")

    # ---------------------------------------------------------------- conversation
    w("## 2. Conversation handling: 200 reporters answering the form at once\n")
    w(
        "Each simulated reporter sends `/report`, answers every question (ward, category and "
        "the choices by button; the description by text; optional questions skipped) and "
        "taps Submit: 14 updates each, 2,800 in all, all 200 reporters at once with no think "
        "time (a closed loop: latency ≈ 200 ÷ throughput). Updates reach the bot by webhook "
        "(`handlers/telegram/transport.webhook_app` → the real PTB `Application`). *Latency* "
        "is from the moment the platform posts an update to the moment it receives the first "
        "reply (`sendMessage` or `editMessageText`) in that chat. Telegram's limits are lifted "
        "here (the bot runs at 1,000/s overall, 50/s per chat) so that the figure is the bot's "
        "own cost.\n"
    )
    w(
        "*Durable* is the product (one transaction per update: sender check, update-id "
        "de-duplication, conversation row, outbox rows; replies sent by the dispatcher; on "
        "Submit the report, its reference and routing). *In memory* is a baseline in "
        "`bench/conversation.py`: the same PTB Application and webhook endpoint, the same form "
        "logic and `bot.texts` messages, rendered and sent by the same "
        "`TelegramMessenger`, but state in a dict and replies sent straight from the handler — "
        "no database, outbox, dispatcher, rate limiter, de-duplication, audit or routing.\n"
    )
    w("| path | updates/s | p50 | p99 | reports stored | errors | peak RSS |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    base = None
    for label, runs in conv:
        ups = median_spread([r["updates_per_s"] for r in runs])
        if label.startswith("in memory"):
            base = ups["median"]
        w(
            f"| {label} | {fmt(ups, '', 1)} | "
            f"{fmt(median_spread([r['p50_ms'] for r in runs]), ' ms', 0)} | "
            f"{fmt(median_spread([r['p99_ms'] for r in runs]), ' ms', 0)} | "
            f"{min(r['reports_stored'] for r in runs)} of {runs[0]['completed']} | "
            f"{sum(r['error_count'] + r['unanswered'] for r in runs)} | "
            f"{max(r['peak_rss_kib'] for r in runs) / 1024:.0f} MiB |"
        )
    if base:
        ratios = [
            f"{label}: {base / median_spread([r['updates_per_s'] for r in runs])['median']:.1f}×"
            for label, runs in conv
            if not label.startswith("in memory")
        ]
        w(
            "\nCost of durability (in-memory throughput ÷ durable throughput; target ≤ 2×): "
            + "; ".join(ratios)
            + "."
        )
    w(
        f"\nProfiled run (pyinstrument, 30 reporters, durable, SQLite: "
        f"{conv_profile['updates_per_s']:.1f} updates/s under the profiler). The top of the "
        "bot process's profile (full: `bench/profiles/conversation-sqlite-30.txt`):\n"
    )
    w("```text\n" + profile_excerpt(conv_profile.get("profile", "")) + "\n```\n")

    # ---------------------------------------------------------------- summaries
    w("## 3. Summaries over 10 years × 20 wards\n")
    w(
        "Synthetic reports spread evenly over 120 months (2017-01 to 2026-12) and 20 wards, "
        "with police hate-crime figures for every month, ward and strand (12,000 rows); "
        "generated with `executemany` (SQLite) or `COPY` (PostgreSQL), then `ANALYZE`; "
        "*generate* includes the triggers that keep the count tables `report_counts` and "
        "`report_cube` in step (migration 0008), which is what each report costs at write "
        "time for the summary to read counts instead of rows. "
        "*Month* is the real `SummaryService.build('2026-06')` (every aggregate of the monthly "
        "summary: breakdowns against the previous month and last year, 13-month trends, "
        "pockets of concern, hate crime, return rates, actions; one audit row). *Year* is twelve "
        "monthly builds (2026-01 … 2026-12). *Python loop* fetches the report rows of the 14 "
        "months a summary covers and the hate-crime rows, and counts the same figures in a "
        "Python loop (checked equal to the SQL figures: *agree*).\n"
    )
    w(
        "| data | generate | month (target < 0.5 s at 1M) | month, Python loop | SQL "
        "speed-up (target ≥ 20×) | year (12 builds) | year, Python loop | agree |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|:-:|")
    for label, r in summ:
        w(
            f"| {label} ({r['month_rows']:,} in the month) | {r['generate_seconds']:.1f} s | "
            f"{ms(r['month_sql'])} | {ms(r['month_py'])} | {r['speedup_month']:.1f}× | "
            f"{ms(r['year_sql'])} | {ms(r['year_py'])} | {'yes' if r['agree'] else 'NO'} |"
        )
    for label, r in summ:
        if label.startswith("1,000,000"):
            name = label.replace(",", "").replace(" ", "-").lower()
            w(
                f"\nProfile of one month build, {label} (full: "
                f"`bench/profiles/summary-{name}.txt`):\n"
            )
            w("```text\n" + profile_excerpt(r["profile"], 30) + "\n```")
    w("")

    # ---------------------------------------------------------------- footprint
    w("## 4. Footprint\n")
    fan_peaks = [(label, max(r["peak_rss_kib"] for r in runs) / 1024) for label, runs in fan]
    w(
        f"- Idle `tensionbot run` (the real command, polling the fake server, SQLite, "
        f"scheduler on, no Slack): **{foot['idle_rss_kib'] / 1024:.0f} MiB** RSS (median of "
        f"{len(foot['samples'])} samples over {len(foot['samples'])} s; peak "
        f"{foot['hwm_kib'] / 1024:.0f} MiB)."
    )
    w(
        "- Peak RSS of the bot process during fan-out (sampled every 50 ms from the opening "
        "of the return to the last send; the process is the bench worker running the same "
        "`Runtime`): " + "; ".join(f"{label}: **{mib:.0f} MiB**" for label, mib in fan_peaks) + "."
    )
    w("")
    analysis = HERE / "ANALYSIS.md"
    if analysis.exists():  # the written reading of these figures (kept by hand, not generated)
        w(analysis.read_text(encoding="utf-8"))
    RESULTS.write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["import"]:  # one scenario on its own: bench/people_import.py
        from bench import people_import

        people_import.main(sys.argv[2:])
    else:
        main()
