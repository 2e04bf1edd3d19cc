"""Inbound updates and requests already handled (redelivery and replay checks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Insert, delete, insert, select

from storage import tables
from storage.repositories.base import _Repo


class SqlInboundRepo(_Repo):
    """Updates already handled."""

    async def seen(self, platform: str, update_id: int, at: datetime) -> bool:
        """Record the update; True if it had been recorded before (a redelivery)."""
        t = tables.inbound_updates
        found = await self.session.scalar(
            select(t.c.update_id).where(t.c.platform == platform, t.c.update_id == update_id)
        )
        if found is not None:
            return True
        await self.session.execute(insert(t).values(platform=platform, update_id=update_id, at=at))
        return False


class SqlSeenRequestRepo(_Repo):
    """Requests already accepted, each until it expires (shared by every process)."""

    async def add(self, key: str, expires: datetime) -> bool:
        """Record ``key``; False if it is already recorded (until purged). Two
        transactions adding one key at once: one gets True, the other False (the insert
        waits for the first to finish, then does nothing)."""
        t = tables.seen_requests
        # The dialect in use only: SQLAlchemy's PostgreSQL dialect costs a SQLite process memory.
        statement: Insert
        if self.session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            statement = postgresql_insert(t).on_conflict_do_nothing(index_elements=["key"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(t).on_conflict_do_nothing(index_elements=["key"])
        result = await self.session.execute(statement.values(key=key, expires=expires))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def purge(self, now: datetime) -> int:
        """Forget the keys expired by ``now``; how many."""
        t = tables.seen_requests
        result = await self.session.execute(delete(t).where(t.c.expires <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]
