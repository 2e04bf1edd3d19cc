"""Sending limits: the per-channel pacing and buckets, and the shared 429 pause.

A channel has a global pace (Telegram: ~30 messages/s) and a bucket per chat (~1 message/s).
On SQLite (one process) they are in memory: :class:`Pacer` for the channel (evenly spaced, late
sends made up, never more than ``floor(rate) + 1`` leaving in any second) and an aiolimiter
bucket per chat; on PostgreSQL they are :class:`~bot.ports.RateBuckets` kept in the database
and shared by every process, so N processes together keep one rate, with no shares to hand out
or take back when a process joins or dies (the slots of every send waiting are reserved in one
statement per batch). Whatever the pacing, :class:`~bot.delivery.arrival.ArrivalGuard` bounds
what can arrive at the platform in any window.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter

from bot.delivery.arrival import ArrivalGuard, Window
from bot.ports import RateBuckets


@dataclass(frozen=True)
class RateLimits:
    """Per-channel sending limits."""

    global_rate: float
    per_chat_rate: float
    max_in_flight: int = 8
    per_chat_burst: int = 1


CATCH_UP = 0.1
"""How much late sending the channel-wide pacer makes up (seconds of its rate): an event loop
that wakes late for a slot lets the next sends go back to back until they are on time again."""


class Pacer:
    """The channel-wide bucket: ``rate`` sends a second, evenly spaced, never more than
    ``floor(rate) + 1`` departures in any one-second window (Telegram counts per second).

    A generic cell rate algorithm with a small burst allowance (``CATCH_UP`` seconds of sends):
    a send that left late (the event loop's timer rounding, a busy loop) is made up by the next
    ones instead of being lost for good, which at 100 messages a second and more cost 5-40% of
    the rate with a bucket of capacity 1. The burst is bounded by the one-second window of
    departures; what reaches the platform is bounded again, by arrival, by
    :class:`~bot.delivery.arrival.ArrivalGuard`. Sends are let go in the order they asked."""

    def __init__(self, rate: float, *, catch_up: float = CATCH_UP) -> None:
        self.rate = rate
        self.interval = 1.0 / rate
        self.burst = max(1, math.ceil(rate * catch_up))
        self.limit = math.floor(rate) + 1
        self._tat = -math.inf  # the theoretical departure time of the next send
        self._left: deque[float] = deque()  # departures in the last second
        self._turn = asyncio.Lock()

    def delay(self, now: float) -> float:
        """Seconds until the next send may leave (0: now)."""
        while self._left and self._left[0] <= now - 1.0:
            self._left.popleft()
        wait = self._tat - (self.burst - 1) * self.interval - now
        if len(self._left) >= self.limit:
            wait = max(wait, self._left[0] + 1.0 - now)
        return max(0.0, wait)

    def take(self, now: float) -> None:
        """Count a send leaving at ``now`` (call only when :meth:`delay` said 0)."""
        if self._tat < now:
            # Idle (or later than the allowance covers): the next send is one interval away.
            # The allowance is for making up late sends, not for a burst after a pause.
            self._tat = now + self.burst * self.interval
        else:
            self._tat += self.interval
        self._left.append(now)

    async def acquire(self) -> None:
        """Wait for this send's turn and count it."""
        loop = asyncio.get_running_loop()
        async with self._turn:
            while (wait := self.delay(loop.time())) > 0:
                await asyncio.sleep(wait)
            self.take(loop.time())


def global_bucket(rate: float) -> Pacer:
    """The channel-wide bucket (:class:`Pacer`)."""
    return Pacer(rate)


CHANNEL_HORIZON = 0.25
"""How far ahead a process may reserve a send slot in the shared channel bucket (a process that
dies loses what it had reserved: at most this long of the channel's sending)."""
CHAT_HORIZON = 10.0
"""The same for one chat's bucket (one send per chat is in flight at a time anyway)."""
RESERVE_BATCH = 64
"""The most sends whose shared slots are reserved in one statement."""


def _fail(waiting: Sequence[asyncio.Future[Any]], exc: Exception) -> None:
    for asked in waiting:
        if not asked.done():
            asked.set_exception(exc)


class ChannelLimiter:
    """Global + per-recipient token buckets for one channel, and a shared 429 pause.

    With ``shared`` buckets (PostgreSQL) every process takes from the same buckets, so all of
    them together keep the channel's rate and each chat's; without (SQLite, one process) the
    buckets are in this process's memory."""

    def __init__(self, channel: str, limits: RateLimits, shared: RateBuckets | None = None) -> None:
        self.channel = channel
        self.limits = limits
        self.shared = shared
        self.global_bucket = global_bucket(limits.global_rate)
        self._per_chat: OrderedDict[str, AsyncLimiter] = OrderedDict()
        self.paused_until = 0.0
        # The buckets space departures; the platform counts arrivals. The guard keeps what can
        # still arrive in any window within the limits, whatever the network or a busy event
        # loop does to the spacing (bot/delivery/arrival.py).
        self.arrivals = ArrivalGuard(
            Window.for_rate(limits.global_rate),
            Window.for_rate(limits.per_chat_rate, limits.per_chat_burst),
        )
        # Sends waiting for slots in the shared buckets: one task reserves them a batch at a
        # time, in the order they asked (instead of each send polling the database).
        self._channel_asks: list[asyncio.Future[float]] = []
        self._channel_reserver: asyncio.Task[None] | None = None
        self._chat_asks: list[tuple[str, asyncio.Future[float | None]]] = []
        self._chat_reserver: asyncio.Task[None] | None = None

    def for_chat(self, recipient: str) -> AsyncLimiter:
        bucket = self._per_chat.get(recipient)
        if bucket is None:
            burst = self.limits.per_chat_burst
            bucket = AsyncLimiter(burst, burst / self.limits.per_chat_rate)
            self._per_chat[recipient] = bucket
            if len(self._per_chat) > 50_000:  # bound memory on huge fan-outs
                self._per_chat.popitem(last=False)
        else:
            self._per_chat.move_to_end(recipient)
        return bucket

    async def wait(self, recipient: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while (delay := self.paused_until - loop.time()) > 0:
                await asyncio.sleep(delay)
            if self.shared is None:
                await self.for_chat(recipient).acquire()
                await self.global_bucket.acquire()
            else:
                await self._wait_shared(recipient)
            # A 429 may have paused the channel while this send waited for its slot: a send
            # already past the limiter must not go out during the pause.
            if loop.time() >= self.paused_until:
                return

    async def _wait_shared(self, recipient: str) -> None:
        """The channel's slot first, then the chat's, right before the send: the outbox claims
        at most one row per chat at a time (in all processes), so the chat's bucket is used by
        one send at a time and its spacing is the spacing of the sends (taken when the send is
        about to leave, not when it was planned: a late wake-up must not shorten it). Every
        send waiting at either step is served by one statement, not one each."""
        loop = asyncio.get_running_loop()
        channel: asyncio.Future[float] = loop.create_future()
        self._channel_asks.append(channel)
        if self._channel_reserver is None or self._channel_reserver.done():
            self._channel_reserver = asyncio.create_task(self._reserve_channel(), name="rates")
        delay = await channel
        if delay > 0:
            await asyncio.sleep(delay)
        # The chat id is personal data: the shared table holds a hash of it, never the id, so
        # nothing of it stays behind after an erasure (storage/privacy.py's purge).
        digest = hashlib.sha256(recipient.encode()).hexdigest()[:32]
        key = f"{self.channel}:{digest}"
        chat: asyncio.Future[float | None] = loop.create_future()
        self._chat_asks.append((key, chat))
        if self._chat_reserver is None or self._chat_reserver.done():
            self._chat_reserver = asyncio.create_task(self._reserve_chats(), name="chat-rates")
        chat_delay = await chat
        if chat_delay is None:  # the chat's next slot is far ahead: wait for it the slow way
            lim = self.limits
            chat_delay = await self._reserve(
                key, 1.0 / lim.per_chat_rate, lim.per_chat_burst, CHAT_HORIZON
            )
        if chat_delay > 0:
            await asyncio.sleep(chat_delay)

    async def _reserve_channel(self) -> None:
        """Slots in the channel's bucket for the sends waiting, a batch a statement, in the
        order they asked."""
        assert self.shared is not None
        interval = 1.0 / self.limits.global_rate
        while self._channel_asks:
            batch = self._channel_asks[:RESERVE_BATCH]
            del self._channel_asks[:RESERVE_BATCH]
            try:
                while True:
                    slots, wait = await self.shared.reserve_slots(
                        self.channel, interval, 1.0, CHANNEL_HORIZON, len(batch)
                    )
                    if slots:
                        break
                    await asyncio.sleep(wait)
            except Exception as exc:  # the shared buckets' database: these sends wait
                _fail(batch, exc)
                continue
            for asked, slot in zip(batch, slots, strict=True):
                if not asked.done():
                    asked.set_result(slot)

    async def _reserve_chats(self) -> None:
        """A slot in each chat's bucket for the sends about to leave, a batch a statement."""
        assert self.shared is not None
        lim = self.limits
        while self._chat_asks:
            batch: list[tuple[str, asyncio.Future[float | None]]] = []
            later: list[tuple[str, asyncio.Future[float | None]]] = []
            for item in self._chat_asks:
                # Distinct chats in one statement; a second send to a chat waits for the next.
                if len(batch) >= RESERVE_BATCH or any(item[0] == k for k, _ in batch):
                    later.append(item)
                else:
                    batch.append(item)
            self._chat_asks = later
            try:
                slots = await self.shared.reserve_each(
                    [k for k, _ in batch],
                    1.0 / lim.per_chat_rate,
                    lim.per_chat_burst,
                    CHAT_HORIZON,
                    [0.0] * len(batch),
                )
            except Exception as exc:  # the shared buckets' database: these sends wait
                _fail([f for _, f in batch], exc)
                continue
            for (_, asked), slot in zip(batch, slots, strict=True):
                if not asked.done():
                    asked.set_result(slot)

    async def _reserve(self, key: str, interval: float, burst: float, horizon: float) -> float:
        """Seconds until the slot reserved in the shared bucket ``key``."""
        assert self.shared is not None
        while True:
            reserved, seconds = await self.shared.reserve(key, interval, burst, horizon)
            if reserved:
                return seconds
            await asyncio.sleep(seconds)

    def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self.paused_until = max(self.paused_until, loop.time() + seconds)
