"""The outbox dispatcher's own guarantees, with slow fake messengers (no network)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.common import enqueue
from bot.delivery.limits import RateLimits, global_bucket
from bot.delivery.outbox import OutboxDispatcher, first_done
from bot.domain import OutboxStatus
from bot.messages import MessageBuilder
from bot.ports import SendResult
from tests.helpers import services_for


class SlowMessenger:
    """Holds its first sends until ``fill`` are in flight at once (then lets everything
    through), and records the most it ever had at once. The gate, not a sleep, makes the
    dispatcher fill its cap however slow the machine (a 20 ms sleep per send let a busy
    machine reach only 4 of 5); a dispatcher that never fills it hangs here and fails."""

    def __init__(self, channel: str, fill: int) -> None:
        self.channel = channel
        self.now = 0
        self.most = 0
        self.sent: list[str] = []
        self._full = asyncio.Event()
        self._fill = fill

    async def send(
        self, recipient: str, message: Any, edit_ref: Any = None, thread_ref: Any = None
    ) -> SendResult:
        self.now += 1
        self.most = max(self.most, self.now)
        if self.now >= self._fill:
            self._full.set()
        await self._full.wait()
        # A while in flight: a dispatcher that tops the channel up past its cap shows here.
        await asyncio.sleep(0.02)
        self.now -= 1
        self.sent.append(recipient)
        return SendResult(ok=True, message_ref="1")


async def test_each_channel_keeps_its_own_in_flight_cap(db_url: str, clock: FakeClock) -> None:
    """A full channel must not be topped up through another channel's share (a bug that let
    26 Telegram sends be in flight with max_in_flight = 2): at most the cap can become
    'uncertain' if the process dies."""
    async with services_for(db_url, clock) as s:
        message = MessageBuilder().line("hello").build()
        async with s.db.uow() as uow:
            for i in range(30):
                for channel in ("telegram", "slack"):
                    await enqueue(uow, channel=channel, recipient=f"{channel}-{i}", message=message,
                                  key=f"{channel}:{i}", now=clock.now(), purpose="form")  # fmt: skip
            await enqueue(uow, channel="sms", recipient="07700", message=message, key="sms",
                          now=clock.now())  # fmt: skip
            await uow.commit()
        telegram, slack = SlowMessenger("telegram", 2), SlowMessenger("slack", 5)
        dispatcher = OutboxDispatcher(
            s.db.uow,
            {"telegram": telegram, "slack": slack},
            {"telegram": RateLimits(1000, 1000, 2), "slack": RateLimits(1000, 1000, 5)},
        )
        await dispatcher.drain()
        assert (telegram.most, slack.most) == (2, 5)
        assert len(telegram.sent) == len(slack.sent) == 30
        async with s.db.uow() as uow:
            counts = await uow.outbox.counts()
        # The row for a channel with no messenger failed; it did not stay queued.
        assert counts == {OutboxStatus.SENT.value: 60, OutboxStatus.FAILED.value: 1}


async def test_a_nil_return_made_while_the_form_was_being_recorded_is_kept(
    db_url: str, clock: FakeClock
) -> None:
    """The person sees the form and taps "Nothing to report" before the dispatcher has recorded
    that the form was sent: recording must not put the delivery back to 'sent' (it did, from a
    value read before the nil was committed)."""
    from bot.domain import DeliveryState
    from bot.returns.reports import record_nil
    from tests.helpers import PEOPLE_CSV, FakeMessenger, link_all

    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        await link_all(s)
        dispatcher = OutboxDispatcher(
            s.db.uow, {"telegram": FakeMessenger()}, {"telegram": RateLimits(1000, 1000, 8)}
        )
        await dispatcher.drain()  # the welcome messages (a form never overtakes them)
        campaign, _ = await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        assert campaign.id is not None
        async with s.db.uow() as uow:
            rows = await uow.outbox.claim(
                clock.now(), {"telegram": 100}, clock.now() + timedelta(seconds=30)
            )
            await uow.commit()
        forms = [r for r in rows if r.purpose == "form" and r.delivery_id is not None]
        assert forms
        row = forms[0]
        async with s.db.uow() as uow:
            delivery = await uow.deliveries.get(row.delivery_id or 0)
            assert delivery is not None
            assert (
                await record_nil(
                    uow, person_id=delivery.person_id, campaign_id=campaign.id, now=clock.now()
                )
                is None
            )
            await uow.commit()
        assert row.id is not None
        await dispatcher._record(row, SendResult(ok=True, message_ref="77"))
        async with s.db.uow() as uow:
            after = await uow.deliveries.get(row.delivery_id or 0)
            sent = await uow.outbox.get(row.id)
        assert after is not None and after.status == DeliveryState.NIL.value
        assert after.message_ref == "77"  # the form can still be edited in place
        assert sent is not None and sent.status == OutboxStatus.SENT.value


async def test_the_idle_wait_survives_a_send_finishing_under_it() -> None:
    """The dispatcher's idle wait watches the sends in flight. A send that finished in this turn
    of the event loop is still in the live set, but its done-callback empties the set before the
    watcher first runs: watching the set itself raised "Set of Tasks/Futures is empty" in a task
    nobody awaited (seen in CI, as an ERROR log in the property suite). This is that order."""

    async def send() -> None:
        return None

    in_flight: set[asyncio.Task[None]] = set()
    task = asyncio.create_task(send())
    in_flight.add(task)
    task.add_done_callback(in_flight.discard)
    await asyncio.sleep(0)  # the send runs and finishes; its discard is queued, not yet run
    assert task.done() and in_flight == {task}
    watcher = first_done(in_flight)
    done, _ = await asyncio.wait_for(watcher, 1)
    assert done == {task} and in_flight == set()


async def test_the_global_bucket_never_lets_more_than_the_rate_plus_one_into_a_second() -> None:
    """Telegram counts sends per second. The bucket's headroom (which lets a send make up for
    a late wake-up) must never let ``floor(rate) + 2`` sends into any one-second window, from
    a standing start included. A rate with a fraction is the case the headroom is sized for."""
    import bisect
    import math

    loop = asyncio.get_running_loop()
    for rate in (60.5, 80.0):
        bucket = global_bucket(rate)
        times: list[float] = []
        for _ in range(int(rate * 1.6)):
            await bucket.acquire()
            times.append(loop.time())
        busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
        assert busiest <= math.floor(rate) + 1, (rate, busiest)
