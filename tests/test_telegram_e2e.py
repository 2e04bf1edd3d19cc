"""End to end over HTTP: the real python-telegram-bot Application, our handlers, services,
outbox and database, against a local fake Telegram Bot API server (the only thing faked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.forms import FormDefinition
from sim.scripts import fill_tension, tension, until
from sim.world import SimWorld, free_port
from tests.conftest import backend, make_config
from tests.helpers import PEOPLE_CSV, webhook_section


@pytest.fixture
async def world(db_url: str, fake_telegram: Any, clock: FakeClock) -> AsyncIterator[SimWorld]:
    config = make_config(db_url, fake_telegram.base_url)
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


async def _form(world: SimWorld) -> FormDefinition:
    async with world.services.db.uow() as uow:
        return (await world.services.forms.current(uow)).definition


async def test_monthly_return_end_to_end(world: SimWorld) -> None:
    fake = world.fake
    asha = await world.link("asha@example.org", 501, "Asha")
    yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
    await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    await asha.wait_for("tension return for December 2026")
    await yusuf.wait_for("tension return for December 2026")

    await yusuf.press("Nothing to report")
    await yusuf.wait_for("nil return is recorded")

    form = await _form(world)
    await asha.press("Report a tension")
    evil = "Posters saying <b>go home</b> & <!channel> <@U024BE7LH> <a href='http://x'>here</a>"
    await fill_tension(asha, form, tension("Heath Town", "race", evil, level="3"))
    review = asha.last
    assert review is not None and review.parse_mode == "HTML"
    assert "&lt;b&gt;go home&lt;/b&gt; &amp; &lt;!channel&gt;" in (review.text or "")
    assert "<a " not in (review.text or "")
    await asha.press("Submit")
    done = await asha.wait_for("has been submitted")
    assert "TR-2026-12-0001" in (done.text or "")

    campaign = await world.services.campaigns.resolve("2026-12")
    assert campaign.id is not None
    status = await world.services.campaigns.status(campaign.id, actor="t")
    assert status.counts["responded"] == 1 and status.counts["nil"] == 1
    # Every button tap was answered (the spinner stops) and nothing was sent twice.
    assert len(fake.calls_for("answerCallbackQuery")) >= 12
    forms = [m for m in fake.messages(asha.chat_id) if "return for December" in (m.text or "")]
    assert len(forms) == 1


async def test_unknown_users_and_odd_messages(world: SimWorld) -> None:
    stranger = world.fake.user(9999, first_name="Eve")
    await stranger.send_text("hello")
    refusal = await stranger.wait_for("only for people invited")
    assert "Prevent and Cohesion Officer" in (refusal.text or "")
    await stranger.send_command("/start", "made-up-token")
    await stranger.wait_for("not valid")
    async with world.services.db.uow() as uow:
        assert await uow.people.by_address("telegram", "9999") is None
        assert await uow.state.get("nothing") is None

    asha = await world.link("asha@example.org", 501, "Asha")
    await asha.send_sticker()
    await asha.wait_for("only take typed text")
    await asha.send_voice()
    await asha.wait_for("not a voice note")
    await asha.send_command("/frobnicate")
    await asha.wait_for("don't know that command")
    await asha.send_command("/help")
    await asha.wait_for("/report")


async def test_platform_errors_are_retried_or_recorded(world: SimWorld) -> None:
    fake = world.fake
    asha = await world.link("asha@example.org", 501, "Asha")
    yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
    sarah = await world.link("sarah@example.org", 503, "Sarah")
    fake.inject(429, method="sendMessage", chat_id=asha.chat_id, retry_after=1)
    fake.inject(500, method="sendMessage", chat_id=yusuf.chat_id, times=2)
    fake.block(sarah.chat_id)
    await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    await asha.wait_for("return for December", timeout=60)
    await yusuf.wait_for("return for December", timeout=60)
    await world.settle()
    assert world.runtime.dispatcher.stats.throttled >= 1
    for user in (asha, yusuf):
        forms = [m for m in fake.messages(user.chat_id) if "return for December" in (m.text or "")]
        assert len(forms) == 1
    campaign = await world.services.campaigns.resolve("2026-12")
    assert campaign.id is not None
    status = await world.services.campaigns.status(campaign.id, actor="t")
    by_name = {p.name: (p.outcome, p.detail) for p in status.people}
    assert by_name["Rev Sarah Jones"] == ("unreachable", "blocked the bot")
    assert by_name["Cllr Asha Patel"][0] == "awaiting"
    # Writing to the bot again makes a person reachable again.
    await sarah.send_command("/status")
    async with world.services.db.uow() as uow:
        person = await uow.people.by_email("sarah@example.org")
        assert person is not None
    for _ in range(1200):  # up to a minute: a condition, not a time
        async with world.services.db.uow() as uow:
            person = await uow.people.by_email("sarah@example.org")
        if person is not None and person.blocked_at is None:
            break
        await asyncio.sleep(0.05)
    assert person is not None and person.blocked_at is None


async def test_fan_out_respects_rate_limits(db_url: str, clock: FakeClock) -> None:
    from sim.fake_telegram import FakeTelegram

    fake = FakeTelegram(token="123456:TEST-TOKEN", global_rate=30, per_chat_rate=1)
    await fake.start()
    config = make_config(
        db_url,
        fake.base_url,
        telegram={"global_rate": 28.0, "per_chat_rate": 1.0, "max_in_flight": 8},
    )
    world = await SimWorld.start(config, fake, clock)
    try:
        rows = "".join(f"Person {i},councillor,Park,p{i}@example.org,\n" for i in range(45))
        await world.import_people("name,role,wards,email,slack_user_id\n" + rows)
        links = await world.services.people.issue_invites(actor="t")
        users = []
        for i, link in enumerate(links):
            user = fake.user(7000 + i, first_name=f"P{i}")
            await user.send_command("/start", link.url.split("start=")[1])
            users.append(user)
        for user in users:
            await user.wait_for("Welcome", timeout=60)
        await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
        for user in users:
            await user.wait_for("return for December", timeout=60)
        assert fake.throttled == 0  # ran within Telegram's limits
        sends = sorted(c.at for c in fake.calls_for("sendMessage"))
        window = max(sum(1 for t in sends if s <= t < s + 1.0) for s in sends)
        assert window <= 30
    finally:
        await world.stop()
        await fake.stop()


async def test_webhook_mode(db_url: str, fake_telegram: Any, clock: FakeClock) -> None:
    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        telegram=webhook_section(port),
    )
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        await until(lambda: fake_telegram.calls_for("setWebhook"))
        asha = await world.link("asha@example.org", 501, "Asha")
        await asha.send_command("/report")
        await asha.wait_for("Which ward")
        async with aiohttp.ClientSession() as http:
            forged = await http.post(
                f"http://127.0.0.1:{port}/telegram",
                json={"update_id": 1},
                headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
            )
            assert forged.status == 403
    finally:
        await world.stop()


async def test_reference_numbers_are_unique_under_concurrency(world: SimWorld) -> None:
    form = await _form(world)
    users = [
        await world.link(e, 600 + i, f"U{i}")
        for i, e in enumerate(("asha@example.org", "yusuf@example.org", "sarah@example.org"))
    ]
    for user in users:
        await user.send_command("/report")
    await asyncio.gather(
        *(
            fill_tension(u, form, tension("Park", "other", "A concern about the park gates."))
            for u in users
        )
    )
    for user in users:
        await user.press("Submit")
    refs = set()
    for user in users:
        msg = await user.wait_for("has been submitted")
        refs |= {
            w
            for w in (msg.text or "").replace("<code>", " ").replace("</code>", " ").split()
            if w.startswith("TR-")
        }
    assert len(refs) == 3
    assert datetime(2026, 12, 1, tzinfo=UTC) <= world.clock.now()


@pytest.mark.skipif(backend() != "sqlite", reason="a SQLite write lock held by another process")
async def test_webhook_update_that_failed_is_answered_5xx_and_processed_once_when_redelivered(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    """The database is write-locked by another connection (another process) for longer than the
    busy timeout while Asha sends /report: the webhook answers 5xx (not 200), her update's id is
    not recorded, and once the lock is released Telegram's re-delivery is processed: one reply."""
    import aiosqlite

    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        telegram=webhook_section(port),
        database={"sqlite_busy_seconds": 0.3},
    )
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        await until(lambda: fake_telegram.calls_for("setWebhook"))
        asha = await world.link("asha@example.org", 501, "Asha")
        await world.settle()
        path = db_url.removeprefix("sqlite+aiosqlite:///")
        async with aiosqlite.connect(path, timeout=30) as other:
            await other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
            seen = len(fake_telegram.webhook_answers)
            await asha.send_command("/report")
            failed = await until(
                lambda: [a for a in fake_telegram.webhook_answers[seen:] if a.status >= 500]
            )
            update_id = failed[0].update_id
            async with other.execute(
                "SELECT count(*) FROM inbound_updates WHERE update_id = ?", (update_id,)
            ) as cursor:
                assert await cursor.fetchone() == (0,)  # not recorded as processed
            assert not asha.messages[-1].text or "Which ward" not in asha.messages[-1].text
            await other.rollback()  # the other process finishes: the database is back
        await asha.wait_for("Which ward", timeout=30)
        await until(lambda: fake_telegram.webhook_pending == 0, timeout=30)
        await world.settle()
        answers = [a.status for a in fake_telegram.webhook_answers_for(update_id)]
        assert answers[-1] == 200 and all(s >= 500 for s in answers[:-1]), answers
        assert sum("Which ward" in (m.text or "") for m in asha.messages) == 1
        assert fake_telegram.webhook_dropped == []
        async with world.services.db.uow() as uow:
            assert await uow.inbound.seen("telegram", update_id, clock.now())  # now it is
    finally:
        await world.stop()


