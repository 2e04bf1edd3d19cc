"""Key/value bot state."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from storage import tables
from storage.repositories.base import _Repo, upsert_insert


class SqlStateRepo(_Repo):
    """Key/value state."""

    async def get(self, key: str, *, lock: bool = False) -> str | None:
        t = tables.bot_state
        stmt = select(t.c.value).where(t.c.key == key)
        if lock:  # PostgreSQL: until this transaction ends (SQLite serialises writers anyway)
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def set(self, key: str, value: str) -> None:
        t = tables.bot_state
        result = await self.session.execute(update(t).where(t.c.key == key).values(value=value))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(insert(t).values(key=key, value=value))

    async def swap(self, key: str, old: str | None, new: str) -> bool:
        """Compare-and-set in one statement: PostgreSQL re-checks the WHERE on the row a
        concurrent writer committed (READ COMMITTED), so nothing another transaction wrote
        since ``old`` was read is overwritten."""
        t = tables.bot_state
        if old is None:
            stmt = upsert_insert(self.session.get_bind().dialect.name, t).values(key=key, value=new)
            result = await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
        else:
            result = await self.session.execute(
                update(t).where(t.c.key == key, t.c.value == old).values(value=new)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]
