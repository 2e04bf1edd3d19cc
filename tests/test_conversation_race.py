"""Two turns on one conversation at once: the conversation row is a compare-and-set on ``seq``.

A turn reads its conversation as a plain object and the unit of work saves it once, when it
commits, with ``UPDATE ... WHERE id = :id AND seq = :read`` (storage/repositories/
conversations.py). A turn that lost the race raises ``ConversationChanged``: nothing it did is
kept and the update fails, so the platform delivers it again, and it is then answered from the
conversation the winner left.

Webhook updates are processed concurrently, so two taps of one question can be handled at once.
On PostgreSQL both turns read the row before either saves it, and the compare-and-set decides.
On SQLite the first write of a turn (its update id) takes the database's write lock before the
conversation is read, so the second turn waits and reads what the first saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest

from bot.app import Services
from bot.buttons import ButtonAction
from bot.clock import FakeClock
from bot.common import Sender
from bot.ports import ConversationChanged
from bot.returns.conversation import ConversationService
from storage.database import Database, SqlUnitOfWork
from tests.conftest import backend
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for

STALE = "Already answered: that question has moved on, see the latest message."


@dataclass
class Gate:
    """Where one turn's commit waits: ``arrived`` once it is there, ``opened`` lets it on."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


class HeldUnitOfWork:
    """The real unit of work, whose commit first waits at its gate."""

    def __init__(self, uow: SqlUnitOfWork, gate: Gate) -> None:
        self._uow, self._gate = uow, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)  # the real repositories

    async def __aenter__(self) -> HeldUnitOfWork:
        await self._uow.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._uow.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        self._gate.arrived.set()
        await self._gate.opened.wait()
        await self._uow.commit()

    async def rollback(self) -> None:
        await self._uow.rollback()


class HeldCommits:
    """A unit-of-work factory over the test database: the first ``len(gates)`` units of work
    commit only when their gate opens; later ones pass straight through."""

    def __init__(self, db: Database, held: int) -> None:
        self.db = db
        self.gates = [Gate() for _ in range(held)]
        self._made = 0

    def __call__(self) -> HeldUnitOfWork:
        if self._made < len(self.gates):
            gate = self.gates[self._made]
        else:
            gate = Gate()
            gate.opened.set()
        self._made += 1
        return HeldUnitOfWork(self.db.uow(), gate)


@dataclass
class World:
    s: Services
    messenger: FakeMessenger
    outbox: Any
    chat: int  # Asha's chat

    def last(self) -> Any:
        return [m for r, m, _ in self.messenger.sent if r == str(self.chat)][-1]

    def button(self, label: str) -> str:
        """The payload of the button ``label`` on the last message to Asha."""
        return next(b.data for row in self.last().buttons for b in row if b.label == label)


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[World]:
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        yield World(s, messenger, outbox, chats["asha@example.org"])


async def _start_the_return(w: World) -> None:
    """Asha taps "Report a tension": the ward question, one button per ward."""
    chat = w.chat
    await w.s.conversation.button(
        Sender("telegram", chat, chat, 7000), w.button("Report a tension"), "1"
    )
    await w.outbox.drain()
    assert "Which ward" in w.last().plain_text()


async def test_two_taps_on_one_question_at_once_the_second_saves_nothing_and_is_redelivered(
    world: World,
) -> None:
    w = world
    await _start_the_return(w)
    heath, park = w.button("Heath Town"), w.button("Park")
    assert ButtonAction.decode(heath).seq == ButtonAction.decode(park).seq  # the same question
    held = HeldCommits(w.s.db, held=2)
    s = w.s
    service = ConversationService(
        s.config, held, s.clock, s.forms, s.people, s.actions, s.pact, s.wake
    )

    def tap(update_id: int, data: str) -> Any:
        return service.button(Sender("telegram", w.chat, w.chat, update_id), data, "2")

    # A guard, not a timing: a turn that wrote the row before its commit would wait for the
    # other's row lock (PostgreSQL) while the other waits at its gate.
    async with asyncio.timeout(60):
        first = asyncio.create_task(tap(7001, heath))
        await held.gates[0].arrived.wait()  # the first turn has read and changed the row
        second = asyncio.create_task(tap(7002, park))
        if backend() == "postgresql":
            await held.gates[1].arrived.wait()  # the second has read the same row
        held.gates[0].opened.set()
        assert (await first).toast is None  # Heath Town saved
        held.gates[1].opened.set()
        if backend() == "postgresql":
            with pytest.raises(ConversationChanged):
                await second
            # Nothing of the second turn was kept (its update id neither): Telegram sends the
            # update again, and now the question has moved on.
            again = await tap(7002, park)
        else:
            again = await second  # it waited for the first turn's write lock
    assert again.toast == STALE
    async with s.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None
        assert conv.draft == {"ward": "Heath Town"}
        assert conv.step == "category"
    await w.outbox.drain()
    assert "What kind of tension" in w.last().plain_text()  # the first tap's next question


