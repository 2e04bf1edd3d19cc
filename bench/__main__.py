"""``python -m bench``: run every benchmark (each run in a fresh worker process) and write
``bench/RESULTS.md``. PostgreSQL runs need ``TENSIONBOT_TEST_DATABASE_URL`` (``make bench`` runs
this under ``scripts/with-postgres``); without it they are skipped and RESULTS.md says so."""

from __future__ import annotations

import json
import os
import platform
import statistics
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

CEILING_SQLITE = "N=2,000, limit 1,000/s (ceiling), SQLite"
CEILING_PG = "N=2,000, limit 1,000/s (ceiling), PostgreSQL"
DEEP = {"max_in_flight": 32}
# (label, kind, args, repetitions). Scaled to keep `make bench` under 20 minutes on 2 cores.
FANOUT: list[tuple[str, dict[str, Any], int]] = [
    ("N=1,000 at 30/s, SQLite", {"n": 1000, "limit": 30, "backend": "sqlite"}, 2),
    # From 100/s the sends in flight are sized to the rate (telegram.max_in_flight, about the
    # rate × 0.1 s: a send holds its place from its claim until its result is recorded).
    ("N=1,000 at 100/s, SQLite", {"n": 1000, "limit": 100, "backend": "sqlite", **DEEP}, 2),
    (
        "N=1,000 at 100/s, PostgreSQL",
        {"n": 1000, "limit": 100, "backend": "postgresql", **DEEP},
        2,
    ),
    (
        "N=10,000 at 100/s, PostgreSQL",
        {"n": 10000, "limit": 100, "backend": "postgresql", **DEEP},
        1,
    ),
    # Three `tensionbot run` processes, each configured at the whole rate: shared buckets.
    (
        "N=1,000 at 30/s, PostgreSQL, 3 processes",
        {"n": 1000, "limit": 30, "backend": "postgresql", "processes": 3},
        1,
    ),
    # The limit far above what Telegram allows (and above the 300/s target, which a limit of
    # 300/s could never show: the bot runs at 0.97 of it): the bot's own CPU is the bound.
    (CEILING_SQLITE, {"n": 2000, "limit": 1000, "backend": "sqlite", **DEEP}, 2),
    (CEILING_PG, {"n": 2000, "limit": 1000, "backend": "postgresql", **DEEP}, 2),
]
MEMORY_LABEL = "in memory (baseline)"
CONVERSATION: list[tuple[str, str, dict[str, Any], int]] = [
    (MEMORY_LABEL, "memory", {"users": 200}, 3),
    ("PicklePersistence peer (PTB ConversationHandler)", "pickle", {"users": 200}, 2),
    ("durable, SQLite", "conversation", {"users": 200, "backend": "sqlite"}, 2),
    ("durable, PostgreSQL", "conversation", {"users": 200, "backend": "postgresql"}, 2),
]
# kill -9 after each reporter's fifth acknowledged update (bench/killtest.py); one run each.
KILL: list[tuple[str, dict[str, Any]]] = [
    (
        "PicklePersistence peer (flush every 60 s)",
        {"path": "pickle", "users": 200, "stop_after": 5},
    ),
    ("durable, SQLite (`tensionbot run`)", {"path": "durable", "users": 200, "stop_after": 5}),
]
SUMMARIES: list[tuple[str, dict[str, Any]]] = [
    ("100,000 reports, SQLite", {"n": 100_000, "backend": "sqlite", "repeats": 3}),
    ("100,000 reports, PostgreSQL", {"n": 100_000, "backend": "postgresql", "repeats": 3}),
    ("1,000,000 reports, SQLite", {"n": 1_000_000, "backend": "sqlite", "repeats": 3}),
    ("1,000,000 reports, PostgreSQL", {"n": 1_000_000, "backend": "postgresql", "repeats": 3}),
]
CONV_PROFILE_USERS = 30
FAN_PROFILE_N = 1000

# `python -m bench smoke` (`make bench-smoke`, for CI): the conversation ratio and idle memory,
# failing past the targets + 25%.
SMOKE_USERS = 100
SMOKE_MAX_RATIO = 2.5  # target 2× + 25%
SMOKE_MAX_RSS_MIB = 125.0  # target 100 MiB + 25%

