"""Scale-out on PostgreSQL: three ``tensionbot run`` processes on one database and one fake
Telegram. One leads (an advisory lock) and runs the scheduler; all three send the outbox (rows
claimed with FOR UPDATE SKIP LOCKED). The leader is SIGKILLed mid-send of a 1,000-recipient
return: a survivor takes over within seconds and every recipient gets the form exactly once,
except that a form in flight at the kill may be ``uncertain`` (at most once), never re-sent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sim.world import free_port
from storage import tables
from storage.database import make_engine
from tests.conftest import PG_URL
from tests.test_service import Proc, insert_reporters, outbox_counts, wait_until, write_config

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (TENSIONBOT_TEST_DATABASE_URL)")

N = 1000
MAX_IN_FLIGHT = 4
FORM = "return for December 2026"


async def _uncertain_chats(db_url: str) -> set[int]:
    engine = make_engine(db_url)
    try:
        d, a = tables.deliveries, tables.addresses
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(a.c.chat)
                .join(d, d.c.person_id == a.c.person_id)
                .where(d.c.status == "uncertain", a.c.platform == "telegram")
            )
            return {int(c) for (c,) in rows.all()}
    finally:
        await engine.dispose()


async def test_three_processes_leader_killed_mid_send_nobody_gets_the_form_twice(
    tmp_path: Path, db_url: str, fake_telegram: Any
) -> None:
    began = time.monotonic()
    chats = await insert_reporters(db_url, fake_telegram, N)
    procs = []
    for i in range(3):
        port = free_port()
        config = write_config(
            tmp_path / f"config{i}.toml",
            db_url,
            fake_telegram.base_url,
            port,
            global_rate=45.0,
            per_chat_rate=5.0,
            max_in_flight=MAX_IN_FLIGHT,
            outbox_lease_seconds=5,
        )
        procs.append(Proc(config, tmp_path / f"bot{i}.log", port))
    try:
        await asyncio.gather(*(p.start() for p in procs))
        await asyncio.gather(*(p.ready() for p in procs))
        await wait_until(lambda: _count_leaders(procs), 120, "a leader")  # the first to start leads
        leaders = [p for p in procs if await p.is_leader()]
        assert len(leaders) == 1, "exactly one process leads"
        leader = leaders[0]
        survivors = [p for p in procs if p is not leader]

        def forms() -> dict[int, int]:
            return {
                c: sum(1 for m in fake_telegram.messages(c) if FORM in (m.text or ""))
                for c in chats
            }

        # A quarter of the forms go through, the next are held at the fake: the kill lands
        # mid-send with sends in flight, however fast or slow the machine.
        fake_telegram.hold_sends(N // 4, containing=FORM)
        await survivors[0].cli("campaign", "open", "--period", "2026-12")
        await wait_until(lambda: fake_telegram.held > 0, 120, "a quarter sent")
        await leader.kill9()
        killed_at = time.monotonic()
        sent_at_kill = sum(forms().values())
        assert sent_at_kill == N // 4, "the kill should land mid-send"
        fake_telegram.release_sends()  # the dead leader's held sends are dropped

        async def new_leader() -> bool:
            return any([await p.is_leader() for p in survivors])

        await wait_until(new_leader, 20, "a survivor to take over")
        takeover = time.monotonic() - killed_at

        async def settled() -> bool:
            counts = await outbox_counts(db_url)
            return counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0

        await wait_until(settled, 180, "every outbox row settled")
        received = forms()
        uncertain = await _uncertain_chats(db_url)
        duplicates = sum(1 for k in received.values() if k > 1)
        missing = {c for c, k in received.items() if k == 0}
        once = sum(1 for k in received.values() if k == 1)
        counts = await outbox_counts(db_url)
        print(
            f"\nscale-out: {N} recipients, {once} got the form once, {duplicates} duplicates, "
            f"{len(uncertain)} uncertain ({len(missing)} of them never received it), "
            f"{sent_at_kill} sent before the kill, takeover {takeover:.2f}s, "
            f"outbox {counts}, total {time.monotonic() - began:.1f}s"
        )
        assert duplicates == 0, "somebody got the form twice"
        assert missing <= uncertain, "a recipient was silently lost"
        assert len(uncertain) <= MAX_IN_FLIGHT, "more uncertain than could be in flight"
        assert once + len(missing) == N
        assert takeover < 10
        counts = await outbox_counts(db_url)
        assert counts.get("sent", 0) + counts.get("uncertain", 0) == N, counts
        # A survivor keeps serving: exactly one leader again.
        assert sum([await p.is_leader() for p in survivors]) == 1
    finally:
        await asyncio.gather(*(p.stop() for p in procs))


async def _count_leaders(procs: list[Proc]) -> bool:
    return sum([await p.is_leader() for p in procs]) >= 1
