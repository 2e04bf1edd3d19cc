"""Time as a port: the system clock in production, a fake clock in tests and the demo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the time (always timezone-aware UTC)."""

    def now(self) -> datetime:
        """The current time in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to (tests, the demo, benchmarks)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to a time (never backwards)."""
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("FakeClock cannot go backwards")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        """Move forward."""
        self.set(self._now + delta)