if os.environ.get("BENCH_SMOKE"):  # a two-minute check of the harness itself, not figures
    FANOUT = [(label, {**a, "n": 50}, 1) for label, a, _ in FANOUT[:2]]
    CONVERSATION = [(label, k, {**a, "users": 10}, 1) for label, k, a, _ in CONVERSATION]
    KILL = [(label, {**a, "users": 10}) for label, a in KILL]
    SUMMARIES = [(label, {**a, "n": 20_000, "repeats": 2}) for label, a in SUMMARIES[:2]]
    CONV_PROFILE_USERS, FAN_PROFILE_N, SMOKE_USERS = 10, 50, 10
    RESULTS = Path(os.environ.get("TMPDIR", "/tmp")) / "tensionbot-bench-smoke.md"
    PROFILES = RESULTS.with_name("tensionbot-bench-smoke-profiles")  # keep bench/profiles


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


Runs = list[dict[str, Any]]
Loads = dict[str, tuple[float, float]]  # part -> 1-minute load average before and after it


def measure(label: str, kind: str, args: dict[str, Any], reps: int, loads: Loads) -> Runs:
    """``reps`` runs of one part, noting the 1-minute load average before and after."""
    before = os.getloadavg()[0]
    runs = [worker(kind, args) for _ in range(reps)]
    loads[label] = (before, os.getloadavg()[0])
    return runs


def load_of(loads: Loads, label: str) -> str:
    """``1.2 → 1.5``: the 1-minute load average before and after a part."""
    before, after = loads.get(label, (float("nan"), float("nan")))
    return f"{before:.2f} → {after:.2f}"


def vals(runs: Runs, key: str) -> list[float]:
    """One figure of every run."""
    return [float(r[key]) for r in runs]


def ratio(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """median(num) ÷ median(den), and the least and greatest ratio of any two runs."""
    return (
        statistics.median(num) / statistics.median(den),
        min(num) / max(den),
        max(num) / min(den),
    )


def fmt_ratio(r: tuple[float, float, float], digits: int = 1) -> str:
    """``9.6× (7.1–12.0×)``."""
    med, lo, hi = r
    if lo == hi:
        return f"{med:.{digits}f}×"
    return f"{med:.{digits}f}× ({lo:.{digits}f}–{hi:.{digits}f}×)"


def spread(values: list[float], unit: str = "", digits: int = 1) -> str:
    """``median (min–max)`` without the run count (the summary table)."""
    st = median_spread(values)
    if st["n"] == 1:
        return f"{st['median']:.{digits}f}{unit}"
    return f"{st['median']:.{digits}f}{unit} ({st['min']:.{digits}f}–{st['max']:.{digits}f})"


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

    loads: Loads = {}

    # 4. Footprint first, on a quiet machine.
    log("footprint: idle `tensionbot run`")
    foot = measure("footprint", "footprint", {}, 1, loads)[0]

    # 1. Fan-out.
    fan: list[tuple[str, Runs]] = []
    for label, args, reps in FANOUT:
        if wanted(args, f"fan-out {label}"):
            fan.append((label, measure(label, "fanout", args, reps, loads)))
    fan_profile = worker("fanout", {"n": FAN_PROFILE_N, "limit": 300, "profile": True})
    (PROFILES / "fanout-sqlite-1000-300.txt").write_text(fan_profile["profile"])

    # 2. Conversation handling, then kill -9 in the middle of it.
    conv: list[tuple[str, Runs]] = []
    for label, kind, args, reps in CONVERSATION:
        if wanted(args, f"conversation {label}"):
            conv.append((label, measure(label, kind, args, reps, loads)))
    kills: list[tuple[str, dict[str, Any]]] = []
    for label, args in KILL:
        kills.append((label, measure(f"kill {label}", "kill", args, 1, loads)[0]))
    conv_profile = worker(
        "conversation", {"users": CONV_PROFILE_USERS, "backend": "sqlite", "profile": True}
    )
    (PROFILES / "conversation-sqlite-30.txt").write_text(conv_profile.get("profile", ""))

    # 3. Summaries.
    summ: list[tuple[str, dict[str, Any]]] = []
    for label, args in SUMMARIES:
        if wanted(args, f"summaries {label}"):
            summ.append((label, measure(label, "summaries", args, 1, loads)[0]))
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
        kills,
        conv_profile,
        summ,
        skipped,
    )
    log(f"wrote {RESULTS} after {elapsed / 60:.1f} minutes")
    print(f"bench: the whole run took {elapsed / 60:.1f} minutes; results in {RESULTS}")


