"""Campaigns: open once, send once, remind only non-responders, close, catch up after downtime."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.buttons import ButtonAction, Kind
from bot.clock import FakeClock
from bot.common import Sender
from bot.returns.campaigns import CampaignError, schedule_for
from tests.conftest import make_config
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for


def test_schedule_is_local_time() -> None:
    config = make_config("sqlite+aiosqlite:///x")
    winter = schedule_for("2026-12", config)
    assert winter.opens_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    summer = schedule_for("2026-07", config)
    assert summer.opens_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # 09:00 BST
    assert [r.day for r in summer.reminders] == [8, 12]
    assert summer.closes_at == datetime(2026, 7, 15, 16, 0, tzinfo=UTC)
    with pytest.raises(CampaignError, match="YYYY-MM"):
        schedule_for("2026-13", config)


async def _form_buttons(messenger: FakeMessenger, chat: int) -> list[str]:
    return [
        b.data for _, m, _ in messenger.sent if _ == str(chat) for row in m.buttons for b in row
    ]


async def test_a_month_of_ticks(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        del chats["mark@example.org"]  # pretend Mark never linked: re-import keeps him unlinked
        async with s.db.uow() as uow:
            mark = await uow.people.by_email("mark@example.org")
            assert mark is not None
            mark.drop_address("telegram")
            await uow.commit()
        outbox = dispatcher_for(s, messenger)
        await outbox.drain()
        messenger.sent.clear()

        assert (await s.campaigns.tick()).opened == []  # not due before 1 Dec 09:00
        clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
        first = await s.campaigns.tick()
        assert first.opened == ["monthly:2026-12"]
        assert (await s.campaigns.tick()).opened == []  # idempotent
        await outbox.drain()
        # Reporters only (councillors, community leaders), linked ones: Asha, Yusuf, Sarah.
        recipients = sorted(r for r, _, _ in messenger.sent)
        assert recipients == sorted(
            str(chats[e]) for e in ("asha@example.org", "yusuf@example.org", "sarah@example.org")
        )
        assert all("December 2026" in m.plain_text() for _, m, _ in messenger.sent)

        campaign = await s.campaigns.resolve("2026-12")
        assert campaign.id is not None
        # Sarah sends a nil return with the one-tap button.
        sarah = chats["sarah@example.org"]
        nil = ButtonAction(Kind.NIL, campaign.id).encode()
        out = await s.conversation.button(Sender("telegram", sarah, sarah, 9001), nil, "1")
        assert out.toast and "Nil return" in out.toast
        await outbox.drain()

        messenger.sent.clear()
        clock.set(datetime(2026, 12, 8, 9, 0, tzinfo=UTC))
        assert (await s.campaigns.tick()).reminded == {"monthly:2026-12": 2}
        assert (await s.campaigns.tick()).reminded == {}
        await outbox.drain()
        assert sorted(r for r, _, _ in messenger.sent) == sorted(
            str(chats[e]) for e in ("asha@example.org", "yusuf@example.org")
        )
        assert all("Reminder" in m.plain_text() for _, m, _ in messenger.sent)

        clock.set(datetime(2026, 12, 15, 17, 0, tzinfo=UTC))
        assert (await s.campaigns.tick()).closed == ["monthly:2026-12"]
        status = await s.campaigns.status(campaign.id, actor="t")
        assert status.counts == {"nil": 1, "no_reply": 2, "unreachable": 1, "reminded": 2}
        outcome = {p.name: (p.outcome, p.detail) for p in status.people}
        assert outcome["Cllr Mark Evans"] == ("unreachable", "never linked")
        assert outcome["Rev Sarah Jones"] == ("nil", "")

        # A tap on the old form after the close: told it closed, nothing changes.
        asha = chats["asha@example.org"]
        start = ButtonAction(Kind.START, campaign.id).encode()
        late = await s.conversation.button(Sender("telegram", asha, asha, 9002), start, "2")
        assert late.toast == "This return has closed."
        async with s.db.uow() as uow:
            assert await uow.conversations.active_for(1) is None


async def test_catch_up_after_downtime_opens_once_and_reminds_once(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        await link_all(s)
        messenger = FakeMessenger()
        outbox = dispatcher_for(s, messenger)
        await outbox.drain()
        messenger.sent.clear()
        # The bot was down from 1 Dec to 13 Dec: both reminder days have passed.
        clock.set(datetime(2026, 12, 13, 10, 0, tzinfo=UTC))
        report = await s.campaigns.tick()
        assert report.opened == ["monthly:2026-12"]
        assert report.reminded == {}  # reminders planned only for the future
        await outbox.drain()
        assert len(messenger.sent) == 4  # four linked reporters, one form each
        assert (await s.campaigns.tick()).opened == []


async def test_blocked_person_is_marked_unreachable(db_url: str, clock: FakeClock) -> None:
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        messenger = FakeMessenger()
        messenger.blocked.add(str(chats["yusuf@example.org"]))
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        campaign = await s.campaigns.resolve("2026-12")
        assert campaign.id is not None
        status = await s.campaigns.status(campaign.id, actor="t")
        yusuf = next(p for p in status.people if p.name == "Imam Yusuf Khan")
        assert (yusuf.outcome, yusuf.detail) == ("unreachable", "blocked the bot")
        assert status.counts["awaiting"] == 3


async def test_extra_return_targets_wards_and_roles(db_url: str, clock: FakeClock) -> None:
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        await link_all(s)
        from datetime import timedelta

        extra = await s.campaigns.open_extra(
            closes_at=clock.now() + timedelta(hours=24), wards=["heath town"], actor="admin"
        )
        assert extra.kind == "extra" and extra.target_wards == ["Heath Town"]
        assert extra.id is not None
        status = await s.campaigns.status(extra.id, actor="t")
        assert sorted(p.name for p in status.people) == ["Cllr Asha Patel", "Imam Yusuf Khan"]
        with pytest.raises(CampaignError, match="unknown ward"):
            await s.campaigns.open_extra(
                closes_at=clock.now() + timedelta(hours=2), wards=["Atlantis"], actor="admin"
            )
        with pytest.raises(CampaignError, match="at least 30 minutes"):
            await s.campaigns.open_extra(closes_at=clock.now(), actor="admin")


async def test_two_processes_opening_the_same_return_open_it_once(
    db_url: str, clock: FakeClock
) -> None:
    import asyncio

    async with services_for(db_url, clock) as a, services_for(db_url, clock) as b:
        await a.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        await link_all(a)
        results = await asyncio.gather(
            a.campaigns.open_monthly("2026-12", actor="scheduler", force=True),
            b.campaigns.open_monthly("2026-12", actor="cli", force=True),
        )
        assert sorted(created for _, created in results) == [False, True]
        assert results[0][0].id == results[1][0].id
        campaign_id = results[0][0].id
        assert campaign_id is not None
        async with a.db.uow() as uow:
            deliveries = await uow.deliveries.for_campaign(campaign_id)
            assert len(deliveries) == 4  # one per reporter, not two
            counts = await uow.outbox.counts()
        assert counts["pending"] == 4 + 5  # the forms, and the 5 welcome messages from linking
