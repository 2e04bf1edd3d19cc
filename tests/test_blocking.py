"""A person who blocks the bot is found at once, not at the next send (issue 18, point 8), and
offered the open return when they unblock it. Over HTTP: the real python-telegram-bot
Application against the fake Bot API, which sends ``my_chat_member`` updates as Telegram does
(and only to a bot that asked for them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.domain import DeliveryState
from sim.fake_telegram import FakeTelegram
from sim.scripts import until
from sim.world import SimWorld
from tests.conftest import make_config
from tests.helpers import PEOPLE_CSV


@pytest.fixture
async def world(db_url: str, fake_telegram: Any, clock: FakeClock) -> AsyncIterator[SimWorld]:
    config = make_config(db_url, fake_telegram.base_url)
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


async def _sarah(world: SimWorld) -> tuple[Any, Any]:
    async with world.services.db.uow() as uow:
        person = await uow.people.by_email("sarah@example.org")
        assert person is not None and person.id is not None
        deliveries = await uow.deliveries.for_person(person.id)
    return person, deliveries


def _forms(user: Any) -> list[Any]:
    return [m for m in user.messages if "return for December" in (m.text or "")]


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` (up to a minute on a busy machine: it bounds a failure only)."""
    for _ in range(1200):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


async def test_blocking_the_bot_is_noticed_at_once_and_unblocking_offers_the_return(
    world: SimWorld,
) -> None:
    sarah = await world.link("sarah@example.org", 503, "Sarah")
    await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    await sarah.wait_for("return for December")
    await world.settle()
    sends_before = len(world.fake.calls_for("sendMessage"))

    await sarah.block_bot()

    async def blocked() -> bool:
        person, deliveries = await _sarah(world)
        return person.blocked_at is not None and [d.status for d in deliveries] == [
            DeliveryState.UNREACHABLE.value
        ]

    await _until(blocked)  # a condition, not a time: no send is needed to find out
    _, (delivery,) = await _sarah(world)
    assert delivery.detail == "blocked the bot"
    # Found from the update: nothing was sent to the chat to find out.
    assert len(world.fake.calls_for("sendMessage")) == sends_before

    await sarah.unblock_bot()
    await until(lambda: len(_forms(sarah)) == 2, 60)
    person, (delivery,) = await _sarah(world)
    assert person.blocked_at is None and delivery.status != DeliveryState.UNREACHABLE.value


async def test_the_fake_sends_my_chat_member_only_to_a_bot_that_asked_for_it() -> None:
    fake = FakeTelegram()
    await fake.start()
    try:
        user = fake.user(77, "Ann")
        url = f"{fake.base_url}/bot{fake.token}/getUpdates"
        async with aiohttp.ClientSession() as http:
            answer = await http.post(url, json={"allowed_updates": ["message"], "timeout": 0})
            assert (await answer.json())["result"] == []
            await user.block_bot()
            await user.send_text("hello")  # writing again unblocks, as in Telegram
            answer = await http.post(url, json={"timeout": 0})  # the setting is kept
            kinds = [set(u) - {"update_id"} for u in (await answer.json())["result"]]
            assert kinds == [{"message"}]
            answer = await http.post(url, json={"allowed_updates": [], "timeout": 0})
            await user.block_bot()  # the default includes my_chat_member
            answer = await http.post(url, json={"timeout": 0})
            kinds = [set(u) - {"update_id"} for u in (await answer.json())["result"]]
            assert {"my_chat_member"} in kinds
    finally:
        await fake.stop()
