"""The start of a turn: who wrote, from which chat, and whether the update is new.

Driven through the core service on the test database (SQLite and PostgreSQL): a person writing
from a chat we did not know is answered there and the chat becomes theirs (taken from whoever
held it); writing again clears a block; someone who has left is answered as a stranger, with
nothing stored, not even the update id.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Services
from bot.clock import FakeClock
from bot.common import Sender
from bot.domain import Person
from storage import tables
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for

_updates = itertools.count(70_000)


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> Any:
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, messenger)
        await outbox.drain()
        yield s, messenger, outbox, chats


async def _person(s: Services, email: str) -> Person:
    async with s.db.uow() as uow:
        person = await uow.people.by_email(email)
        assert person is not None
        return person


def _chat(person: Person) -> str | None:
    address = person.address_on("telegram")
    return None if address is None else address.chat


async def _counts(s: Services) -> dict[str, int]:
    async with s.db.uow() as uow:
        session = uow.people.session  # type: ignore[attr-defined]
        return {
            t.name: await session.scalar(select(func.count()).select_from(t))
            for t in tables.metadata.sorted_tables
        }


async def test_a_person_writing_from_another_chat_is_answered_there_and_the_chat_is_theirs(
    world: Any,
) -> None:
    s, messenger, outbox, chats = world
    sarah, asha = chats["sarah@example.org"], chats["asha@example.org"]
    to_sarah = len(messenger.texts_to(sarah))
    # Sarah writes from the chat Asha's replies went to (e.g. a shared device's chat).
    await s.conversation.command(Sender("telegram", sarah, asha, next(_updates)), "help")
    await outbox.drain()
    assert "/report" in messenger.texts_to(asha)[-1]
    assert len(messenger.texts_to(sarah)) == to_sarah
    assert _chat(await _person(s, "sarah@example.org")) == str(asha)
    assert _chat(await _person(s, "asha@example.org")) is None  # taken from its holder
    # From a chat nobody had: answered there, and it is hers from now on.
    await s.conversation.command(Sender("telegram", sarah, 424_242, next(_updates)), "help")
    await outbox.drain()
    assert "/report" in messenger.texts_to(424_242)[-1]
    assert _chat(await _person(s, "sarah@example.org")) == "424242"
    # Writing from it again changes nothing.
    await s.conversation.command(Sender("telegram", sarah, 424_242, next(_updates)), "status")
    await outbox.drain()
    assert len(messenger.texts_to(424_242)) == 2
    assert _chat(await _person(s, "sarah@example.org")) == "424242"


async def test_writing_again_clears_a_block(world: Any) -> None:
    s, messenger, outbox, chats = world
    async with s.db.uow() as uow:
        person = await uow.people.by_email("yusuf@example.org")
        assert person is not None
        person.blocked_at = datetime(2026, 11, 30, tzinfo=UTC)
        await uow.commit()
    yusuf = chats["yusuf@example.org"]
    await s.conversation.command(Sender("telegram", yusuf, yusuf, next(_updates)), "help")
    await outbox.drain()
    assert "/report" in messenger.texts_to(yusuf)[-1]
    person = await _person(s, "yusuf@example.org")
    assert person.blocked_at is None and _chat(person) == str(yusuf)


async def test_someone_who_has_left_is_refused_and_nothing_is_stored(world: Any) -> None:
    s, messenger, outbox, chats = world
    await s.people.set_active("yusuf@example.org", False, actor="t")
    await outbox.drain()
    before, sent = await _counts(s), len(messenger.sent)
    yusuf = chats["yusuf@example.org"]
    for call in (
        s.conversation.command(Sender("telegram", yusuf, yusuf, next(_updates)), "report"),
        s.conversation.text(Sender("telegram", yusuf, 515_151, next(_updates)), "hello"),
        s.conversation.text(Sender("telegram", yusuf, yusuf, None), "hello"),
    ):
        outcome = await call
        assert outcome.direct is not None
        assert "only for people invited" in outcome.direct.plain_text()
    await outbox.drain()
    assert await _counts(s) == before  # not even the update ids
    assert len(messenger.sent) == sent
    assert _chat(await _person(s, "yusuf@example.org")) == str(yusuf)


async def test_a_redelivered_update_changes_nothing_even_from_another_chat(world: Any) -> None:
    s, messenger, outbox, chats = world
    jane = chats["jane@example.org"]
    update = next(_updates)
    await s.conversation.command(Sender("telegram", jane, jane, update), "help")
    await outbox.drain()
    sent, before = len(messenger.sent), await _counts(s)
    again = await s.conversation.command(Sender("telegram", jane, 626_262, update), "help")
    await outbox.drain()
    assert again.direct is None and again.toast is None
    assert len(messenger.sent) == sent and await _counts(s) == before
    assert _chat(await _person(s, "jane@example.org")) == str(jane)
