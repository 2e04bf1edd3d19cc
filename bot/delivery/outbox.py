"""The outbox dispatcher: the only code that sends messages.

Rows are claimed (``pending`` -> ``sending``, with a lease), sent through the platform's
:class:`~bot.ports.Messenger` within the platform's rate limits, and recorded (``sent``,
``failed``, or back to ``pending`` with a delay). Limits are token buckets: a global one
(Telegram: ~30 messages/s) and one per chat (~1 message/s). On SQLite (one process) they are
aiolimiter buckets in memory; on PostgreSQL they are :class:`~bot.ports.RateBuckets` kept in
the database and shared by every process, so N processes together keep one rate, with no
shares to hand out or take back when a process joins or dies. A 429 pauses this process's
sending for ``retry_after`` and the message is retried after it.

If the process dies mid-send, the row stays ``sending`` until its lease expires. Recovery then
decides per purpose: conversational replies are re-sent (a repeated question is harmless, a
missing one leaves someone stuck), while forms and reminders become ``uncertain`` and are *not*
re-sent at once, so nobody gets the form twice; ``outbox.uncertain_followup_hours`` later the
campaign tick sends an uncertain form once more, worded so that a duplicate is harmless
(``CampaignService``), unless the person has answered. A result that cannot be recorded because
the database refuses for a while (by exception type: :class:`~bot.ports.TransientStoreError`)
is retried until it is recorded or the dispatcher stops.

A reporter's news about their reports (purpose ``news``) waits ``news_hold`` (business time)
after it is queued for more news to the same person; when it is claimed, every other piece of
news waiting for that person is claimed with it, in the same transaction, and the pieces go out
as one message. Each row keeps its own idempotency key and is recorded with the one send's
result, so a piece is sent once whichever row led; after a crash they are re-sent together.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiolimiter import AsyncLimiter

from bot.clock import Clock, SystemClock
from bot.common import audit
from bot.domain import NEWS, DeliveryStatus, OutboxMessage, OutboxStatus
from bot.messages import OutgoingMessage, combined
from bot.ports import (
    KeyedMessenger,
    Messenger,
    RateBuckets,
    SendResult,
    TransientStoreError,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

AT_LEAST_ONCE = frozenset({"reply", NEWS})
ResultHook = Callable[[UnitOfWork, OutboxMessage, SendResult, datetime], Awaitable[None]]
"""Called in the same transaction as every result of a send (the row's status says whether it
was sent, failed for good, or will be retried)."""
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class RateLimits:
    """Per-channel sending limits."""

    global_rate: float
    per_chat_rate: float
    max_in_flight: int = 8
    per_chat_burst: int = 1


@dataclass
class DispatchStats:
    """Counters for the demo, benchmarks and metrics."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    throttled: int = 0  # 429s received
    recovered_uncertain: int = 0
    recovered_resent: int = 0


def transient(exc: BaseException) -> bool:
    """Whether a database error may pass if the same work is tried again: storage raises
    :class:`TransientStoreError` for those (classified by type); a lost socket or a timeout
    that reached the core as it is counts too."""
    return isinstance(exc, TransientStoreError | OSError | TimeoutError)


def first_done(tasks: set[asyncio.Task[None]]) -> asyncio.Future[Any]:
    """A future that completes when any of ``tasks`` does (at once if one already has).

    It watches a copy: asyncio.wait reads its argument only when the wrapping task first runs,
    and by then a send that finished in this turn of the loop may have left the live set empty
    ("Set of Tasks/Futures is empty", raised in a task nobody awaits)."""
    return asyncio.ensure_future(asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED))


def bucket_capacity(rate: float, most_headroom: float = 0.1) -> float:
    """The channel-wide bucket's capacity: 1 plus a little headroom.

    A leaky bucket of capacity C lets at most ``C + rate`` through in any second. Capacity 1
    spaces sends exactly, but then every late wake-up (the event loop's timer rounding, a busy
    loop) is lost for good: 3-5% of the rate at 30/s. A little headroom above 1 lets the next
    send make up for a late one, and while ``frac(rate) + headroom < 1`` the bound above is the
    same ``floor(rate) + 1``. (A bucket of capacity N would allow bursts of N; a grid of
    absolute send slots was tried too, and let 429s through at 30/s.)"""
    return 1.0 + max(0.0, min(most_headroom, 0.999 - rate % 1))