def _row(runs: list[tuple[str, Runs]], label: str) -> Runs | None:
    return next((r for name, r in runs if name == label), None)


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def targets(
    foot: dict[str, Any],
    fan: list[tuple[str, Runs]],
    conv: list[tuple[str, Runs]],
    kills: list[tuple[str, dict[str, Any]]],
    summ: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, str, str, str]]:
    """The issue's table (figure, now, target, met?), computed from this run."""
    rows: list[tuple[str, str, str, str]] = []
    base = _row(conv, MEMORY_LABEL)
    for label, name in (("durable, SQLite", "SQLite"), ("durable, PostgreSQL", "PostgreSQL")):
        dur = _row(conv, label)
        if base is None or dur is None:
            rows.append((f"conversation, durable {name} vs in memory", "not run", "≤ 2×", "—"))
            continue
        thr = ratio(vals(base, "updates_per_s"), vals(dur, "updates_per_s"))
        p99 = ratio(vals(dur, "p99_ms"), vals(base, "p99_ms"))
        rows.append(
            (
                f"conversation, {dur[0]['completed']} reporters at once, durable {name} vs "
                "in-memory baseline",
                f"{spread(vals(dur, 'updates_per_s'))} vs {spread(vals(base, 'updates_per_s'))} "
                f"updates/s: **{fmt_ratio(thr)}** slower; p99 "
                f"{spread([v / 1000 for v in vals(dur, 'p99_ms')], ' s', 2)} vs "
                f"{spread([v / 1000 for v in vals(base, 'p99_ms')], ' s', 2)}: "
                f"**{fmt_ratio(p99)}**",
                "≤ 2× in throughput and in p99",
                _met(thr[0] <= 2 and p99[0] <= 2),
            )
        )
    peer = next((r for name, r in conv if name.startswith("PicklePersistence")), None)
    if base is not None and peer is not None:
        thr = ratio(vals(base, "updates_per_s"), vals(peer, "updates_per_s"))
        rows.append(
            (
                "conversation, PicklePersistence peer (PTB ConversationHandler) vs in memory",
                f"{spread(vals(peer, 'updates_per_s'))} updates/s: {fmt_ratio(thr, 2)}",
                "(a peer, for comparison)",
                "—",
            )
        )
    for label, k in kills:
        durable = k["path"] == "durable"
        rows.append(
            (
                f"kill -9 after 5 acknowledged updates per reporter, {label}: conversations lost",
                f"**{k['lost_states']} of {k['reporters']}** reporters "
                f"({k['lost_updates']} of {k['acknowledged_updates']} acknowledged updates)",
                "0" if durable else "(a peer: its 60 s flush is the window)",
                _met(k["lost_states"] == 0 and k["error_count"] == 0) if durable else "—",
            )
        )
    rss = [v / 1024 for v in foot["samples"]]
    rows.append(
        (
            "idle resident memory of the service",
            f"{spread(rss, ' MiB', 0)}",
            "≤ 100 MiB",
            _met(statistics.median(rss) <= 100),
        )
    )

    def fan_row(label: str, figure: str, target: str, key: str, ok: Any, unit: str = "") -> None:
        runs = _row(fan, label)
        if runs is None:
            rows.append((figure, "not run", target, "—"))
            return
        v = vals(runs, key)
        rows.append((figure, spread(v, unit, 2 if key == "ratio" else 0), target, _met(ok(v))))

    fan_row(
        "N=10,000 at 100/s, PostgreSQL",
        "fan-out, 10,000 reporters at 100/s (PostgreSQL), ratio to the limit",
        "≥ 0.95",
        "ratio",
        lambda v: statistics.median(v) >= 0.95,
    )
    for label, backend in ((CEILING_SQLITE, "SQLite"), (CEILING_PG, "PostgreSQL")):
        fan_row(
            label,
            f"the bot's own ceiling on 2 cores, {backend} (2,000 reporters, limit 1,000/s)",
            "≥ 300/s",
            "rate",
            lambda v: statistics.median(v) >= 300,
            "/s",
        )
    fan_row(
        "N=1,000 at 30/s, SQLite",
        "fan-out at 30/s, 1,000 reporters (SQLite), ratio to the limit",
        "keep ≥ 0.95",
        "ratio",
        lambda v: statistics.median(v) >= 0.95,
    )
    for label, r in summ:
        if not label.startswith("1,000,000"):
            continue
        backend = label.split(", ")[1]
        month = statistics.median(r["month_sql"])
        rows.append(
            (
                f"summary for a month at 1M reports, {backend}",
                f"{ms(r['month_sql'])}, {r['speedup_month']:.1f}× faster than the same build "
                "counting the report rows in a Python loop (like for like: both compute the "
                "pockets' tests and the PACT insight; the figure reads alone: "
                f"{r.get('speedup_reads', float('nan')):.1f}×"
                + (
                    f"; the whole build in CPU time: {r['speedup_cpu']:.1f}×)"
                    if backend == "SQLite" and "speedup_cpu" in r
                    else ")"
                ),
                "keep: < 0.5 s, ≥ 20× the loop",
                _met(month < 0.5 and r["speedup_month"] >= 20 and r["agree"]),
            )
        )
        for key, name in (("quarter_sql", "quarter (2026-Q2)"), ("year_sql", "year (2026)")):
            rows.append(
                (
                    f"summary for a {name} at 1M reports, {backend}",
                    ms(r[key]),
                    "< 0.5 s",
                    _met(statistics.median(r[key]) < 0.5),
                )
            )
    return rows


