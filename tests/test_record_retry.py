"""Recording a send's result survives a database that refuses for a while: the message was sent,
so the dispatcher keeps trying to record that (by exception type, not message text) until it
succeeds. The row ends ``sent`` (not ``sending``, not ``uncertain``), nothing is sent twice,
and no send task dies with an exception nobody retrieves."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.clock import FakeClock
from bot.common import enqueue
from bot.delivery.limits import RateLimits
from bot.delivery.outbox import OutboxDispatcher
from bot.domain import OutboxStatus
from bot.messages import MessageBuilder
from storage.database import make_engine
from tests.helpers import FakeMessenger, services_for

RETRYING = "could not record"


class HeldMessenger(FakeMessenger):
    """A fake platform that holds each send until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def send(self, recipient: str, message: Any, edit_ref: Any = None,
                   thread_ref: Any = None) -> Any:  # fmt: skip
        self.entered.set()
        await self.gate.wait()
        return await super().send(recipient, message, edit_ref, thread_ref)


async def _until(predicate: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Wait for something the bot does (generous: a busy machine is slow, never wrong)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@asynccontextmanager
async def _write_lock_held(
    db_url: str, row_id: int
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Block writes to the outbox row from a second connection. Yields a coroutine function that
    makes the blocked writer fail (SQLite: its busy timeout does that by itself; PostgreSQL: its
    backend is terminated)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(
            str(url.database), isolation_level=None, timeout=60, check_same_thread=False
        )
        # The write lock: "database is locked" for the bot. Taken off the event loop: a bot
        # transaction that holds the lock at this moment needs the loop to commit and free it.
        await asyncio.to_thread(conn.execute, "BEGIN IMMEDIATE")

        async def nothing() -> None:
            return None

        try:
            yield nothing
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = make_engine(db_url)
    try:
        async with engine.connect() as pg:
            await pg.execute(text("SELECT 1 FROM outbox WHERE id = :id FOR UPDATE"), {"id": row_id})

            async def kill_the_waiter() -> None:
                async with engine.connect() as admin:

                    async def waiter() -> int | None:
                        pid = await admin.scalar(
                            text(
                                "SELECT pid FROM pg_stat_activity WHERE datname = "
                                "current_database() AND wait_event_type = 'Lock' LIMIT 1"
                            )
                        )
                        return int(pid) if pid is not None else None

                    async def waiting() -> bool:
                        return await waiter() is not None

                    await _until(waiting, "the recording to wait for the row lock")
                    await admin.execute(
                        text("SELECT pg_terminate_backend(:pid)"), {"pid": await waiter()}
                    )

            yield kill_the_waiter
            await pg.rollback()
    finally:
        await engine.dispose()


async def test_a_locked_or_lost_database_while_recording_leaves_the_form_sent_once(
    db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with services_for(db_url, clock) as s:
        async with s.db.uow() as uow:
            await enqueue(uow, channel="telegram", recipient="42",
                          message=MessageBuilder().line("the form").build(), key="form:42",
                          now=clock.now(), purpose="form")  # fmt: skip
            await uow.commit()
        async with s.db.engine.connect() as conn:
            row_id = int(await conn.scalar(text("SELECT id FROM outbox")))
        messenger = HeldMessenger()
        dispatcher = OutboxDispatcher(
            s.db.uow, {"telegram": messenger}, {"telegram": RateLimits(1000.0, 1000.0, 8)}
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            await messenger.entered.wait()
            async with _write_lock_held(db_url, row_id) as make_it_fail:
                messenger.gate.set()  # sent; now the result cannot be written
                await make_it_fail()
                await _until(lambda: any(RETRYING in r.getMessage() for r in caplog.records),
                             "the recording to fail and be retried")  # fmt: skip

            async def settled() -> bool:
                async with s.db.uow() as uow:
                    return (await uow.outbox.counts()) == {OutboxStatus.SENT.value: 1}

            await _until(settled, "the result to be recorded")
        finally:
            stop.set()
            await task
        del task
        gc.collect()  # an unretrieved task exception is logged when the task is collected
        await asyncio.sleep(0)
        async with s.db.uow() as uow:
            assert await uow.outbox.counts() == {OutboxStatus.SENT.value: 1}
        assert len(messenger.sent) == 1, "nothing is sent twice"
        assert dispatcher.stats.recovered_uncertain == 0
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not logged, [r.getMessage() for r in logged]
        assert not any("never retrieved" in r.getMessage() for r in caplog.records)


async def test_a_result_recorded_after_another_process_settled_the_row_still_counts(
    db_url: str, clock: FakeClock
) -> None:
    """Recording was held up past the lease and another process's recovery marked the form
    'uncertain' (or put a reply back to 'pending'): the message did go out, so the late ok
    result still marks it sent (no follow-up, no second send)."""
    async with services_for(db_url, clock) as s:
        async with s.db.uow() as uow:
            for key, purpose in (("form:42", "form"), ("reply:43", "reply")):
                await enqueue(uow, channel="telegram", recipient=key.split(":")[1],
                              message=MessageBuilder().line("hello").build(), key=key,
                              now=clock.now(), purpose=purpose)  # fmt: skip
            await uow.commit()
        messenger = HeldMessenger()
        dispatcher = OutboxDispatcher(
            s.db.uow, {"telegram": messenger}, {"telegram": RateLimits(1000.0, 1000.0, 8)}
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            await messenger.entered.wait()

            async def both_sending() -> bool:
                async with s.db.uow() as uow:
                    return (await uow.outbox.counts()) == {OutboxStatus.SENDING.value: 2}

            await _until(both_sending, "both sends in flight")
            async with s.db.engine.begin() as conn:  # what another process's recovery does
                await conn.execute(text(
                    "UPDATE outbox SET status = CASE purpose WHEN 'form' THEN 'uncertain' "
                    "ELSE 'pending' END WHERE status = 'sending'"
                ))  # fmt: skip
                # (the reply not due again before its late result is recorded: this test is
                # about the record, not about a race with a re-send)
                await conn.execute(
                    text("UPDATE outbox SET next_attempt_at = :later WHERE status = 'pending'"),
                    {"later": clock.now() + timedelta(days=1)},
                )
            messenger.gate.set()

            async def settled() -> bool:
                async with s.db.uow() as uow:
                    return (await uow.outbox.counts()) == {OutboxStatus.SENT.value: 2}

            await _until(settled, "both rows recorded as sent")
            assert len(messenger.sent) == 2  # and neither was sent again
        finally:
            stop.set()
            await task
