"""Crash safety: the bot runs as a real process and is killed with SIGKILL mid-conversation and
mid-campaign. After a restart the person carries on at the same question and nobody gets the form
twice. (The fake Telegram server runs in the test process, so it sees every call.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sim.scripts import until
from tests.processes import BotProcess, write_bot_config


@pytest.fixture
async def bot(tmp_path: Path, db_url: str, fake_telegram: Any) -> AsyncIterator[BotProcess]:
    config = write_bot_config(tmp_path, db_url, fake_telegram.base_url, max_in_flight=2)
    process = BotProcess(config, tmp_path / "bot.log")
    yield process
    await process.stop()


async def _link_everyone(bot: BotProcess, fake: Any, n: int) -> list[Any]:
    rows = "".join(f"Person {i},councillor,Park,p{i}@example.org\n" for i in range(n))
    csv_file = bot.config.parent / "people.csv"
    csv_file.write_text("name,role,wards,email\n" + rows)
    await bot.cli("people", "import", str(csv_file))
    out = await bot.cli("invites", "--format", "csv")
    rows_out = [line.split(",") for line in out.strip().splitlines()[1:]]
    users = []
    for name, _email, link, _expires in rows_out:
        i = int(name.removeprefix("Person "))  # chat id 8000 + i belongs to "Person i"
        user = fake.user(8000 + i, first_name=f"P{i}")
        await user.send_command("/start", link.split("start=")[1])
        users.append(user)
    for user in users:
        await user.wait_for("Welcome", timeout=120)
    return users


async def test_killed_mid_conversation_resumes_at_the_same_question(
    bot: BotProcess, fake_telegram: Any
) -> None:
    await bot.start()
    (user,) = await _link_everyone(bot, fake_telegram, 1)
    await user.send_command("/report")
    await user.wait_for("Which ward")
    await user.press("Heath Town")
    await user.wait_for("What kind of tension")
    await user.press("Religion or faith")
    await user.wait_for("What is happening")
    await bot.kill9()

    # While the bot is down the person answers; Telegram keeps the update for us.
    await user.send_text("Hostile graffiti on the gurdwara wall, twice this week.")
    await bot.start()
    await user.wait_for("Where exactly", timeout=120)
    await user.press("Skip")
    await user.wait_for("Since when", timeout=120)
    await bot.kill9()
    await bot.start()
    await user.send_command("/return")
    resumed = await user.wait_for("Carrying on where you left off", timeout=120)
    assert "Since when" in (resumed.text or "")


async def test_killed_mid_campaign_nobody_gets_the_form_twice(
    bot: BotProcess, fake_telegram: Any
) -> None:
    n = 30
    await bot.start()
    users = await _link_everyone(bot, fake_telegram, n)
    fake_telegram.hold_sends(n // 3, containing="return for December 2026")
    await bot.cli("campaign", "open", "--period", "2026-12")

    def forms_received() -> dict[int, int]:
        return {
            u.chat_id: sum(
                1
                for m in fake_telegram.messages(u.chat_id)
                if "return for December 2026" in (m.text or "")
            )
            for u in users
        }

    # The fake lets a third of the forms through and holds the rest unanswered: the kill lands
    # mid-campaign however fast or slow the machine is (a poll of the count raced the bot, and
    # on a busy machine all 30 went before the kill).
    await until(lambda: fake_telegram.held > 0, timeout=180)
    await bot.kill9()
    got_before = sum(forms_received().values())
    assert got_before == n // 3, "the kill should land mid-campaign"

    await asyncio.sleep(1.2)  # let the dead process's leases expire (longer is harmless)
    fake_telegram.release_sends()  # the dead process's held sends are dropped
    await bot.start()
    for _ in range(600):
        status = await bot.cli("campaign", "status", "--period", "2026-12", "--json")
        counts = json.loads(status)["counts"]
        if (
            counts.get("queued", 0) == 0
            and sum(forms_received().values()) + counts.get("awaiting", 0) >= n
        ):
            break
        await asyncio.sleep(0.1)
    received = forms_received()
    assert max(received.values()) == 1, "somebody got the form twice"
    report = json.loads(await bot.cli("campaign", "status", "--period", "2026-12", "--json"))
    uncertain = {p["name"] for p in report["people"] if "uncertain" in p["detail"]}
    missing = {f"Person {cid - 8000}" for cid, k in received.items() if k == 0}
    # A send in flight at the moment of SIGKILL is not repeated (at most once): it is reported
    # as uncertain (the next reminder round covers it), never silently lost.
    assert missing <= uncertain
    assert len(uncertain) <= 2  # at most max_in_flight sends can be in flight
    assert report["counts"].get("queued", 0) == 0
