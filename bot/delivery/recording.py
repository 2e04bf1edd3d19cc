"""Recording send results: a row's new state after a send, batched and retried.

Results that arrive while a transaction is recording are recorded together in the next one. A
result that cannot be recorded because the database refuses for a while (by exception type:
:class:`~bot.ports.TransientStoreError`) is retried until it is recorded or the dispatcher
stops; the rows then stay ``sending`` and the dispatcher's recovery settles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.common import audit
from bot.domain import NEWS, DeliveryState, OutboxMessage, OutboxStatus
from bot.ports import (
    DeliverySent,
    OutboxChange,
    SendResult,
    TransientStoreError,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

ResultHook = Callable[[UnitOfWork, OutboxMessage, SendResult, datetime], Awaitable[None]]
"""Called in the same transaction as every result of a send (the row's status says whether it
was sent, failed for good, or will be retried), except a conversational reply that was sent
(:func:`_plain`: recorded by one UPDATE with the others, no row read). The row is detached and
has no payload."""
MAX_ATTEMPTS = 8
#: Purposes sent at least once: a duplicate is harmless, a missing one leaves someone stuck. The
#: others (forms, reminders, notices) are sent at most once: an uncertain send is not repeated.
AT_LEAST_ONCE = frozenset({"reply", NEWS})

_Waiting = tuple[int, SendResult, "asyncio.Future[None]", bool]
"""A result waiting to be recorded: row id, result, its caller's future, and whether it is
plain (:func:`_plain`)."""


def _plain(row: OutboxMessage, result: SendResult) -> bool:
    """Whether recording ``result`` only marks ``row`` sent: a conversational reply that went
    out, with no delivery to update. No hook acts on one (they act on team posts and on
    failures), so none is called for it."""
    return result.ok and row.purpose == "reply" and row.delivery_id is None


@dataclass
class DispatchStats:
    """Counters for the demo, benchmarks and metrics."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    throttled: int = 0  # 429s received
    uncertain: int = 0  # sends with no answer from the platform, not re-sent (at most once)
    recovered_uncertain: int = 0
    recovered_resent: int = 0


def transient(exc: BaseException) -> bool:
    """Whether a database error may pass if the same work is tried again: storage raises
    :class:`TransientStoreError` for those (classified by type); a lost socket or a timeout
    that reached the core as it is counts too."""
    return isinstance(exc, TransientStoreError | OSError | TimeoutError)


