"""Keep a channel's sends within the platform's limits as the platform counts them: on arrival.

A token bucket spaces the *departures* of sends. The platform (Telegram: ~30 messages a second,
one a second per chat; Slack: about one a second per channel) counts *arrivals*, and between the
two lies the network and, on a busy machine, the event loop: a send that left on time but
arrived late lands in the same second as the next one, and the platform answers 429. CI found
exactly that under load.

:class:`ArrivalGuard` closes the gap without any timing assumption. A send is admitted only if
the sends that could still be counted in the same window are fewer than the limit: those in
flight, and those whose answer came back less than one window ago. A send whose answer has come
back has certainly arrived earlier, so a send admitted ``window`` seconds after the last answer
arrives more than ``window`` seconds after it. Whatever the delays, at most ``limit`` sends
arrive in any window: globally, and to any one chat.

Its price is the round trip: each send counts from its departure until a window after its
answer, so a channel reaches at most ``limit / (window + round trip)``. Behind the pacer
(:class:`~bot.delivery.limits.Pacer`), with a window of one second and a round trip of a few
milliseconds, that is under one per cent of the configured rate (``tests/test_pacing.py``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Window:
    """At most ``limit`` sends in any ``seconds``."""

    limit: int
    seconds: float

    @classmethod
    def for_rate(cls, rate: float, burst: int = 1) -> Window:
        """The window a rate (per second) and a burst stand for: ``burst`` sends in
        ``burst / rate`` seconds, or, for a rate of one a second or more with no burst, the
        sends the pacer lets into a second, counted by the second the platform counts in
        (28.0 a second: 28 in any second; 29.1: 30, the most the pacer's own spacing puts in one).

        A window of one second matters: ``floor(rate)`` in ``floor(rate) / rate`` seconds, the
        window this was before, is under a second, and two full windows back to back put
        twice its limit into one second of the platform's count."""
        if burst <= 1 and rate >= 1:
            return cls(math.ceil(rate), 1.0)
        limit = max(1, burst)
        return cls(limit, limit / rate)


@dataclass
class _Count:
    in_flight: int = 0
    answered: deque[float] = field(default_factory=deque)  # when answers came back

    def expire(self, now: float, seconds: float) -> None:
        while self.answered and self.answered[0] <= now - seconds:
            self.answered.popleft()

    def delay(self, window: Window, now: float) -> float | None:
        """None: one more may go now. Otherwise seconds until an answer leaves the window
        (``math.inf``: only an answer still to come can make room)."""
        self.expire(now, window.seconds)
        if self.in_flight + len(self.answered) < window.limit:
            return None
        if len(self.answered) > 0 and self.in_flight < window.limit:
            return self.answered[0] + window.seconds - now
        return math.inf


class ArrivalGuard:
    """Admits a channel's sends so that at most ``overall.limit`` arrive at the platform in any
    ``overall.seconds``, and at most ``per_chat.limit`` to any one recipient in any
    ``per_chat.seconds``. Call :meth:`admit` right before a send and :meth:`answered` when its
    answer (or its failure) comes back."""

    def __init__(
        self,
        overall: Window,
        per_chat: Window,
        *,
        now: Callable[[], float] = time.monotonic,
        max_chats: int = 50_000,
    ) -> None:
        self.overall, self.per_chat = overall, per_chat
        self._now = now
        self._all = _Count()
        self._chats: OrderedDict[str, _Count] = OrderedDict()
        self._max_chats = max_chats
        self._changed = asyncio.Condition()

    def delay(self, recipient: str) -> float | None:
        """None when a send to ``recipient`` may go now; else how long until it might."""
        now = self._now()
        waits = [self._all.delay(self.overall, now)]
        chat = self._chats.get(recipient)
        if chat is not None:
            waits.append(chat.delay(self.per_chat, now))
        pending = [w for w in waits if w is not None]
        return max(pending) if pending else None

    async def admit(self, recipient: str) -> None:
        """Wait until a send to ``recipient`` may go, and count it as in flight."""
        async with self._changed:
            while (wait := self.delay(recipient)) is not None:
                timeout = None if math.isinf(wait) else max(wait, 0.001)
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    pass
            self._all.in_flight += 1
            self._chat(recipient).in_flight += 1

    async def answered(self, recipient: str) -> None:
        """The send admitted for ``recipient`` has its answer (or failed): it stays counted
        for one more window, then makes room."""
        now = self._now()
        async with self._changed:
            self._all.in_flight -= 1
            self._all.answered.append(now)
            chat = self._chat(recipient)
            chat.in_flight -= 1
            chat.answered.append(now)
            self._changed.notify_all()

    def _chat(self, recipient: str) -> _Count:
        chat = self._chats.get(recipient)
        if chat is None:
            chat = self._chats[recipient] = _Count()
            if len(self._chats) > self._max_chats:  # bound memory on huge fan-outs
                self._forget_one()
        else:
            self._chats.move_to_end(recipient)
        return chat

    def _forget_one(self) -> None:
        """Drop the oldest chat with nothing in flight (its answers are long out of the window
        on a fan-out this size)."""
        for key, chat in self._chats.items():
            if chat.in_flight == 0:
                del self._chats[key]
                return

    @property
    def in_flight(self) -> int:
        """Sends admitted and not yet answered."""
        return self._all.in_flight

    def counts(self) -> Counter[str]:
        """In-flight sends per recipient (for tests and metrics)."""
        return Counter({k: c.in_flight for k, c in self._chats.items() if c.in_flight})
