"""Which database errors are worth retrying, by type and SQLite result code: a held write lock
is; a missing table is not (retrying it for ever would leave rows 'sending' until recovery
turned them into uncertain forms or duplicate replies)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from storage.database import make_engine
from storage.errors import is_transient


async def test_a_held_lock_is_transient_and_a_missing_table_is_not(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    engine = make_engine(f"sqlite+aiosqlite:///{path}", sqlite_busy_seconds=0.1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER UNIQUE)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        errors: dict[str, BaseException] = {}
        for name, sql in (
            ("missing", "SELECT * FROM nope"),
            ("duplicate", "INSERT INTO t VALUES (1)"),
        ):
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(sql))
            except Exception as exc:
                errors[name] = exc
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another process's write lock
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
        except Exception as exc:
            errors["locked"] = exc
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    finally:
        await engine.dispose()
    assert is_transient(errors["locked"])
    assert not is_transient(errors["missing"])
    assert not is_transient(errors["duplicate"])
    # Raised while handling a lost connection, an IntegrityError is still an IntegrityError.
    try:
        try:
            raise ConnectionError("lost")
        except ConnectionError:
            raise errors["duplicate"]  # noqa: B904
    except Exception as exc:
        assert not is_transient(exc)
