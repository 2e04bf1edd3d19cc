"""Helpers for the fault suite (tests/test_faults.py): seeds, figures, and the checks made at the
fake servers from their recorded calls."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.fake_slack import FakeSlack
from sim.fake_telegram import SENDING_METHODS, FakeTelegram

GRACE = 0.25
"""A request that reaches the fake within this many seconds after a 429 was already on its way
when the 429 was answered (the client cannot have seen it yet); it is counted as concurrent,
not as a violation. Every later request inside retry_after is a violation."""


@dataclass
class Figures:
    """What one trial checked."""

    test: str
    seed: int
    trials: int = 1
    messages_checked: int = 0
    duplicates: int = 0
    losses: int = 0
    throttled_429: int = 0
    violations_429: int = 0
    concurrent_429: int = 0
    uncertain: int = 0
    blocked: int = 0
    kills: int = 0
    updates_lost: int = 0  # Telegram updates pushed whose effect was never recorded
    notes: dict[str, Any] = field(default_factory=dict)


class FigureBook:
    """All trials of a run, written to a JSON file under the pytest tmp dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Figures] = []

    def add(self, row: Figures) -> None:
        self.rows.append(row)
        self.path.write_text(json.dumps([asdict(r) for r in self.rows], indent=1))

    def summary(self) -> list[str]:
        by: dict[str, dict[str, int]] = {}
        for r in self.rows:
            t = by.setdefault(r.test, {})
            for key in (
                "trials",
                "messages_checked",
                "duplicates",
                "losses",
                "throttled_429",
                "violations_429",
                "concurrent_429",
                "uncertain",
                "blocked",
                "kills",
                "updates_lost",
            ):
                t[key] = t.get(key, 0) + getattr(r, key)
        lines = [f"fault suite figures ({self.path}):"]
        for test, t in by.items():
            lines.append(f"  {test}: " + ", ".join(f"{k}={v}" for k, v in t.items()))
        total = {
            k: sum(t[k] for t in by.values())
            for k in ("trials", "messages_checked", "duplicates", "losses", "updates_lost")
        }
        lines.append("  TOTAL: " + ", ".join(f"{k}={v}" for k, v in total.items()))
        return lines


def telegram_429s(fake: FakeTelegram) -> tuple[int, int, int]:
    """(429s, violations, concurrent): sending calls that reached the fake inside retry_after of
    a 429 answer to a sending call (all of Telegram's sending shares one limit)."""
    sends = sorted((c for c in fake.calls if c.method in SENDING_METHODS), key=lambda c: c.at)
    throttles = [c for c in sends if c.status == 429]
    violations = concurrent = 0
    for t in throttles:
        retry = _telegram_retry_after(t)
        for c in sends:
            if t.at < c.at < t.at + retry:
                if c.at <= t.at + GRACE:
                    concurrent += 1
                else:
                    violations += 1
    return len(throttles), violations, concurrent


def _telegram_retry_after(call: Any) -> float:
    return float(getattr(call, "retry_after", None) or 1)


OFFENDERS: list[tuple[str, float, int]] = []


def slack_429s(fake: FakeSlack, methods: frozenset[str]) -> tuple[int, int, int]:
    """(429s, violations, concurrent) for Slack's posting methods, measured the same way."""
    sends = sorted((c for c in fake.calls if c.method in methods), key=lambda c: c.at)
    throttles = [c for c in sends if c.status == 429]
    violations = concurrent = 0
    for t in throttles:
        retry = float(getattr(t, "retry_after", None) or 1)
        for c in sends:
            # Slack limits each method separately: a 429 holds back that method only.
            if c.method == t.method and t.at < c.at < t.at + retry:
                if c.at > t.at + GRACE:
                    OFFENDERS.append((t.method, round(c.at - t.at, 3), c.status))
                if c.at <= t.at + GRACE:
                    concurrent += 1
                else:
                    violations += 1
    return len(throttles), violations, concurrent


async def updates_lost(fake: FakeTelegram, since: int, db: Any) -> list[int]:
    """Update ids pushed at the fake (from the ``since``-th push on) that the bot never
    recorded as processed (``inbound_updates``): lost, whatever the delivery mode."""
    from sqlalchemy import select

    from storage.tables import inbound_updates

    pushed = set(fake.updates_pushed[since:])
    async with db.engine.connect() as conn:
        done = set(
            (
                await conn.execute(
                    select(inbound_updates.c.update_id).where(
                        inbound_updates.c.platform == "telegram"
                    )
                )
            ).scalars()
        )
    return sorted(pushed - done)


def form_sends(fake: FakeTelegram, marker: str) -> dict[int, int]:
    """Successful sendMessage calls whose text contains ``marker``, per chat."""
    counts: dict[int, int] = {}
    for c in fake.calls:
        if c.method == "sendMessage" and c.status == 200 and c.chat_id is not None:
            if marker in str(c.params.get("text", "")):
                counts[c.chat_id] = counts.get(c.chat_id, 0) + 1
    return counts