async def test_a_conversation_saved_by_another_unit_of_work_since_it_was_read_is_not_overwritten(
    world: World,
) -> None:
    w = world
    await _start_the_return(w)
    db = w.s.db
    async with db.uow() as first, db.uow() as second:
        mine = await first.conversations.active_for(1)
        theirs = await second.conversations.active_for(1)
        assert mine is not None and theirs is not None and mine is not theirs
        read = mine.seq
        mine.draft, mine.step, mine.seq = {"ward": "Heath Town"}, "category", read + 1
        await first.commit()
        # Only the draft changes here (no step moved seq): the save still checks and moves it.
        theirs.draft = {"ward": "Park"}
        with pytest.raises(ConversationChanged):
            await second.commit()
    async with db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None
        assert (conv.draft, conv.step, conv.seq) == ({"ward": "Heath Town"}, "category", read + 1)


async def test_a_change_that_does_not_move_seq_is_saved_and_moves_it(world: World) -> None:
    """Every write moves seq (a nil return cancelling a draft does not move it itself), so the
    compare-and-set also holds between two such changes."""
    w = world
    await _start_the_return(w)
    async with w.s.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None
        read = conv.seq
        conv.status = "cancelled"
        await uow.commit()
        assert conv.seq == read + 1
    async with w.s.db.uow() as uow:
        assert await uow.conversations.active_for(1) is None
        again = await uow.conversations.get(conv.id or 0)
        assert again is not None and (again.status, again.seq) == ("cancelled", read + 1)


async def test_a_unit_of_work_hands_out_one_object_per_conversation_and_reads_its_own_changes(
    world: World,
) -> None:
    w = world
    await _start_the_return(w)
    async with w.s.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None and conv.id is not None
        assert await uow.conversations.get(conv.id) is conv
        conv.status = "cancelled"
        # Asked again by person, it answers from the row as this unit of work left it.
        assert await uow.conversations.active_for(1) is None
        await uow.rollback()
    async with w.s.db.uow() as uow:
        kept = await uow.conversations.active_for(1)
        assert kept is not None and kept.status == "active"  # rolled back: nothing saved


async def test_a_turn_that_read_a_conversation_before_retention_redacted_it_saves_nothing(
    world: World,
) -> None:
    """Retention's redaction moves seq too: a turn that read the draft before it cannot save
    the free text back."""
    w = world
    await _start_the_return(w)
    db = w.s.db
    async with db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None and conv.id is not None
        conv.draft = {"ward": "Heath Town", "what": "Leaflets on Oak Street"}
        await uow.commit()
    async with db.uow() as turn:
        mine = await turn.conversations.active_for(1)
        assert mine is not None and mine.id is not None
        async with db.uow() as retention:
            redacted = {"draft": {"ward": "Heath Town"}, "tensions": [], "history": []}
            await retention.privacy.set_fields("conversations", mine.id, redacted)
            await retention.commit()
        mine.draft = {**mine.draft, "category": "Religion or faith"}
        with pytest.raises(ConversationChanged):
            await turn.commit()
    async with db.uow() as uow:
        kept = await uow.conversations.active_for(1)
        assert kept is not None and kept.draft == {"ward": "Heath Town"}
