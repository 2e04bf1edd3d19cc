"""Inbound updates and requests already handled (redelivery and replay checks)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select

from bot.domain import Speaker
from storage import tables
from storage.repositories.base import _Repo, upsert_insert
from storage.repositories.people import speaker_columns, speaker_match


@functools.cache  # built once per dialect: it runs for every update
def _seen_insert(dialect: str) -> Any:
    return upsert_insert(dialect, tables.inbound_updates).on_conflict_do_nothing()


@functools.cache  # built once per dialect: it starts every turn
def _first_from(dialect: str) -> Any:
    """``INSERT INTO inbound_updates SELECT :platform, :update_id, :at FROM`` the speaker's
    address and person ``ON CONFLICT DO NOTHING RETURNING`` the speaker's columns: a stranger
    selects no row (nothing stored), a redelivery conflicts (nothing returned).

    RETURNING may name only the inserted table, so each column is a scalar subquery (an index
    look-up each). SQLite's RETURNING is rendered without table names, so each subquery reads
    one table (``people`` by the id that ``addresses`` gives): an unqualified name is then
    that table's, never ambiguous."""
    u = tables.inbound_updates.c
    a, p = tables.addresses.c, tables.people.c
    joined, match = speaker_match()
    platform, address = match[0].right, match[1].right  # the :platform, :address parameters
    rows = (
        select(
            platform,
            bindparam("update_id", type_=u.update_id.type),
            bindparam("at", type_=u.at.type),
        )
        .select_from(joined)
        .where(*match)
    )
    here = (a.platform == platform, a.address == address)
    person_id = select(a.person_id).where(*here).scalar_subquery()
    columns = []
    for c in speaker_columns():
        if c.table is tables.addresses:
            column = select(c).where(*here)
        else:
            column = select(c).where(p.id == person_id)
        columns.append(column.scalar_subquery().label(c.name))
    return (
        upsert_insert(dialect, tables.inbound_updates)
        .from_select(["platform", "update_id", "at"], rows)
        .on_conflict_do_nothing()
        .returning(*columns)
    )


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

    async def first_from(
        self, platform: str, address: str, update_id: int, at: datetime
    ) -> Speaker | None:
        statement = _first_from(self.session.get_bind().dialect.name)
        params = {"platform": platform, "address": address, "update_id": update_id, "at": at}
        row = (await self.session.execute(statement, params)).first()
        return None if row is None else Speaker(*row)


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
