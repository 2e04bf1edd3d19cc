"""Run and check Alembic migrations from code (``tensionbot db upgrade``, start-up, tests).

The running service checks its schema at every start and on every readiness probe, but
migrates only when the database is behind. So the check does not load Alembic (some 130
modules that would stay in the process's memory for as long as it runs): the head is read from
the migration files' ``revision`` and ``down_revision`` lines, and the database's revision from
Alembic's ``alembic_version`` table (tests/test_migrations.py checks both against Alembic's own
answers). Alembic itself is imported only to migrate, and ``tensionbot run`` migrates in a child
process (:func:`upgrade_in_child`), so even a start that migrates does not keep it.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
#: How :func:`upgrade_in_child` hands the database URL to the child: in its environment, not on
#: its command line, which any local user can read (``ps``) and which may hold a password.
ENV_CHILD_URL = "TENSIONBOT_MIGRATE_CHILD_URL"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def alembic_config(url: str = "") -> AlembicConfig:
    """An Alembic config pointing at our migrations (no alembic.ini needed)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Several processes may start at once: one migrates, the others wait and find it done.
        connection.execute(text("SELECT pg_advisory_xact_lock(7411)"))
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (at the head already: nothing to do, and
    Alembic is not loaded)."""
    if revision == "head" and await current_revision(engine) == head_revision():
        return
    await _migrate(engine, _upgrade, revision)


async def upgrade_in_child(engine: AsyncEngine, url: str) -> None:
    """Bring the schema at ``url`` (which ``engine`` connects to) up to the head in a child
    process (``python -m storage.migrate``), when it is behind: Alembic and the migration
    scripts (about 13 MiB resident, bench/FOOTPRINT.md) are then never loaded into the calling
    process. Raises :class:`RuntimeError` when the child fails (its own errors are on stderr)."""
    if await current_revision(engine) == head_revision():
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "storage.migrate", env={**os.environ, ENV_CHILD_URL: url}
    )
    if await child.wait() != 0:
        raise RuntimeError(f"the database migration failed (exit status {child.returncode})")


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database schema back to ``revision``."""
    await _migrate(engine, _downgrade, revision)


async def _migrate(
    engine: AsyncEngine, step: Callable[[Connection, str], None], revision: str
) -> None:
    """Run ``step`` in one transaction. On SQLite, foreign keys are off meanwhile: changing a
    table there means rebuilding it (Alembic's batch mode), and dropping the old table with
    foreign keys on would delete, by cascade, every row that points at it (0012a rebuilds
    ``people``). The pragma only takes effect outside a transaction, so it comes first; the
    keys are checked before the commit and turned on again after it."""
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            await connection.run_sync(step, revision)
            if sqlite:
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} broken foreign keys")
            await connection.commit()
        finally:
            if sqlite:
                await connection.rollback()  # nothing left to roll back after a commit
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _current(connection: Connection) -> str | None:
    """What Alembic's ``MigrationContext.get_current_revision`` answers, read directly."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:  # one line of migrations: Alembic refuses several heads too
        raise RuntimeError(f"{VERSION_TABLE} holds several revisions: {sorted(rows)}")
    return str(rows[0]) if rows else None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _assigned(path: Path, name: str) -> object:
    """The literal assigned to ``name`` at the top level of a migration file (or None)."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        targets: list[ast.expr]
        if isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        if value is not None and any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(value)
    return None


@functools.cache
def head_revision() -> str | None:
    """The newest revision shipped with this code: the one revision no other revises. (Several,
    say after a merge of two branches without a merge migration: Alembic is asked, and says
    what is wrong.)"""
    revised: set[str] = set()
    revisions: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        revision = _assigned(path, "revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        down = _assigned(path, "down_revision")  # None, one revision, or a merge's several
        if isinstance(down, str):
            revised.add(down)
        elif isinstance(down, tuple | list):
            revised.update(str(d) for d in down)
    heads = revisions - revised
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _upgrade_url(url: str) -> None:
    """Upgrade the database at ``url`` to the head, as ``tensionbot db upgrade`` does."""
    from storage.database import Database

    database = Database(url)
    try:
        await upgrade(database.engine)
    finally:
        await database.dispose()


if __name__ == "__main__":  # the child of upgrade_in_child
    asyncio.run(_upgrade_url(os.environ[ENV_CHILD_URL]))