class ResultRecorder:
    """Records the outbox dispatcher's send results (and tells the hooks)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        stats: DispatchStats,
        hooks: Sequence[ResultHook],
        stopping: asyncio.Event,
    ) -> None:
        self.uow_factory = uow_factory
        self.clock = clock
        self.stats = stats
        self.hooks = hooks
        # Results waiting to be recorded: one transaction records all that are waiting.
        self._results: list[_Waiting] = []
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = stopping  # set when the dispatcher stops: recording stops retrying

    async def record(self, row: OutboxMessage, result: SendResult) -> None:
        """Record one send's result. Results that arrive while a transaction is recording are
        recorded together in the next one (at 30 messages/s, one commit per message would be
        most of the dispatcher's own cost). Returns once this result is committed."""
        assert row.id is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._results.append((row.id, result, future, _plain(row, result)))
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
                    for _, _, future, _ in batch:
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
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_result(None)

    async def _record_with_retries(self, batch: list[_Waiting]) -> None:
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

    async def _record_batch(self, batch: list[_Waiting]) -> None:
        """One transaction for the whole batch: read the rows' state in one statement, decide
        each row's new state here, write them in bulk (one statement per kind of change), and
        the deliveries of the forms sent in one more. Only the rare outcomes (a failure, a
        blocked person) and the hooks take statements of their own."""
        now = self.clock.now()
        # A sent reply needs nothing from its row: one UPDATE for all of them, no row read (the
        # fast path's replies are most results); the others as below.
        plain = [(row_id, result.message_ref) for row_id, result, _, is_plain in batch if is_plain]
        batch = [item for item in batch if not item[3]]
        settled: list[tuple[OutboxMessage, SendResult]] = []
        async with self.uow_factory() as uow:
            await uow.outbox.mark_sent(plain, now)
            if batch:  # (the fast path's batches are often sent replies only)
                await self._settle(uow, batch, settled, now)
            await uow.commit()
        # Counted once committed (a batch tried again is not counted twice).
        self.stats.sent += len(plain)
        for row, result in settled:
            if row.status == OutboxStatus.SENT.value:
                self.stats.sent += 1
            elif row.status == OutboxStatus.FAILED.value:
                self.stats.failed += 1
            elif row.status == OutboxStatus.UNCERTAIN.value:
                self.stats.uncertain += 1
            elif not result.not_sent:
                self.stats.retried += 1

    async def _settle(
        self,
        uow: UnitOfWork,
        batch: list[_Waiting],
        settled: list[tuple[OutboxMessage, SendResult]],
        now: datetime,
    ) -> None:
        """The results that are not plain: read the rows' state, write each row's new values
        and the deliveries' in bulk, then what a failure changes and the hooks (``settled``:
        the rows written, with their results)."""
        rows = await uow.outbox.states([row_id for row_id, _, _, _ in batch])
        changes: list[OutboxChange] = []
        sent: list[DeliverySent] = []
        for row_id, result, _, _ in batch:
            row = rows.get(row_id)
            if row is None:
                continue
            values = self._decide(row, result, now)
            if values is None:
                continue
            for key, value in values.items():
                setattr(row, key, value)
            changes.append(OutboxChange(row_id, values))
            settled.append((row, result))
            if result.ok and row.delivery_id is not None:
                sent.append(
                    DeliverySent(
                        row.delivery_id, result.message_ref, reminder=row.purpose == "reminder"
                    )
                )
        await uow.outbox.settle(changes)
        await uow.deliveries.sent_many(sent, now)
        for row, result in settled:
            await self._after(uow, row, result, now)

    def _decide(
        self, row: OutboxMessage, result: SendResult, now: datetime
    ) -> dict[str, object] | None:
        """The row's new values after a send (None: leave it as it is)."""
        if row.status != OutboxStatus.SENDING.value:
            # Recorded late (the database was away past the lease) and another process's
            # recovery got there first: it marked a form 'uncertain' or put a reply back to
            # 'pending'. The message did go out: say so, which also keeps a pending reply from
            # being sent again and an uncertain form from being followed up.
            late = (OutboxStatus.UNCERTAIN.value, OutboxStatus.PENDING.value)
            if not (result.ok and row.status in late):
                return None
        if result.ok:
            return {
                "status": OutboxStatus.SENT.value,
                "claimed_until": None,
                "sent_at": now,
                "result_ref": result.message_ref,
                "last_error": None,
            }
        if result.not_sent:
            return {
                "status": OutboxStatus.PENDING.value,
                "claimed_until": None,
                "attempts": max(0, row.attempts - 1),  # the claim counted one; none was made
                "next_attempt_at": now + timedelta(seconds=random.uniform(1.0, 3.0)),  # noqa: S311
                "last_error": (result.error or "not sent")[:500],
            }
        if result.uncertain and row.purpose not in AT_LEAST_ONCE:
            # The platform may have it: not sent again (at most once), followed up as a send
            # cut short by a crash is (the campaign's uncertain follow-up).
            return {
                "status": OutboxStatus.UNCERTAIN.value,
                "claimed_until": None,
                "last_error": (result.error or "no answer")[:500],
            }
        if result.permanent or row.attempts >= MAX_ATTEMPTS:
            return {
                "status": OutboxStatus.FAILED.value,
                "claimed_until": None,
                "last_error": (result.error or "failed")[:500],
            }
        delay = result.retry_after
        if delay is None:  # exponential backoff with jitter for 5xx and timeouts
            delay = min(300.0, 2.0**row.attempts) * random.uniform(0.5, 1.0)  # noqa: S311
        return {
            "status": OutboxStatus.PENDING.value,
            "claimed_until": None,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": (result.error or "retry")[:500],
        }

    async def _after(
        self, uow: UnitOfWork, row: OutboxMessage, result: SendResult, now: datetime
    ) -> None:
        """What a failure changes besides the row (the delivery, a blocked person), and the
        hooks. Deliveries are changed by conditional UPDATEs, never from a value read earlier:
        a person may answer (nil, responded) between the send and this record."""
        delivery = row.delivery_id
        if row.status == OutboxStatus.UNCERTAIN.value:
            log.warning("outbox row %s uncertain, not re-sent: %s", row.id, row.last_error)
            if delivery is not None:
                await uow.deliveries.set_status(
                    delivery,
                    DeliveryState.UNCERTAIN,
                    only_from=[DeliveryState.QUEUED],
                    detail="no answer from the platform",
                )
        if row.status == OutboxStatus.FAILED.value:
            log.warning("outbox row %s failed: %s", row.id, row.last_error)
            if result.blocked:
                await self._mark_blocked(uow, row, delivery, now)
            elif delivery is not None:
                await uow.deliveries.set_status(
                    delivery,
                    DeliveryState.UNREACHABLE,
                    only_from=[DeliveryState.QUEUED],
                    detail=(result.error or "send failed")[:200],
                )
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
                DeliveryState.UNREACHABLE,
                not_from=[DeliveryState.RESPONDED, DeliveryState.NIL],
                detail="blocked the bot",
            )
