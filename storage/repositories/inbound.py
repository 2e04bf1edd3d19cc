"""Inbound updates and requests already handled (redelivery and replay checks)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import delete

from storage import tables
from storage.repositories.base import _Repo, upsert_insert


@functools.cache  # built once per dialect: it runs for every update
def _seen_insert(dialect: str) -> Any:
    return upsert_insert(dialect, tables.inbound_updates).on_conflict_do_nothing()


class SqlInboundRepo(_Repo):
    """Updates already handled."""

    async def seen(self, platform: str, update_id: int, at: datetime) -> bool:
        """Record the update; True if it had been recorded before (a redelivery)."""
        # One statement, not a look-up and an insert: the key is written in the update's own
        # transaction, and two deliveries of one update at once cannot both get False (the
        # second insert waits for the first transaction, then does nothing).
        statement = _seen_insert(self.session.get_bind().dialect.name)
        params = {"platform": platform, "update_id": update_id, "at": at}
        result = await self.session.execute(statement, params)
        return not result.rowcount  # type: ignore[attr-defined]


class SqlSeenRequestRepo(_Repo):
    """Requests already accepted, each until it expires (shared by every process)."""

    async def add(self, key: str, expires: datetime) -> bool:
        """Record ``key``; False if it is already recorded (until purged). Two
        transactions adding one key at once: one gets True, the other False (the insert
        waits for the first to finish, then does nothing)."""
        t = tables.seen_requests
        statement = upsert_insert(self.session.get_bind().dialect.name, t)
        statement = statement.on_conflict_do_nothing(index_elements=["key"])
        result = await self.session.execute(statement.values(key=key, expires=expires))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def purge(self, now: datetime) -> int:
        """Forget the keys expired by ``now``; how many."""
        t = tables.seen_requests
        result = await self.session.execute(delete(t).where(t.c.expires <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]