def global_bucket(rate: float) -> AsyncLimiter:
    """The channel-wide bucket: ``rate`` sends/s, evenly spaced, never more than
    ``floor(rate) + 1`` in any one-second window (Telegram counts per second)."""
    capacity = bucket_capacity(rate)
    return AsyncLimiter(capacity, capacity / rate)


CHANNEL_HORIZON = 0.25
"""How far ahead a process may reserve a send slot in the shared channel bucket (a process that
dies loses what it had reserved: at most this long of the channel's sending)."""
CHAT_HORIZON = 10.0
"""The same for one chat's bucket (one send per chat is in flight at a time anyway)."""


class _ChannelLimiter:
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
        # One of this process's sends at a time asks the shared channel bucket (the others
        # queue here, as they would at an in-memory bucket, instead of polling the database).
        self._turn = asyncio.Lock()

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
        one send at a time and its spacing is the spacing of the sends."""
        lim = self.limits
        async with self._turn:  # reserve in order; wait for the slot outside the turn
            delay = await self._reserve(self.channel, 1.0 / lim.global_rate, 1.0, CHANNEL_HORIZON)
        if delay > 0:
            await asyncio.sleep(delay)
        # The chat id is personal data: the shared table holds a hash of it, never the id, so
        # nothing of it stays behind after an erasure (storage/privacy.py's purge).
        digest = hashlib.sha256(recipient.encode()).hexdigest()[:32]
        key = f"{self.channel}:{digest}"
        delay = await self._reserve(key, 1.0 / lim.per_chat_rate, lim.per_chat_burst, CHAT_HORIZON)
        if delay > 0:
            await asyncio.sleep(delay)

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


class OutboxDispatcher:
    """Sends queued messages until stopped."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        messengers: Mapping[str, Messenger],
        limits: Mapping[str, RateLimits],
        *,
        clock: Clock | None = None,
        lease: timedelta = timedelta(seconds=30),
        poll_interval: float = 1.0,
        hooks: Sequence[ResultHook] = (),
        shared_rates: RateBuckets | None = None,
        news_hold: timedelta = timedelta(0),
        business_clock: Clock | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.shared_rates = shared_rates
        self.messengers = dict(messengers)
        # Rate limits and retry delays are about real time, whatever the business clock says.
        self.clock = clock or SystemClock()
        # News is held in business time: "within a minute" of the events it tells of.
        self.business_clock = business_clock or self.clock
        self.news_hold = news_hold
        self.lease = lease
        self.poll_interval = poll_interval
        self._limiters = {ch: _ChannelLimiter(ch, lim, shared_rates) for ch, lim in limits.items()}
        # In flight per channel: at most ``max_in_flight`` of a channel's sends are out at once
        # (so at most that many forms can be uncertain after a crash).
        self._caps = {ch: lim.max_in_flight for ch, lim in limits.items()}
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._busy: dict[str, set[asyncio.Task[None]]] = {ch: set() for ch in limits}
        self._sending: set[int] = set()  # rows this process is sending (alive, whatever the lease)
        self.stats = DispatchStats()
        self.hooks = list(hooks)
        # Results waiting to be recorded: one transaction records all that are waiting.
        self._results: list[tuple[int, SendResult, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # set by run()'s stop: recording stops retrying

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    # ----------------------------------------------------------------- recovery

    async def recover(self) -> int:
        """Settle rows left ``sending`` by a dead process (lease expired). Returns how many."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            # Rows this process is still sending are alive, however long they take (a slow send
            # under load); only a dead process's rows are settled.
            rows = [r for r in await uow.outbox.recover_in_flight(now) if r.id not in self._sending]
            for row in rows:
                if row.purpose in AT_LEAST_ONCE:
                    row.status = OutboxStatus.PENDING.value
                    row.claimed_until = None
                    row.next_attempt_at = None  # due now (news: with its companions again)
                    self.stats.recovered_resent += 1
                    continue
                row.status = OutboxStatus.UNCERTAIN.value
                row.last_error = "process stopped while sending; not re-sent (at most once)"
                self.stats.recovered_uncertain += 1
                if row.delivery_id is not None:
                    await uow.deliveries.set_status(
                        row.delivery_id,
                        DeliveryStatus.UNCERTAIN.value,
                        only_from=[DeliveryStatus.QUEUED.value],
                        detail="process stopped mid-send",
                    )
            if rows:
                await audit(uow, now, "dispatcher", "outbox.recover", "", count=len(rows))
            await uow.commit()
        if rows:
            log.warning("recovered %d message(s) left in flight by a stopped process", len(rows))
        return len(rows)

    # ----------------------------------------------------------------- the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set; in-flight sends are finished, not abandoned. A
        database that goes away (a restart, a failover) pauses sending, it does not end it."""
        loop = asyncio.get_running_loop()
        next_recovery = loop.time()
        backoff = 0.5
        stopping = asyncio.create_task(self._relay_stop(stop))
        try:
            while not stop.is_set():
                try:
                    if loop.time() >= next_recovery:
                        await self.recover()
                        if self.shared_rates is not None:
                            await self.shared_rates.forget_idle()
                        next_recovery = loop.time() + self.lease.total_seconds()
                    claimed = await self.dispatch_once()
                except Exception as exc:
                    # The type only: the message may quote SQL parameters (message text).
                    log.log(
                        logging.WARNING if transient(exc) else logging.ERROR,
                        "outbox: the database failed (%s); trying again in %.1fs",
                        type(exc).__name__,
                        backoff,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
                if claimed:
                    continue
                self._wake.clear()
                waiters: list[asyncio.Future[Any]] = [
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                if self._in_flight:
                    waiters.append(first_done(self._in_flight))
                _, pending = await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for w in pending:
                    w.cancel()
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            stopping.cancel()
            if self.shared_rates is not None:
                await self.shared_rates.close()

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()

    async def dispatch_once(self) -> int:
        """Claim as many due rows as each channel has free slots and start sending them."""
        free = {ch: cap - len(self._busy[ch]) for ch, cap in self._caps.items()}
        if not any(n > 0 for n in free.values()):
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            return 1
        now = self.clock.now()
        async with self.uow_factory() as uow:
            # Every known channel is named (a full one with 0), so that "*" means only channels
            # with no messenger: their rows are claimed too, and fail rather than stay queued.
            wanted = {ch: max(0, n) for ch, n in free.items()}
            wanted["*"] = max(0, 2 - len(self._busy.get("*", ())))
            hold = self.news_hold > timedelta(0)
            held_before = self.business_clock.now() - self.news_hold if hold else None
            rows = await uow.outbox.claim(now, wanted, now + self.lease, held_before)
            companions: dict[int, Sequence[OutboxMessage]] = {}
            for row in rows:
                if hold and row.purpose == NEWS and row.id is not None:
                    companions[row.id] = await uow.outbox.claim_companions(row, now + self.lease)
            await uow.commit()
        for row in rows:
            task = asyncio.create_task(self._send(row, companions.get(row.id or 0, ())))
            busy = self._busy.setdefault(row.channel if row.channel in self._caps else "*", set())
            for group in (self._in_flight, busy):
                group.add(task)
                task.add_done_callback(group.discard)
        return len(rows)

    async def drain(self, timeout: float = 30.0) -> None:
        """Send everything that is due now, then return (CLI, tests, the demo)."""

        async def loop() -> None:
            while True:
                if await self.dispatch_once():
                    continue
                if self._in_flight:
                    await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
                    continue
                # A send may have finished (and unblocked the next message to its chat) while
                # the claim above was running: only a claim made with nothing in flight is final.
                if not await self.dispatch_once():
                    return

        await asyncio.wait_for(loop(), timeout)

    # ----------------------------------------------------------------- one message

    async def _send(self, row: OutboxMessage, companions: Sequence[OutboxMessage] = ()) -> None:
        assert row.id is not None
        ids = [row.id, *(c.id for c in companions if c.id is not None)]
        self._sending.update(ids)
        try:
            await self._send_and_record(row, companions)
        except Exception as exc:
            # Never leave an exception in a task nobody awaits: the row stays 'sending' and
            # recovery settles it (the recorder has said why).
            log.warning("outbox row %s: result not recorded (%s)", row.id, type(exc).__name__)
        finally:
            self._sending.difference_update(ids)

    async def _send_and_record(
        self, row: OutboxMessage, companions: Sequence[OutboxMessage] = ()
    ) -> None:
        """Send ``row`` (with ``companions``, as one message) and record the one result for
        every row it carried."""
        assert row.id is not None
        ids = [row.id, *(c.id for c in companions if c.id is not None)]
        messenger = self.messengers.get(row.channel)
        limiter = self._limiters.get(row.channel)
        if messenger is None or limiter is None:
            result = SendResult(ok=False, permanent=True, error=f"no messenger for {row.channel}")
        else:
            try:
                await limiter.wait(row.recipient)
            except Exception as exc:  # the shared buckets' database: not sent, try later
                log.warning("outbox: rate buckets unavailable (%s)", type(exc).__name__)
                # Nothing was sent, so it does not use up one of the row's attempts (a long
                # outage must not turn a form into 'failed' and its person 'unreachable').
                unsent = SendResult(ok=False, error="rate limiter unavailable", not_sent=True)
                await asyncio.gather(*(self._record(i, unsent) for i in ids))
                return
            try:
                message = combined(
                    [OutgoingMessage.model_validate(r.payload) for r in (row, *companions)]
                )
                if isinstance(messenger, KeyedMessenger):
                    result = await messenger.send_keyed(
                        row.idempotency_key, row.recipient, message, row.edit_ref, row.thread_ref
                    )
                else:
                    result = await messenger.send(
                        row.recipient, message, row.edit_ref, row.thread_ref
                    )
            except Exception as exc:  # a messenger bug must not kill the dispatcher
                log.exception("messenger raised for outbox row %s", row.id)
                result = SendResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
            if result.retry_after is not None:
                limiter.pause(result.retry_after)
                self.stats.throttled += 1
        await asyncio.gather(*(self._record(i, result) for i in ids))

    async def _record(self, row_id: int, result: SendResult) -> None:
        """Record one send's result. Results that arrive while a transaction is recording are
        recorded together in the next one (at 30 messages/s, one commit per message would be
        most of the dispatcher's own cost). Returns once this result is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._results.append((row_id, result, future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_waiting(), name="outbox-recorder")
        await future

    async def _record_waiting(self) -> None:
        while self._results:
            batch, self._results = self._results[:200], self._results[200:]
            try:
                await self._record_with_retries(batch)
            except Exception as exc:
                if transient(exc):  # stopping: the rows stay 'sending' for recovery
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                # One bad row must not keep the others unrecorded: record them one by one.
                log.exception("recording %d send results together failed; one by one", len(batch))
                for item in batch:
                    try:
                        await self._record_batch([item])
                    except Exception as exc:  # the row stays 'sending'; recovery settles it
                        if not item[2].done():
                            item[2].set_exception(exc)
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _record_with_retries(
        self, batch: list[tuple[int, SendResult, asyncio.Future[None]]]
    ) -> None:
        """The messages were sent: keep trying to record that while the database refuses for a
        reason that may pass (classified by type: :func:`transient`), so an outage or a held
        write lock does not turn them into 'uncertain' (or a reply into a duplicate). Gives up
        only when the dispatcher is stopping; the rows then stay 'sending' for recovery."""
        delay = 0.5
        while True:
            try:
                await self._record_batch(batch)
                return
            except Exception as exc:
                if not transient(exc):
                    raise
                if self._stopping.is_set():
                    log.warning(
                        "outbox: stopping with %d result(s) unrecorded (%s); recovery will "
                        "settle them",
                        len(batch),
                        type(exc).__name__,
                    )
                    raise
                # A warning, not an error: nothing is lost, the result is recorded later.
                log.warning(
                    "outbox: could not record %d result(s) (%s); retrying in %.1fs",
                    len(batch),
                    type(exc).__name__,
                    delay,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            # Capped well under the lease: another process's recovery settles a row still
            # 'sending' when its lease runs out, and the sooner this is recorded the fewer rows
            # get there (a late ok is still recorded: see _apply).
            delay = min(delay * 2, 2.0)

    async def _record_batch(
        self, batch: list[tuple[int, SendResult, asyncio.Future[None]]]
    ) -> None:
        now = self.clock.now()
        async with self.uow_factory() as uow:
            await uow.outbox.load([row_id for row_id, _, _ in batch])
            for row_id, result, _ in batch:
                await self._apply(uow, row_id, result, now)
            await uow.commit()

    async def _apply(self, uow: UnitOfWork, row_id: int, result: SendResult, now: datetime) -> None:
        """The row's new state after a send (and the delivery's, and the hooks')."""
        row = await uow.outbox.get(row_id)
        if row is None:
            return
        if row.status != OutboxStatus.SENDING.value:
            # Recorded late (the database was away past the lease) and another process's
            # recovery got there first: it marked a form 'uncertain' or put a reply back to
            # 'pending'. The message did go out: say so, which also keeps a pending reply from
            # being sent again and an uncertain form from being followed up.
            late = (OutboxStatus.UNCERTAIN.value, OutboxStatus.PENDING.value)
            if not (result.ok and row.status in late):
                return
        row.claimed_until = None
        # Deliveries are changed by conditional UPDATEs, never from a value read earlier: a
        # person may answer (nil, responded) between the send and this record.
        delivery = row.delivery_id
        if result.ok:
            row.status = OutboxStatus.SENT.value
            row.sent_at = now
            row.result_ref = result.message_ref
            row.last_error = None
            self.stats.sent += 1
            if delivery is not None:
                await uow.deliveries.sent(
                    delivery, result.message_ref, now, reminder=row.purpose == "reminder"
                )
        elif result.not_sent:
            row.attempts = max(0, row.attempts - 1)  # the claim counted one; none was made
            row.status = OutboxStatus.PENDING.value
            row.next_attempt_at = now + timedelta(seconds=random.uniform(1.0, 3.0))  # noqa: S311
            row.last_error = (result.error or "not sent")[:500]
        elif result.permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = OutboxStatus.FAILED.value
            row.last_error = (result.error or "failed")[:500]
            self.stats.failed += 1
            log.warning("outbox row %s failed: %s", row.id, row.last_error)
            if result.blocked:
                await self._mark_blocked(uow, row, delivery, now)
            elif delivery is not None:
                await uow.deliveries.set_status(
                    delivery,
                    DeliveryStatus.UNREACHABLE.value,
                    only_from=[DeliveryStatus.QUEUED.value],
                    detail=(result.error or "send failed")[:200],
                )
        else:
            self.stats.retried += 1
            delay = result.retry_after
            if delay is None:  # exponential backoff with jitter for 5xx and timeouts
                delay = min(300.0, 2.0**row.attempts) * random.uniform(0.5, 1.0)  # noqa: S311
            row.status = OutboxStatus.PENDING.value
            row.next_attempt_at = now + timedelta(seconds=delay)
            row.last_error = (result.error or "retry")[:500]
        for hook in self.hooks:  # hooks see retries too (row.status tells which)
            await hook(uow, row, result, now)

    @staticmethod
    async def _mark_blocked(
        uow: UnitOfWork, row: OutboxMessage, delivery: int | None, now: datetime
    ) -> None:
        """The person blocked the bot: remember it and mark this delivery unreachable."""
        person = await uow.people.by_chat(row.channel, row.recipient)
        if person is not None and person.blocked_at is None:
            person.blocked_at = now
            await audit(uow, now, "dispatcher", "person.blocked", f"person:{person.id}")
        if delivery is not None:
            await uow.deliveries.set_status(
                delivery,
                DeliveryStatus.UNREACHABLE.value,
                not_from=[DeliveryStatus.RESPONDED.value, DeliveryStatus.NIL.value],
                detail="blocked the bot",
            )
