"""Recording send results in batches: one transaction writes many rows' results with bulk
statements, and a batch the database refuses for a while is written again whole, so every row
(and its delivery, and a reminder's counter) is recorded exactly once."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.app import Services
from bot.clock import FakeClock
from bot.delivery.limits import RateLimits
from bot.delivery.outbox import OutboxDispatcher
from bot.domain import DeliveryState, OutboxMessage, OutboxStatus
from bot.ports import SendResult
from tests.helpers import PEOPLE_CSV, FakeMessenger, link_all, services_for
from tests.test_record_retry import RETRYING, _until, _write_lock_held


async def _claimed_forms(
    s: Services, clock: FakeClock
) -> tuple[OutboxDispatcher, list[OutboxMessage]]:
    """A campaign opened for the four reporters; their forms claimed (as the dispatcher would),
    the last two turned into reminders."""
    await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
    await link_all(s)
    dispatcher = OutboxDispatcher(
        s.db.uow, {"telegram": FakeMessenger()}, {"telegram": RateLimits(1000, 1000, 8)}
    )
    await dispatcher.drain()  # the welcome messages (a form never overtakes them)
    await s.campaigns.open_monthly("2026-12", actor="t", force=True)
    async with s.db.uow() as uow:
        rows = await uow.outbox.claim(
            clock.now(), {"telegram": 100}, clock.now() + timedelta(seconds=30)
        )
        await uow.commit()
    forms = [r for r in rows if r.purpose == "form" and r.delivery_id is not None]
    assert len(forms) == 4
    reminders = [r.id for r in forms[2:]]
    async with s.db.engine.begin() as conn:
        for row_id in reminders:
            await conn.execute(
                text("UPDATE outbox SET purpose = 'reminder' WHERE id = :id"), {"id": row_id}
            )
    return dispatcher, forms


async def _deliveries(s: Services, forms: list[OutboxMessage]) -> list[tuple[str, int, str | None]]:
    out = []
    async with s.db.uow() as uow:
        for row in forms:
            d = await uow.deliveries.get(row.delivery_id or 0)
            assert d is not None
            out.append((str(d.status), d.reminders, d.message_ref))
    return out


async def test_results_recorded_together_settle_every_row_and_its_delivery(
    db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Four results that arrive together are recorded in one transaction (two forms, two
    reminders): every row sent, each form's delivery sent with its message, each reminder's
    counter moved by one; nothing falls back to recording one by one."""
    caplog.set_level(logging.WARNING)
    async with services_for(db_url, clock) as s:
        dispatcher, forms = await _claimed_forms(s, clock)
        before = dispatcher.stats.sent
        await asyncio.gather(
            *(
                dispatcher._record(r, SendResult(ok=True, message_ref=f"m{i}"))
                for i, r in enumerate(forms)
            )
        )
        async with s.db.uow() as uow:
            counts = await uow.outbox.counts()
            got = [await uow.outbox.get(r.id or 0) for r in forms]
        assert counts.get(OutboxStatus.SENDING.value, 0) == 0
        assert [g.status for g in got if g] == [OutboxStatus.SENT.value] * 4
        assert [g.result_ref for g in got if g] == ["m0", "m1", "m2", "m3"]
        assert await _deliveries(s, forms) == [
            (DeliveryState.SENT.value, 0, "m0"),
            (DeliveryState.SENT.value, 0, "m1"),
            (DeliveryState.QUEUED.value, 1, "m2"),  # a reminder counts; the form was not seen
            (DeliveryState.QUEUED.value, 1, "m3"),
        ]
        assert dispatcher.stats.sent - before == 4
        logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not logged, logged


async def test_a_batch_the_database_refuses_for_a_while_is_recorded_once(
    db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses the batch's transaction part-way (a held write lock; on PostgreSQL
    the recording's connection is then killed): the whole batch is written again, and every
    row is recorded once: no reminder counted twice, no result counted twice."""
    caplog.set_level(logging.WARNING)
    async with services_for(db_url, clock) as s:
        dispatcher, forms = await _claimed_forms(s, clock)
        before = dispatcher.stats.sent
        locked = forms[-1].id or 0  # the lock the batch meets part-way (PostgreSQL: this row)
        async with _write_lock_held(db_url, locked) as make_it_fail:
            recording = asyncio.gather(
                *(
                    dispatcher._record(r, SendResult(ok=True, message_ref=f"m{i}"))
                    for i, r in enumerate(forms)
                )
            )
            await make_it_fail()
            await _until(
                lambda: any(RETRYING in r.getMessage() for r in caplog.records),
                "the recording to fail and be retried",
            )
        await asyncio.wait_for(recording, 120)
        assert await _deliveries(s, forms) == [
            (DeliveryState.SENT.value, 0, "m0"),
            (DeliveryState.SENT.value, 0, "m1"),
            (DeliveryState.QUEUED.value, 1, "m2"),
            (DeliveryState.QUEUED.value, 1, "m3"),
        ]
        async with s.db.uow() as uow:
            assert (await uow.outbox.counts()).get(OutboxStatus.SENDING.value, 0) == 0
        assert dispatcher.stats.sent - before == 4


async def test_rows_claimed_by_another_path_are_sent_once_and_recorded(
    db_url: str, clock: FakeClock
) -> None:
    """``send_now``: rows a path of this process claimed itself (a reply sent straight
    after the commit that queued it) go through the dispatcher's limits and recorder: each is
    sent once and recorded, and the dispatcher's own claim does not pick them up again."""
    from bot.common import enqueue
    from bot.messages import MessageBuilder

    async with services_for(db_url, clock) as s:
        messenger = FakeMessenger()
        dispatcher = OutboxDispatcher(
            s.db.uow, {"telegram": messenger}, {"telegram": RateLimits(1000, 1000, 8)}
        )
        async with s.db.uow() as uow:
            for i in range(3):
                await enqueue(uow, channel="telegram", recipient=str(500 + i),
                              message=MessageBuilder().line("hello").build(), key=f"r:{i}",
                              now=clock.now())  # fmt: skip
            rows = await uow.outbox.claim(
                clock.now(), {"telegram": 100}, clock.now() + timedelta(seconds=30)
            )
            await uow.commit()
        assert len(rows) == 3
        await dispatcher.send_now(rows)
        await dispatcher.drain()
        assert sorted(r for r, *_ in messenger.sent) == ["500", "501", "502"]
        async with s.db.uow() as uow:
            assert await uow.outbox.counts() == {OutboxStatus.SENT.value: 3}
        assert dispatcher.stats.sent == 3
