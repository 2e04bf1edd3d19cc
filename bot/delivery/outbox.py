"""The outbox dispatcher: the only code that sends messages.

Rows are claimed (``pending`` -> ``sending``, with a lease), sent through the platform's
:class:`~bot.ports.Messenger` within the platform's rate limits, and recorded (``sent``,
``failed``, or back to ``pending`` with a delay). Limits are token buckets
(:mod:`bot.delivery.limits`): a global one
(Telegram: ~30 messages/s) and one per chat (~1 message/s). On SQLite (one process) they are
kept in memory; on PostgreSQL they are :class:`~bot.ports.RateBuckets` kept in
the database and shared by every process, so N processes together keep one rate, with no
shares to hand out or take back when a process joins or dies. A 429 pauses this process's
sending for ``retry_after`` and the message is retried after it.

If the process dies mid-send, the row stays ``sending`` until its lease expires. Recovery then
decides per purpose: conversational replies are re-sent (a repeated question is harmless, a
missing one leaves someone stuck), while forms and reminders become ``uncertain`` and are *not*
re-sent at once, so nobody gets the form twice; ``outbox.uncertain_followup_hours`` later the
campaign tick sends an uncertain form once more, worded so that a duplicate is harmless
(``CampaignService``), unless the person has answered. A send that got no answer from the
platform (``SendResult.uncertain``: a timeout, a 504) is settled the same way by the recorder. A result that cannot be recorded because
the database refuses for a while (by exception type: :class:`~bot.ports.TransientStoreError`)
is retried until it is recorded or the dispatcher stops (:mod:`bot.delivery.recording`).

Claims, results and their deliveries are written with bulk statements (one claim statement, one
recording transaction for every result waiting: :mod:`bot.delivery.recording`). Rows another
path of this process has claimed itself go through the same limits and recorder with
:meth:`OutboxDispatcher.send_now`.

A reporter's news about their reports (purpose ``news``) waits ``news_hold`` (business time)
after it is queued for more news to the same person; when it is claimed, every other piece of
news waiting for that person is claimed with it, in the same transaction, and the pieces go out
as one message. Each row keeps its own idempotency key and is recorded with the one send's
result, so a piece is sent once whichever row led; after a crash they are re-sent together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeGuard

from bot.clock import Clock, SystemClock
from bot.common import audit
from bot.delivery.limits import ChannelLimiter, RateLimits
from bot.delivery.recording import (
    AT_LEAST_ONCE,
    DispatchStats,
    ResultHook,
    ResultRecorder,
    transient,
)
from bot.domain import NEWS, DeliveryState, OutboxMessage, OutboxStatus
from bot.messages import OutgoingMessage, combined
from bot.ports import KeyedMessenger, Messenger, RateBuckets, SendResult, UnitOfWorkFactory

log = logging.getLogger(__name__)


def first_done(tasks: set[asyncio.Task[None]]) -> asyncio.Future[Any]:
    """A future that completes when any of ``tasks`` does (at once if one already has).

    It watches a copy: asyncio.wait reads its argument only when the wrapping task first runs,
    and by then a send that finished in this turn of the loop may have left the live set empty
    ("Set of Tasks/Futures is empty", raised in a task nobody awaits)."""
    return asyncio.ensure_future(asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED))


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
        # Whether a messenger takes the row's key (KeyedMessenger), by its type: an isinstance
        # check against a runtime protocol walks its members, on every send otherwise.
        self._keyed: dict[type, bool] = {}
        # Rate limits and retry delays are about real time, whatever the business clock says.
        self.clock = clock or SystemClock()
        # News is held in business time: "within a minute" of the events it tells of.
        self.business_clock = business_clock or self.clock
        self.news_hold = news_hold
        self.lease = lease
        self.poll_interval = poll_interval
        self._limiters = {ch: ChannelLimiter(ch, lim, shared_rates) for ch, lim in limits.items()}
        # In flight per channel: at most ``max_in_flight`` of a channel's sends are out at once
        # (so at most that many forms can be uncertain after a crash).
        self._caps = {ch: lim.max_in_flight for ch, lim in limits.items()}
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._busy: dict[str, set[asyncio.Task[None]]] = {ch: set() for ch in limits}
        self._sending: set[int] = set()  # rows this process is sending (alive, whatever the lease)
        self._next_strays = 0.0  # loop time of the next look for rows no messenger can send
        self.stats = DispatchStats()
        self.hooks = list(hooks)
        self._stopping = asyncio.Event()  # set by run()'s stop: recording stops retrying
        self._recording = ResultRecorder(
            uow_factory, self.clock, self.stats, self.hooks, self._stopping
        )

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    # ----------------------------------------------------------------- the fast path

    async def send_now(
        self, rows: Sequence[OutboxMessage], after: asyncio.Future[Any] | None = None
    ) -> None:
        """Send rows this process claimed itself when it queued them (``sending``, its lease on
        them: the fast path, :mod:`bot.delivery.direct`), one after another once ``after`` is
        done, through the same limits, arrival guard, 429 pause and recorder as the rows it
        claims; returns once each result is recorded. Each counts in flight for its channel
        while it goes, and may take it past ``max_in_flight``: it is claimed already. A row
        whose result cannot be recorded stays ``sending`` and recovery settles it; nothing
        raises."""
        ids = {r.id for r in rows if r.id is not None}
        self._sending.update(ids)  # alive from now on, however long they wait: not recovered
        try:
            if after is not None:
                await asyncio.wait([after])  # its outcome is its own (recorded by it)
            for row in rows:
                if row.id is not None:
                    await self._start(row)
        finally:
            self._sending.difference_update(ids)

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
                        DeliveryState.UNCERTAIN,
                        only_from=[DeliveryState.QUEUED],
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

    async def dispatch_once(self, *, strays: bool | None = None) -> int:
        """Claim as many due rows as each channel has free slots and start sending them.

        Rows for a channel with no messenger (``strays``) are looked for at most once a poll
        interval (None), or now (True): that query walks every pending row, which on a big
        fan-out costs more than the claim itself."""
        free = {ch: cap - len(self._busy[ch]) for ch, cap in self._caps.items()}
        if not any(n > 0 for n in free.values()):
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            return 1
        now = self.clock.now()
        ticks = asyncio.get_running_loop().time()
        if strays is None:
            strays = ticks >= self._next_strays
        async with self.uow_factory() as uow:
            # Every known channel is named (a full one with 0), so that "*" means only channels
            # with no messenger: their rows are claimed too, and fail rather than stay queued.
            wanted = {ch: max(0, n) for ch, n in free.items()}
            if strays:
                self._next_strays = ticks + self.poll_interval
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
            self._start(row, companions.get(row.id or 0, ()))
        return len(rows)

    def _start(
        self, row: OutboxMessage, companions: Sequence[OutboxMessage] = ()
    ) -> asyncio.Task[None]:
        """Send a row this process has claimed (with its companions) and record the result, in
        a task counted in flight for its channel."""
        task = asyncio.create_task(self._send(row, companions))
        busy = self._busy.setdefault(row.channel if row.channel in self._caps else "*", set())
        for group in (self._in_flight, busy):
            group.add(task)
            task.add_done_callback(group.discard)
        return task

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
                if not await self.dispatch_once(strays=True):
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
        messenger = self.messengers.get(row.channel)
        limiter = self._limiters.get(row.channel)
        message: OutgoingMessage | None = None
        if messenger is not None:
            try:  # built before the send's slot: the guard counts from admit to answer
                message = combined(
                    [OutgoingMessage.model_validate(r.payload) for r in (row, *companions)]
                )
            except Exception as exc:
                log.exception("outbox row %s: its message could not be built", row.id)
                failed = SendResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
                await self._record_all(row, companions, failed)
                return
        if messenger is None or limiter is None or message is None:
            result = SendResult(ok=False, permanent=True, error=f"no messenger for {row.channel}")
        else:
            try:
                await limiter.wait(row.recipient)
            except Exception as exc:  # the shared buckets' database: not sent, try later
                log.warning("outbox: rate buckets unavailable (%s)", type(exc).__name__)
                # Nothing was sent, so it does not use up one of the row's attempts (a long
                # outage must not turn a form into 'failed' and its person 'unreachable').
                unsent = SendResult(ok=False, error="rate limiter unavailable", not_sent=True)
                await self._record_all(row, companions, unsent)
                return
            await limiter.arrivals.admit(row.recipient)
            try:
                if self._takes_key(messenger):
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
            finally:
                await limiter.arrivals.answered(row.recipient)
            if result.retry_after is not None:
                limiter.pause(result.retry_after)
                self.stats.throttled += 1
        await self._record_all(row, companions, result)

    def _takes_key(self, messenger: Messenger) -> TypeGuard[KeyedMessenger]:
        """Whether ``messenger`` is a :class:`~bot.ports.KeyedMessenger` (told each row's key)."""
        kind = type(messenger)
        keyed = self._keyed.get(kind)
        if keyed is None:
            keyed = self._keyed[kind] = isinstance(messenger, KeyedMessenger)
        return keyed

    async def _record_all(
        self, row: OutboxMessage, companions: Sequence[OutboxMessage], result: SendResult
    ) -> None:
        """Record one send's result for the row and each companion it carried; returns once
        all are committed. A row alone (nearly every send) is awaited in this task, with no
        task of its own to gather."""
        if not companions:
            await self._record(row, result)
            return
        await asyncio.gather(*(self._record(r, result) for r in (row, *companions)))

    async def _record(self, row: OutboxMessage, result: SendResult) -> None:
        """Record one send's result; returns once it is committed (:mod:`bot.delivery.recording`)."""
        await self._recording.record(row, result)
