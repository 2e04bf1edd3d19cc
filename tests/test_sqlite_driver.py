"""SQLite's driver (storage/sqlite_driver.py): one trip to aiosqlite's thread per statement, with
the results, row counts, inserted ids and errors SQLAlchemy gets from aiosqlite itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.database import make_engine

_meta = MetaData()
_t = Table("t", _meta, Column("id", Integer, primary_key=True), Column("v", String, unique=True))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite engine as the service makes it, with one small table."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}")
    async with engine.begin() as conn:
        await conn.run_sync(_meta.create_all)
    yield engine
    await engine.dispose()


@contextmanager
def trips() -> Iterator[list[int]]:
    """Count the calls handed to aiosqlite's thread (each a hand-off and a wake-up)."""
    count = [0]
    original = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]


async def test_a_statement_is_one_trip_to_the_database_thread(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(insert(_t), {"v": "a"})
        with trips() as count:
            rows = (await conn.execute(select(_t.c.v))).all()
        assert rows == [("a",)]
        assert count[0] == 1  # aiosqlite's own cursor: cursor, execute, fetchall, close
        with trips() as count:
            await conn.execute(update(_t).values(v="b"))
        assert count[0] == 1


async def test_a_write_committed_then_returned_to_the_pool_is_two_trips(
    engine: AsyncEngine,
) -> None:
    """The statement and its commit; the pool's rollback of a connection that has no open
    transaction (after a commit, or after only reading) costs no trip, and a transaction left
    open is still rolled back when the connection goes back to the pool."""
    with trips() as count:
        async with engine.begin() as conn:
            await conn.execute(insert(_t), {"v": "a"})
    assert count[0] == 2  # INSERT, COMMIT: no ROLLBACK trip on the way back to the pool
    with trips() as count:
        async with engine.connect() as conn:
            await conn.execute(select(_t.c.v))
    assert count[0] == 1  # a read and nothing to end
    async with engine.connect() as conn:
        await conn.execute(insert(_t), {"v": "left open"})
        # Closed without commit: the pool's rollback must still reach SQLite.
    async with engine.connect() as conn:
        assert await conn.scalar(select(_t.c.v).where(_t.c.v == "left open")) is None
        await conn.execute(insert(_t), {"v": "b"})  # and the write lock was released
        await conn.commit()


async def test_results_row_counts_ids_and_errors_are_the_drivers(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(insert(_t), {"v": "a"})
        assert first.inserted_primary_key == (1,)
        many = await conn.execute(insert(_t), [{"v": "b"}, {"v": "c"}])
        assert many.rowcount == 2
        changed = await conn.execute(update(_t).where(_t.c.v != "a").values(v=_t.c.v + "!"))
        assert changed.rowcount == 2
        returned = await conn.execute(
            update(_t).where(_t.c.v == "a").values(v="z").returning(_t.c.id, _t.c.v)
        )
        assert returned.all() == [(1, "z")]
        assert (await conn.execute(select(_t.c.v).where(_t.c.id == 99))).first() is None
    async with engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(insert(_t), {"v": "z"})
        await conn.rollback()
        assert (await conn.scalar(select(_t.c.v).where(_t.c.id == 1))) == "z"