def write_results(
    started_at: datetime,
    elapsed: float,
    load_before: tuple[float, float, float],
    loads: Loads,
    foot: dict[str, Any],
    fan: list[tuple[str, Runs]],
    fan_profile: dict[str, Any],
    conv: list[tuple[str, Runs]],
    kills: list[tuple[str, dict[str, Any]]],
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
        "min–max spread in brackets; a ratio's spread is that of the least and greatest ratio of "
        "any two runs. Each run is a fresh worker process and a fresh database; the simulated "
        "Telegram server runs in a process of its own.\n"
    )
    w("## The targets (issue 17), from this run\n")
    w("| figure | now | target | met? |")
    w("|---|---|---|:-:|")
    for figure, now, target, met in targets(foot, fan, conv, kills, summ):
        w(f"| {figure} | {now} | {target} | {met} |")
    w("")
    w(f"- Machine: {machine()}")
    w(f"- Versions: {versions()}; PostgreSQL {pg_version()}")
    w(
        "- PostgreSQL is the throwaway cluster of `scripts/with-postgres` (127.0.0.1, "
        "`fsync=off`, `full_page_writes=off`: commits are cheaper than on a production server)."
        " SQLite is a file in /tmp with the product's pragmas (WAL, synchronous=NORMAL)."
    )
    w(
        f"- Load average (1/5/15 min) before the run: {load_before[0]:.2f} / "
        f"{load_before[1]:.2f} / {load_before[2]:.2f}. Each table gives the 1-minute load "
        "average before → after its row. Other work (test runs) may have shared the two cores."
    )
    if skipped:
        w(f"- **Skipped** (no PostgreSQL): {', '.join(skipped)}")
    w("")

    # ---------------------------------------------------------------- fan-out
    w("## 1. Fan-out: opening a return for N reporters\n")
    w(
        "The real path: `CampaignService.open_monthly` → deliveries and outbox rows → "
        "`OutboxDispatcher` (batched claims, a pacer with catch-up and per-chat buckets, the "
        "arrival guard, 429 pause, bulk recording) → "
        "`TelegramMessenger` → python-telegram-bot → HTTP → the fake Bot API server, which "
        "enforces the limit overall and 1/s per chat and answers 429 with `retry_after` beyond "
        "it. The bot's `telegram.global_rate` is set to 0.97 × the limit; `max_in_flight` is the "
        "default 8 at 30/s and 32 from 100/s (sized to the rate: about the rate × 0.1 s, as "
        "config.example.toml advises, because a send holds its place from its claim until its "
        "result is recorded). Reporters are bulk-inserted already linked. *Rate* is counted at the fake "
        "server, from the first to the last accepted `sendMessage`; *open* is the time to "
        "create the campaign, deliveries and outbox rows (before the first send).\n"
    )
    w(
        "| run | achieved rate | ratio to limit (target ≥ 0.95) | 429s | duplicates | "
        "losses | busiest 1 s | open | total | peak RSS | load |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, runs in fan:

        def f(key: str, runs: list[dict[str, Any]] = runs) -> dict[str, float]:
            return median_spread([float(r[key]) for r in runs])

        w(
            f"| {label} | {fmt(f('rate'), '/s', 1)} | {fmt(f('ratio'))} | "
            f"{sum(r['throttled_fake'] for r in runs)} | {sum(r['duplicates'] for r in runs)} | "
            f"{sum(r['lost'] for r in runs)} | {max(r['max_1s_window'] for r in runs)} | "
            f"{fmt(f('open_seconds'), ' s', 1)} | {fmt(f('total_seconds'), ' s', 1)} | "
            f"{max(r['peak_rss_kib'] for r in runs) / 1024:.0f} MiB | {load_of(loads, label)} |"
        )
    w(
        "\n429s, duplicates and losses are totals over all runs of a row; *busiest 1 s* is the "
        "most sends the fake counted in any one-second window (the limit is what it allows)."
    )
    fp = fan_profile
    w(
        f"\nProfiled run (pyinstrument, N={FAN_PROFILE_N:,} at 300/s, SQLite, slower under the profiler: "
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
        "*Durable* is the product (`bot.app.build_services` and `Runtime`, as "
        "`tensionbot run` wires them: the sender check, update-id de-duplication, the "
        "conversation row and the reply's outbox row in the database; on Submit the report, "
        "its reference and routing). *In memory* is a baseline in `bench/conversation.py`: the "
        "same PTB Application and webhook endpoint, the same form logic and `bot.texts` "
        "messages, rendered and sent by the same `TelegramMessenger`, but state in a dict and "
        "replies sent straight from the handler — no database, outbox, dispatcher, rate "
        "limiter, de-duplication, audit or routing. *PicklePersistence peer* is what a Python "
        "developer would pick instead: the same questions, texts, endpoint and messenger, but "
        "as python-telegram-bot's own `ConversationHandler` (one state per question, "
        "`persistent=True`, the draft in `user_data`) with `PicklePersistence` and PTB's "
        "default flush (every `update_interval` = 60 s, and at a clean shutdown).\n"
    )
    w("| path | updates/s | p50 | p99 | reports stored | errors | peak RSS | load |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    base_runs = _row(conv, MEMORY_LABEL)
    for label, runs in conv:
        w(
            f"| {label} | {fmt(median_spread(vals(runs, 'updates_per_s')), '', 1)} | "
            f"{fmt(median_spread(vals(runs, 'p50_ms')), ' ms', 0)} | "
            f"{fmt(median_spread(vals(runs, 'p99_ms')), ' ms', 0)} | "
            f"{min(r['reports_stored'] for r in runs)} of {runs[0]['completed']} | "
            f"{sum(r['error_count'] + r['unanswered'] for r in runs)} | "
            f"{max(r['peak_rss_kib'] for r in runs) / 1024:.0f} MiB | {load_of(loads, label)} |"
        )
    if base_runs:
        base = vals(base_runs, "updates_per_s")
        base_p99 = vals(base_runs, "p99_ms")
        ratios = [
            f"{label}: {fmt_ratio(ratio(base, vals(runs, 'updates_per_s')))} in throughput, "
            f"{fmt_ratio(ratio(vals(runs, 'p99_ms'), base_p99))} in p99"
            for label, runs in conv
            if label != MEMORY_LABEL
        ]
        w(
            "\nAgainst the in-memory baseline (its throughput ÷ theirs; their p99 ÷ its p99; "
            "target for the product ≤ 2×): " + "; ".join(ratios) + "."
        )
    w("\n### kill -9 in the middle of the form\n")
    w(
        "The bot as a process of its own, taking updates by webhook (`bench/killtest.py`). "
        "Each reporter sends `/report` and answers the first four questions; once all those "
        "updates are answered and acknowledged (the platform has had a 2xx for every webhook "
        "post), the bot is killed with SIGKILL and started again from what it stored. A "
        "reporter's conversation is *lost* when the restored state is missing or behind the "
        "question its acknowledged updates had reached; *updates lost* are the acknowledged "
        "updates the restored state no longer reflects. The peer reports the states its "
        "`ConversationHandler` restored from the pickle file; the product (the real "
        "`tensionbot run`, webhook mode, SQLite) the `conversations` rows it resumes from. "
        "*Killed after* is the time from the bot's start to the kill.\n"
    )
    w("| bot | conversations lost | updates lost | killed after | errors | load |")
    w("|---|---:|---:|---:|---:|---:|")
    for label, k in kills:
        w(
            f"| {label} | **{k['lost_states']} of {k['reporters']}** | {k['lost_updates']} of "
            f"{k['acknowledged_updates']} | {k['seconds_to_kill']:.1f} s | {k['error_count']} | "
            f"{load_of(loads, f'kill {label}')} |"
        )
    w(
        "\nThe peer keeps its conversations in memory and writes the pickle file every 60 s: "
        "whatever changed since the last flush is lost on kill -9 (here the bot was killed "
        "before its first flush). The product commits each update's state before it "
        "acknowledges the update.\n"
    )
    w(
        f"\nProfiled run (pyinstrument, {CONV_PROFILE_USERS} reporters, durable, SQLite: "
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
        "pockets of concern, hate crime, return rates, actions; one audit row). *Quarter* and "
        "*year* are the same build for `2026-Q2` and `2026` (each against the previous period "
        "and the same period a year before, with its trend). *Month, Python loop* is the same "
        "build, like for like, with its report counts made by a Python loop over the report "
        "rows of the 15 months a month's summary reads (fetched once per build; "
        "`bench/summaries.py`, `LoopFigures`) instead of the count tables: everything else "
        "(the pockets' tests, hate crime, returns, actions, the PACT insight, the audit row) is "
        "the same code on both sides, so *speed-up* is that of the whole summary; the two "
        "summaries are checked equal (*agree*). *Figure reads* times only the part that "
        "differs (the report counts and the police rows), SQL against the loop. The two are "
        "timed in turns; *CPU* is this process's CPU time per build, SQL against the loop "
        "(on SQLite the database works in the process too, so this is the cost without the "
        "waits for a turn on a shared machine's cores; on PostgreSQL the server's share is "
        "not in it).\n"
    )
    w(
        "| data | generate | month (target < 0.5 s at 1M) | month, Python loop | SQL "
        "speed-up, whole build (target ≥ 20×) | figure reads, SQL vs loop | quarter (target "
        "< 0.5 s at 1M) | year (target < 0.5 s at 1M) | CPU per month build, SQL vs loop | "
        "agree | load |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|")
    for label, r in summ:
        w(
            f"| {label} ({r['month_rows']:,} in the month) | {r['generate_seconds']:.1f} s | "
            f"{ms(r['month_sql'])} | {ms(r['month_py'])} | {r['speedup_month']:.1f}× | "
            f"{ms(r['reads_sql'])} vs {ms(r['reads_py'])}: {r['speedup_reads']:.1f}× | "
            f"{ms(r['quarter_sql'])} | {ms(r['year_sql'])} | "
            f"{ms(r['cpu_sql'])} vs {ms(r['cpu_py'])}: {r['speedup_cpu']:.1f}× | "
            f"{'yes' if r['agree'] else 'NO'} | "
            f"{load_of(loads, label)} |"
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
    setup = foot.get("setup", "polling the fake server, SQLite, scheduler on, no Slack")
    samples = [v / 1024 for v in foot["samples"]]
    w(
        f"- Idle `tensionbot run` (`bench/footprint.py`: the real command, {setup}): "
        f"**{foot['idle_rss_kib'] / 1024:.0f} MiB** RSS (median of {len(samples)} samples, one "
        f"a second: {min(samples):.0f}–{max(samples):.0f} MiB; peak "
        f"{foot['hwm_kib'] / 1024:.0f} MiB; load {load_of(loads, 'footprint')})."
    )
    w(
        "- Peak RSS of the bot process during fan-out (sampled every 50 ms from the opening "
        "of the return to the last send; the process is the bench worker running the same "
        "`Runtime`): " + "; ".join(f"{label}: **{mib:.0f} MiB**" for label, mib in fan_peaks) + "."
    )
    w("")
    for kept in ("PEOPLE_IMPORT.md", "ANALYSIS.md"):  # kept by hand, not generated
        if (HERE / kept).exists():
            w((HERE / kept).read_text(encoding="utf-8").rstrip("\n") + "\n")
    RESULTS.write_text("\n".join(out) + "\n", encoding="utf-8")


def smoke() -> int:
    """``python -m bench smoke`` (``make bench-smoke``): the durable conversation (SQLite) against
    the in-memory baseline and the idle memory of the service, failing (1) past the targets
    + 25%: a throughput ratio above 2.5× or idle RSS above 125 MiB. About two minutes."""
    started = time.monotonic()
    load = os.getloadavg()[0]
    foot = worker("footprint", {})
    memory: Runs = []
    durable: Runs = []
    for _ in range(2):  # interleaved, so that a burst of other load touches both
        memory.append(worker("memory", {"users": SMOKE_USERS}))
        durable.append(worker("conversation", {"users": SMOKE_USERS, "backend": "sqlite"}))
    thr = ratio(vals(memory, "updates_per_s"), vals(durable, "updates_per_s"))
    p99 = ratio(vals(durable, "p99_ms"), vals(memory, "p99_ms"))
    rss = foot["idle_rss_kib"] / 1024
    errors = sum(r["error_count"] + r["unanswered"] for r in memory + durable)
    elapsed = time.monotonic() - started
    print(
        f"bench-smoke: conversation, {SMOKE_USERS} reporters at once: durable SQLite "
        f"{spread(vals(durable, 'updates_per_s'))} updates/s vs in memory "
        f"{spread(vals(memory, 'updates_per_s'))}: {fmt_ratio(thr, 2)} slower in throughput "
        f"(limit {SMOKE_MAX_RATIO}×), {fmt_ratio(p99, 2)} in p99 (not checked); errors {errors}"
    )
    print(
        f"bench-smoke: idle RSS of `tensionbot run`: {rss:.0f} MiB (limit {SMOKE_MAX_RSS_MIB:.0f})"
    )
    print(
        f"bench-smoke: took {elapsed:.0f} s; 1-minute load average {load:.2f} → "
        f"{os.getloadavg()[0]:.2f}"
    )
    failed = []
    if thr[0] > SMOKE_MAX_RATIO:
        failed.append(f"conversation ratio {thr[0]:.2f}× > {SMOKE_MAX_RATIO}×")
    if rss > SMOKE_MAX_RSS_MIB:
        failed.append(f"idle RSS {rss:.0f} MiB > {SMOKE_MAX_RSS_MIB:.0f} MiB")
    if errors:
        failed.append(f"{errors} reporters failed or updates unanswered")
    if failed:
        print("bench-smoke: FAILED: " + "; ".join(failed))
        return 1
    print("bench-smoke: ok")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["import"]:  # one scenario on its own: bench/people_import.py
        from bench import people_import

        people_import.main(sys.argv[2:])
    elif sys.argv[1:2] == ["smoke"]:
        # The workers' stderr goes beside the other temporary files, not into bench/profiles.
        PROFILES = Path(os.environ.get("TMPDIR", "/tmp")) / "tensionbot-bench-smoke-profiles"
        log(f"workers' output: {PROFILES / 'worker.log'}")
        sys.exit(smoke())
    else:
        main()
