"""A form in flight when the bot was killed is ``uncertain``: not re-sent at once (at most once),
but followed up ``outbox.uncertain_followup_hours`` later with wording that makes a duplicate
harmless; once only, recorded, shown in ``campaign status``, and never to someone who has
answered meanwhile.

The kill is real (SIGKILL of ``tensionbot run``) and lands while two forms are held at the fake
Telegram; what follows runs in-process on the same database with a fake clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_services
from bot.clock import FakeClock
from bot.config import load_config
from bot.domain import DeliveryState
from bot.runtime import Runtime
from tests.conftest import TOKEN
from tests.helpers import telegram_chat
from tests.processes import BotProcess, write_bot_config
from tests.test_restart import _link_everyone

FORM = "return for December 2026"
FOLLOW_UP = "In case our earlier message did not reach you"
HOURS = 2


@pytest.fixture
async def bot(tmp_path: Path, db_url: str, fake_telegram: Any) -> AsyncIterator[BotProcess]:
    config = write_bot_config(tmp_path, db_url, fake_telegram.base_url, max_in_flight=2)
    config.write_text(config.read_text() + f"[outbox]\nuncertain_followup_hours = {HOURS}\n")
    process = BotProcess(config, tmp_path / "bot.log")
    yield process
    await process.stop()


async def _until(predicate: Any, what: str) -> None:
    """Wait for something the bot does (generous: a busy machine is slow, never wrong)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_uncertain_form_is_followed_up_after_the_configured_hours_once(
    bot: BotProcess, fake_telegram: Any
) -> None:
    n = 6
    await bot.start()
    users = await _link_everyone(bot, fake_telegram, n)
    held = [users[0], users[1]]  # their forms are held at the fake: in flight at the kill
    for user in held:
        fake_telegram.inject(0, method="sendMessage", chat_id=user.chat_id, hang=30)

    def form_calls(chat_id: int) -> int:
        return sum(1 for c in fake_telegram.calls_for("sendMessage")
                   if c.chat_id == chat_id and FORM in str(c.params.get("text", "")))  # fmt: skip

    await bot.cli("campaign", "open", "--period", "2026-12")
    await _until(lambda: all(form_calls(u.chat_id) for u in held), "both held forms in flight")
    await bot.kill9()

    config = load_config(bot.config, env={"TENSIONBOT_TELEGRAM_TOKEN": TOKEN})
    clock = FakeClock(datetime.now(UTC))
    services = await build_services(config, clock=clock)
    runtime = Runtime(services, TOKEN, run_scheduler=False)
    task = asyncio.create_task(runtime.run())
    try:
        campaign = await services.campaigns.resolve(period="2026-12")
        assert campaign.id is not None

        async def statuses() -> dict[int, str]:
            async with services.db.uow() as uow:
                people = {p.id: telegram_chat(p) for p in await uow.people.all()}
                assert campaign.id is not None
                return {
                    int(people[d.person_id] or 0): d.status
                    for d in await uow.deliveries.for_campaign(campaign.id)
                }

        async def settled() -> bool:
            async with services.db.uow() as uow:
                counts = await uow.outbox.counts()
            return not counts.get("pending") and not counts.get("sending")

        # The restarted bot settles the dead process's sends: the held forms become uncertain
        # (never re-sent at once), the rest go out.
        await _until(settled, "the outbox settled")
        status = await statuses()
        assert {status[u.chat_id] for u in held} == {DeliveryState.UNCERTAIN.value}
        assert all(form_calls(u.chat_id) == 1 for u in held), "not re-sent at once"

        # One of the two answers meanwhile (asking for the form with /return).
        answering = held[1]
        await answering.send_command("/return")
        form = await answering.wait_for(FORM, timeout=30)
        await answering.press("Nothing to report this time", form)
        await answering.wait_for("nil return is recorded", timeout=30)

        clock.advance(timedelta(hours=HOURS) - timedelta(minutes=5))
        assert (await services.campaigns.tick()).followed_up == {}, "not before the hours"

        clock.advance(timedelta(minutes=10))
        report = await services.campaigns.tick()
        assert report.followed_up == {campaign.key: 1}
        follow_up = await held[0].wait_for(FOLLOW_UP, timeout=30)
        assert FORM in (follow_up.text or "") and follow_up.buttons()

        clock.advance(timedelta(hours=HOURS * 3))
        assert (await services.campaigns.tick()).followed_up == {}, "once only"
        await _until(settled, "the outbox settled again")
        status = await statuses()
        assert status[held[0].chat_id] == DeliveryState.SENT.value
        assert status[answering.chat_id] == DeliveryState.NIL.value

        def follow_ups(chat_id: int) -> int:
            return sum(1 for m in fake_telegram.messages(chat_id) if FOLLOW_UP in (m.text or ""))

        assert follow_ups(held[0].chat_id) == 1
        assert all(follow_ups(u.chat_id) == 0 for u in users[1:]), "only the uncertain, unanswered"

        shown = await services.campaigns.status(campaign.id, actor="test")
        assert shown.counts.get("followed_up") == 1
        (row,) = [p for p in shown.people if p.followed_up_at is not None]
        assert row.name == f"Person {held[0].chat_id - 8000}" and "followed up" in row.detail
    finally:
        runtime.stop()
        await task
        await services.close()
