"""Key/value bot state."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from storage import tables
from storage.repositories.base import _Repo


class SqlStateRepo(_Repo):
    """Key/value state."""

    async def get(self, key: str) -> str | None:
        t = tables.bot_state
        return await self.session.scalar(select(t.c.value).where(t.c.key == key))

    async def set(self, key: str, value: str) -> None:
        t = tables.bot_state
        result = await self.session.execute(update(t).where(t.c.key == key).values(value=value))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(insert(t).values(key=key, value=value))
