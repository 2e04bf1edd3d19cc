"""News to a reporter within a minute goes out as one message (issue 18: "several notices to
one person within a minute are combined into one message"), seen from the reporter's chat.

The hold is business time (the fake clock), so nothing here sleeps: the clock is moved past
the hold and the outbox drained.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.actions.service import Officer
from bot.buttons import ButtonAction
from bot.clock import FakeClock
from bot.delivery.limits import RateLimits
from bot.delivery.outbox import OutboxDispatcher
from bot.domain import NEWS, OutboxStatus
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for
from tests.test_actions import ROUTING, TEAMS, _report
from tests.test_conversation import Chat


@dataclass
class NewsWorld:
    """The core with a one-minute hold on news, and Asha's chat."""

    s: Any
    telegram: FakeMessenger
    slack: FakeMessenger
    outbox: Any
    clock: FakeClock
    asha: Chat


@pytest.fixture
async def news(db_url: str) -> AsyncIterator[NewsWorld]:
    clock = FakeClock(datetime(2026, 12, 23, 15, 0, tzinfo=UTC))
    telegram, slack = FakeMessenger(), FakeMessenger()
    async with services_for(
        db_url, clock, teams=TEAMS, routing=ROUTING, outbox={"news_hold_seconds": 60}
    ) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, telegram, slack)
        await outbox.drain()
        asha = Chat(s, telegram, outbox, chats["asha@example.org"])
        yield NewsWorld(s, telegram, slack, outbox, clock, asha)


def _news(w: NewsWorld) -> list[str]:
    told = w.telegram.texts_to(w.asha.chat_id)
    return [t for t in told if "TR-2026-12-0001" in t and not t.startswith("Thank you")]


async def _acknowledge_and_update(w: NewsWorld) -> None:
    """Asha reports; the team's post goes out; Jane acknowledges and posts an update for Asha,
    all within the minute."""
    await _report(w.asha, "Religion or faith")
    await w.outbox.drain()
    (post,) = [m for r, m, e in w.slack.sent if r == "C0COHESION" and e is None]
    data = {b.label: b.data for row in post.buttons for b in row}["Acknowledge"]
    ack = ButtonAction.decode(data)
    w.clock.advance(timedelta(seconds=10))
    await w.s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)
    w.clock.advance(timedelta(seconds=20))
    await w.s.actions.add_update(
        Officer("U0JANE"), ack.target, ack.seq + 1, "Visited; cleaning booked.", True
    )


async def test_delivered_acknowledged_and_an_update_within_a_minute_come_as_one_message(
    news: NewsWorld,
) -> None:
    w = news
    await _acknowledge_and_update(w)
    await w.outbox.drain()
    assert _news(w) == []  # held: more may come within the minute
    w.clock.advance(timedelta(seconds=61))
    await w.outbox.drain()
    (told,) = _news(w)
    assert "Delivered to Cohesion Team" in told
    assert "Acknowledged by Jane Smith, Cohesion Team" in told
    assert "Visited; cleaning booked." in told
    rows = [r for r in await _rows(w) if r.purpose == NEWS]
    # Each piece keeps its own row, each recorded as sent with the one message.
    assert len(rows) == 3
    assert {(r.status, r.result_ref) for r in rows} == {
        (OutboxStatus.SENT.value, rows[0].result_ref)
    }


async def test_held_news_holds_no_conversation_back(news: NewsWorld) -> None:
    w = news
    await _acknowledge_and_update(w)
    await w.asha.command("report")  # the next report starts at once, news or not
    assert "Which ward" in w.asha.last or "ward" in w.asha.last.lower()
    assert _news(w) == []


async def test_news_claimed_by_a_process_that_died_goes_out_once_together(
    news: NewsWorld,
) -> None:
    """A process claims the news (all three rows, in one transaction) and is killed before it
    sends: after the lease, another process sends it once, as one message."""
    w = news
    await _acknowledge_and_update(w)
    w.clock.advance(timedelta(seconds=61))
    now = datetime.now(UTC)
    async with w.s.db.uow() as uow:
        held_before = w.clock.now() - timedelta(seconds=60)
        rows = await uow.outbox.claim(now, {"telegram": 100}, now, held_before)
        (lead,) = [r for r in rows if r.purpose == NEWS]
        companions = await uow.outbox.claim_companions(lead, now)
        await uow.commit()
    assert len(companions) == 2
    later = FakeClock(now + timedelta(minutes=5))  # the dead process's lease has run out
    survivor = OutboxDispatcher(
        w.s.db.uow,
        {"telegram": w.telegram},
        {"telegram": RateLimits(1000, 1000, 8)},
        clock=later,
        news_hold=timedelta(seconds=60),
        business_clock=w.clock,
    )
    assert await survivor.recover() == 3
    await survivor.drain()
    (told,) = _news(w)
    assert "Acknowledged by Jane Smith" in told and "Visited; cleaning booked." in told


async def _rows(w: NewsWorld) -> list[Any]:
    """The outbox's bookkeeping columns (not the payload: that is the message)."""
    from sqlalchemy import select

    from storage import tables

    o = tables.outbox.c
    async with w.s.db.engine.connect() as c:
        return list((await c.execute(select(o.purpose, o.status, o.result_ref))).all())