async def test_a_send_telegram_took_but_answered_504_is_repeated_for_a_reply_never_a_form(
    world: SimWorld, clock: FakeClock
) -> None:
    """Telegram's front end answers 504 after its back end carried the call out: the bot cannot
    know. A reply is sent again (at least once: a repeated answer is harmless, a missing one
    leaves someone stuck); a form is not (at most once: it becomes uncertain)."""
    from datetime import timedelta

    fake = world.fake
    asha = await world.link("asha@example.org", 501, "Asha")
    yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
    await world.settle()  # the welcomes are out (one names /report) before the fault is set
    fake.inject(504, method="sendMessage", chat_id=asha.chat_id, carried_out=True)
    n = len(asha.messages)
    await asha.send_command("/help")
    await asha.wait_for("/report", after=n)  # in the chat, though the bot was told 504
    fake.inject(504, method="sendMessage", chat_id=yusuf.chat_id, carried_out=True)
    await world.services.campaigns.open_monthly("2026-12", actor="t", force=True)
    await world.settle()
    for _ in range(6):  # every retry the backoff would allow, and more (not the follow-up)
        clock.advance(timedelta(minutes=10))
        world.services.wake()
        await world.settle()
    helps = [m for m in asha.messages[n:] if "/report" in (m.text or "")]
    assert len(helps) == 2, "the reply Telegram took but answered 504 was not sent again"
    forms = [m for m in yusuf.messages if "return for December" in (m.text or "")]
    assert len(forms) == 1, f"the form reached Yusuf {len(forms)} times"
    campaign = await world.services.campaigns.resolve("2026-12")
    assert campaign.id is not None
    status = await world.services.campaigns.status(campaign.id, actor="t")
    detail = {p.name: p.detail for p in status.people}["Imam Yusuf Khan"]
    assert detail.startswith("delivery uncertain (no answer from the platform)"), detail
