"""Requests seen before: replay protection and repeated submissions, shared by every process.

A platform request that must take effect once (a signed Slack request; a submitted modal) is
recorded under a key in the database, in its own transaction or in the same transaction as its
effects, until it expires. Every process sharing the database sees the same record, and so does
a process started after a restart, so a replay is refused wherever it lands. Keys are hashed
here: nothing a request carries is stored as it came.

Lifetimes are real time (a Slack signature's timestamp is wall-clock time), not the business
clock. Expired keys are purged now and then by whichever process records one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.ports import UnitOfWork, UnitOfWorkFactory

REPLAY_WINDOW = timedelta(minutes=5)  # Slack refuses a timestamp older (or newer) than this
CLOCK_SKEW = timedelta(minutes=1)  # between the clocks of the processes sharing the database
PURGE_EVERY = 60.0  # seconds between purges of expired keys, per process


def request_key(kind: str, *parts: str) -> str:
    """A fixed-size key for ``parts`` (e.g. a signature; a view id and hash) of ``kind``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"{kind}:{digest}"


def signed_lifetime(stamp: str, now: datetime) -> timedelta:
    """How long to remember a request signed at ``stamp`` (Unix seconds, as sent): for as long
    as its signature is accepted. Slack's check is ``abs(now - stamp) <= 5 min``, so a stamp
    ahead of our clock stays valid until ``stamp + 5 min``, later than ``now + 5 min``; the key
    lives until then, plus :data:`CLOCK_SKEW`. A stamp unreadable or outside the window (the
    signature check refuses it anyway) is taken as the nearest edge of the window."""
    at = now
    if stamp.isascii() and stamp.isdigit() and len(stamp) < 16:
        at = datetime.fromtimestamp(int(stamp), UTC)
    at = min(max(at, now - REPLAY_WINDOW), now + REPLAY_WINDOW)
    return at + REPLAY_WINDOW + CLOCK_SKEW - now


def wall_clock() -> datetime:
    """Now, in UTC (real time)."""
    return datetime.now(UTC)


class SeenRequests:
    """Records request keys; answers whether one is new."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        now: Callable[[], datetime] = wall_clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uow_factory = uow_factory
        self.now = now
        self.monotonic = monotonic
        self._purged_at: float | None = None

    async def first_time(self, key: str, lifetime: timedelta = REPLAY_WINDOW) -> bool:
        """Record ``key`` for ``lifetime`` in a transaction of its own; True if it is new,
        False if any process recorded it before (a replay)."""
        async with self.uow_factory() as uow:
            new = await self.record(uow, key, lifetime)
            await uow.commit()
        return new

    async def record(self, uow: UnitOfWork, key: str, lifetime: timedelta = REPLAY_WINDOW) -> bool:
        """Record ``key`` in the caller's unit of work (with the effects it guards, so a step
        that fails records nothing); True if it is new."""
        now = self.now()
        tick = self.monotonic()
        if self._purged_at is None or tick - self._purged_at >= PURGE_EVERY:
            self._purged_at = tick
            await uow.seen.purge(now)
        return await uow.seen.add(key, now + lifetime)
