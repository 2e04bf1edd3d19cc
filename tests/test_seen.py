"""The requests-seen store (bot/delivery/seen.py) on the test database: a key is new once, for
every process sharing the database, until it expires and is purged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.delivery.seen import (
    CLOCK_SKEW,
    PURGE_EVERY,
    REPLAY_WINDOW,
    SeenRequests,
    request_key,
    signed_lifetime,
)
from tests.helpers import services_for


class _Time:
    """Wall-clock and monotonic time, moved by the test."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
        self.tick = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.tick += seconds


async def test_a_key_is_new_once_across_processes_and_again_after_it_expires(
    db_url: str, clock: FakeClock
) -> None:
    t = _Time()
    async with services_for(db_url, clock) as one, services_for(db_url, clock) as two:
        first = SeenRequests(one.db.uow, now=lambda: t.wall, monotonic=lambda: t.tick)
        second = SeenRequests(two.db.uow, now=lambda: t.wall, monotonic=lambda: t.tick)
        key = request_key("slack-request", "v0=abc")
        assert key != request_key("slack-request", "v0=abd") and len(key) <= 120
        assert await first.first_time(key)
        assert not await second.first_time(key)  # another process: seen
        assert not await first.first_time(key)
        # Both processes at once with a new key: exactly one of them gets it.
        other = request_key("slack-request", "v0=xyz")
        results = await asyncio.gather(first.first_time(other), second.first_time(other))
        assert sorted(results) == [False, True]
        # Within the window it stays; after it (and a purge) it is forgotten.
        t.advance(REPLAY_WINDOW.total_seconds() - 1)
        assert not await second.first_time(key)
        t.advance(max(2.0, PURGE_EVERY))
        assert await second.first_time(request_key("slack-request", "v0=later"))  # purges
        async with one.db.uow() as uow:
            assert await uow.seen.purge(t.wall) == 0  # nothing expired is left
        assert await first.first_time(key)


def test_a_signed_request_is_remembered_until_its_stamp_expires_whatever_the_stamp() -> None:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    at = int(now.timestamp())
    window = REPLAY_WINDOW + CLOCK_SKEW
    assert signed_lifetime(str(at), now) == window
    assert signed_lifetime(str(at + 240), now) == window + timedelta(seconds=240)  # Slack ahead
    assert signed_lifetime(str(at - 240), now) == window - timedelta(seconds=240)  # behind
    # Outside the window (refused by the signature check anyway) or unreadable: bounded.
    assert signed_lifetime(str(at + 10**9), now) == window + REPLAY_WINDOW
    assert signed_lifetime(str(at - 10**9), now) == window - REPLAY_WINDOW
    for odd in ("", "²", "-5", "1e9", "9" * 40):
        assert window - REPLAY_WINDOW <= signed_lifetime(odd, now) <= window + REPLAY_WINDOW
