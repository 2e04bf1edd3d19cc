"""Conversations: plain objects read and written with Core statements, saved once per unit of work.

A conversation turn reads one row and changes it in many places (the steps, the answers, the
review). Loaded through the ORM, that row cost an instrumented object, an identity-map entry and
an autoflushed ``UPDATE`` of every column the session thought dirty (bench/
NEXT_STEPS_CONVERSATION.md: about a tenth of the bot's CPU per update). Here the row is one Core
``SELECT`` into a plain :class:`~bot.domain.Conversation` (the class is not mapped), and the
repository remembers what it handed out and the values it read. The unit of work's ``commit``
calls :meth:`SqlConversationRepo.save` first, so no step can forget to save: each conversation
whose values changed is written with one

    UPDATE conversations SET <changed columns>, seq = :new WHERE id = :id AND seq = :read

a compare-and-set on ``seq``. Every write moves ``seq`` (the steps move it themselves on every
move; a change that did not, such as a nil return cancelling a draft, moves it by one), so two
turns that read the same row cannot both write it: the second matches no row and raises
:class:`~bot.ports.ConversationChanged`; its unit of work rolls back and the update fails, so
the platform delivers it again and it is answered from the row the winner wrote. A new
conversation is one Core ``INSERT`` (its id is needed at once: the buttons carry it).

Within one unit of work the repository is the identity map: a conversation read twice is the
same object, and a query by person first saves what changed (as the ORM's autoflush did), so it
never answers from a row this unit of work has already moved on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import Conversation
from bot.ports import ConversationChanged
from storage import tables
from storage.repositories.base import _Repo

#: The columns a conversation has besides its id, in the order they are read and compared.
_FIELDS = (
    "person_id",
    "flow",
    "form_version_id",
    "campaign_id",
    "status",
    "step",
    "draft",
    "tensions",
    "history",
    "editing",
    "seq",
    "started_at",
    "updated_at",
)
_SEQ = _FIELDS.index("seq")


def _copy(value: Any) -> Any:
    """A copy of a JSON value deep enough that changing the object's draft, tensions or history
    in place still shows as a change (the ORM missed those; the steps reassign anyway)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _values(conv: Conversation) -> tuple[Any, ...]:
    """The conversation's column values now, copied so that later changes do not alter them."""
    return tuple(_copy(getattr(conv, name)) for name in _FIELDS)


@functools.cache  # built once: every turn runs them
def _select() -> Any:
    c = tables.conversations.c
    return select(c.id, *(c[name] for name in _FIELDS))


@functools.cache
def _by_id() -> Any:
    return _select().where(tables.conversations.c.id == bindparam("conversation_id"))


@functools.cache
def _active_for() -> Any:
    c = tables.conversations.c
    return (
        _select()
        .where(c.person_id == bindparam("person_id"), c.status == "active")
        .order_by(c.id.desc())
        .limit(1)
    )


@functools.cache
def _of_person() -> Any:
    c = tables.conversations.c
    return _select().where(c.person_id == bindparam("person_id")).order_by(c.id)


@functools.cache
def _insert() -> Any:
    t = tables.conversations
    return insert(t).values({name: bindparam(name, type_=t.c[name].type) for name in _FIELDS})


@functools.cache
def _update(names: tuple[str, ...]) -> Any:
    """The compare-and-set of the columns ``names`` (``seq`` always among them)."""
    t = tables.conversations
    return (
        update(t)
        .where(t.c.id == bindparam("where_id"), t.c.seq == bindparam("where_seq"))
        .values({name: bindparam(f"new_{name}", type_=t.c[name].type) for name in names})
    )


class SqlConversationRepo(_Repo):
    """Conversations as plain objects, each saved once when the unit of work commits."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        # id -> (the object handed out, its values as last read or written)
        self._held: dict[int, tuple[Conversation, tuple[Any, ...]]] = {}

    async def get(self, conversation_id: int) -> Conversation | None:
        held = self._held.get(conversation_id)
        if held is not None:
            return held[0]
        result = await self.session.execute(_by_id(), {"conversation_id": conversation_id})
        row = result.first()
        return None if row is None else self._hold(row)

    async def active_for(self, person_id: int) -> Conversation | None:
        await self.save()  # the query must not see a row this unit of work has moved on
        row = (await self.session.execute(_active_for(), {"person_id": person_id})).first()
        return None if row is None else self._hold(row)

    async def of_person(self, person_id: int) -> Sequence[Conversation]:
        """Every conversation of one person, oldest first (erasure, subject access)."""
        await self.save()
        rows = (await self.session.execute(_of_person(), {"person_id": person_id})).all()
        return [self._hold(row) for row in rows]

    async def add(self, conversation: Conversation) -> None:
        values = _values(conversation)
        params = dict(zip(_FIELDS, values, strict=True))
        result: Any = await self.session.execute(_insert(), params)
        conversation.id = int(result.inserted_primary_key[0])
        self._held[conversation.id] = (conversation, values)

    async def save(self) -> None:
        """Write every conversation handed out whose values changed, each with one
        compare-and-set on ``seq``; :class:`ConversationChanged` if another transaction wrote
        one since it was read (nothing is written then: the unit of work rolls back)."""
        for conv_id, (conv, seen) in self._held.items():
            now = _values(conv)
            if now == seen:
                continue
            read_seq = seen[_SEQ]
            if conv.seq == read_seq:
                # Every write moves seq, or two turns changing other columns could both pass.
                conv.seq = read_seq + 1
                now = (*now[:_SEQ], conv.seq, *now[_SEQ + 1 :])
            names = tuple(n for n, new, old in zip(_FIELDS, now, seen, strict=True) if new != old)
            params = {f"new_{name}": getattr(conv, name) for name in names}
            params.update(where_id=conv_id, where_seq=read_seq)
            result: Any = await self.session.execute(_update(names), params)
            if result.rowcount != 1:
                raise ConversationChanged(
                    f"conversation {conv_id} was changed by another turn since it was read"
                )
            self._held[conv_id] = (conv, now)

    def forget(self) -> None:
        """Drop what was handed out (the transaction rolled back: their changes are not
        saved by a later commit of this unit of work)."""
        self._held.clear()

    def _hold(self, row: Row[Any]) -> Conversation:
        """The object for ``row``: the one already handed out (it may hold this unit of
        work's changes), or a new plain one remembered with the values read."""
        conv_id = int(row[0])
        held = self._held.get(conv_id)
        if held is not None:
            return held[0]
        values: tuple[Any, ...] = tuple(row[1:])
        conv = Conversation(**dict(zip(_FIELDS, values, strict=True)), id=conv_id)
        # The snapshot must not share the JSON values the object holds (changed in place).
        self._held[conv_id] = (conv, tuple(_copy(v) for v in values))
        return conv
