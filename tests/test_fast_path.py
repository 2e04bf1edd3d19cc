"""The fast path for replies (bot/delivery/direct.py): a reply is queued already claimed by the
process that handled the update and sent right after the commit. It keeps every guarantee the
dispatcher's path had: sent once after a kill -9 (the lease runs out and recovery sends it),
within the per-chat limit, and a webhook update delivered twice answers once. Over HTTP, against
the fake Bot API (its 429s and its held sends time the tests, never a sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, text

from bot.clock import FakeClock
from sim.fake_telegram import FakeTelegram
from sim.scripts import until
from sim.world import SimWorld, free_port
from tests.conftest import TOKEN, make_config
from tests.helpers import PEOPLE_CSV, webhook_section
from tests.processes import BotProcess, write_bot_config
from tests.test_restart import _link_everyone


@pytest.fixture
async def strict_telegram() -> AsyncIterator[FakeTelegram]:
    """A fake Bot API that answers 429 past 1 message a second to one chat (Telegram's rule)."""
    fake = FakeTelegram(token=TOKEN, bot_username="swp_tension_bot", per_chat_rate=1)
    await fake.start()
    yield fake
    await fake.stop()


async def test_replies_sent_at_once_keep_the_per_chat_limit(
    db_url: str, strict_telegram: FakeTelegram, clock: FakeClock
) -> None:
    config = make_config(
        db_url,
        strict_telegram.base_url,
        telegram={"global_rate": 200.0, "per_chat_rate": 1.0, "per_chat_burst": 1},
    )
    world = await SimWorld.start(config, strict_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        sarah = await world.link("sarah@example.org", 503, "Sarah")
        await world.settle()
        # Three replies to one chat at once: /report's two (the intro and the first question),
        # then /help's, sent while the first two are still within the chat's second.
        await sarah.send_command("/report")
        await sarah.send_command("/help")
        await sarah.wait_for("Which ward")
        await sarah.wait_for("/status")
        await world.settle()
        assert strict_telegram.throttled == 0, "a reply went past the chat's limit"
        texts = [m.text or "" for m in sarah.messages]
        assert sum("Which ward" in t for t in texts) == 1
    finally:
        await world.stop()


async def test_a_webhook_update_delivered_twice_is_answered_once(
    db_url: str, fake_telegram: FakeTelegram, clock: FakeClock
) -> None:
    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        telegram=webhook_section(port),
    )
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await until(lambda: fake_telegram.calls_for("setWebhook"), 30)
        await world.import_people(PEOPLE_CSV)
        sarah = await world.link("sarah@example.org", 503, "Sarah")
        await world.settle()
        url, secret = fake_telegram._webhook_url, fake_telegram._webhook_secret
        assert url is not None and secret is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        entity = [{"type": "bot_command", "offset": 0, "length": 7}]
        update = {
            "update_id": 9_000_001,
            "message": sarah._message(text="/report", entities=entity),
        }

        async def post() -> int:
            async with aiohttp.ClientSession() as http:
                async with http.post(url, json=update, headers=headers) as answer:
                    return answer.status

        # Telegram posts an update again when it missed our 200: once after the first was
        # handled, and twice at the same moment. A 500 (the two collided in the database) is
        # posted again until it is answered, as Telegram does.
        assert await post() == 200
        for status in await asyncio.gather(post(), post()):
            while status != 200:
                assert status == 500
                status = await post()
        await world.settle()
        texts = [m.text or "" for m in sarah.messages]
        assert sum("Which ward" in t for t in texts) == 1, "the update was answered twice"
        assert sum("Report a tension" in t for t in texts) == 1
    finally:
        await world.stop()


@pytest.fixture
async def bot(tmp_path: Path, db_url: str, fake_telegram: Any) -> AsyncIterator[BotProcess]:
    config = write_bot_config(tmp_path, db_url, fake_telegram.base_url)
    process = BotProcess(config, tmp_path / "bot.log")
    yield process
    await process.stop()


async def test_killed_between_the_commit_and_the_reply_the_reply_is_sent_once_after_restart(
    bot: BotProcess, fake_telegram: Any
) -> None:
    await bot.start()
    (user,) = await _link_everyone(bot, fake_telegram, 1)
    # /report is committed and its replies (the intro, then the first question) are on their
    # way; the question is held at the platform when the process is killed: its row is claimed
    # by the dead process.
    fake_telegram.hold_sends(0, containing="Which ward")
    await user.send_command("/report")
    await until(lambda: fake_telegram.held > 0, timeout=120)
    await bot.kill9()
    fake_telegram.release_sends()  # the dead process's held send is dropped, never delivered
    await bot.start()
    # The claim's lease (1 s) runs out and the new process's recovery sends the reply.
    await user.wait_for("Which ward", timeout=120)
    # A round trip after it: the reply to /help comes after any copy of the question.
    await user.send_command("/help")
    await user.wait_for("/status", timeout=120)
    questions = [m for m in user.messages if "Which ward" in (m.text or "")]
    assert len(questions) == 1, "the reply was sent twice"


async def test_replies_sent_by_the_fast_path_are_recorded_without_loading_their_rows(
    db_url: str, fake_telegram: FakeTelegram, clock: FakeClock
) -> None:
    """The recorder marks a sent reply ``sent`` with one UPDATE per batch (a reply's result
    needs nothing from its row: no delivery, no hook that cares), not a SELECT of each row
    and an ORM flush: the fast path's own cost per update."""
    config = make_config(db_url, fake_telegram.base_url)
    world = await SimWorld.start(config, fake_telegram, clock)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    engine = world.services.db.engine.sync_engine
    try:
        await world.import_people(PEOPLE_CSV)
        sarah = await world.link("sarah@example.org", 503, "Sarah")
        await world.settle()
        event.listen(engine, "before_cursor_execute", seen)
        await sarah.send_command("/report")
        await sarah.wait_for("Which ward")
        await world.settle()
        event.remove(engine, "before_cursor_execute", seen)
        loads = [s for s in statements if s.startswith("select") and "where outbox.id" in s]
        assert loads == [], "the recorder loaded the replies' rows"
        async with world.services.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT status, result_ref FROM outbox WHERE purpose = 'reply'")
                )
            ).all()
        assert rows and all(status == "sent" and ref for status, ref in rows)
    finally:
        await world.stop()
