"""Leader election: which of several ``tensionbot run`` processes runs the scheduler.

On PostgreSQL the leader holds a session-level advisory lock (``pg_try_advisory_lock``) on a
dedicated connection, kept open for as long as it leads. If the process dies its connection
closes and PostgreSQL releases the lock, so a follower's next attempt takes over. On SQLite (one
process by design) the single process is always the leader.

Also here: :func:`database_status`, the readiness probe (reachable, migrations current).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.migrate import current_revision, head_revision

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 74110001
"""The advisory lock's key (migrations use the transaction-level lock 7411)."""


class LeaderLock(Protocol):
    """A lock that at most one process holds."""

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this process holds it now."""
        ...

    async def still_held(self) -> bool:
        """Whether this process still holds the lock (False if its connection was lost)."""
        ...

    async def release(self) -> None:
        """Give the lock up (and close its connection)."""
        ...


class LocalLock:
    """SQLite: one process by design, always the leader."""

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class PgAdvisoryLock:
    """A PostgreSQL session-level advisory lock held on its own connection."""

    def __init__(
        self, engine: AsyncEngine, key: int = LEADER_LOCK_KEY, *, timeout: float = 5.0
    ) -> None:
        self.engine = engine
        self.key = key
        self.timeout = timeout
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            return await self.still_held()
        try:
            conn = await asyncio.wait_for(self._connect(), self.timeout)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("leader election: cannot reach the database (%s)", type(exc).__name__)
            return False
        try:
            got = await asyncio.wait_for(
                conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}),
                self.timeout,
            )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("leader election: lock attempt failed (%s)", type(exc).__name__)
            await self._discard(conn)
            return False
        if not got:
            await self._discard(conn)
            return False
        self._conn = conn
        return True

    async def _connect(self) -> AsyncConnection:
        conn = await self.engine.connect()
        # Autocommit: the connection never sits idle in a transaction while it holds the lock.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    async def still_held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            held = await asyncio.wait_for(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND granted "
                        "AND ((classid::bigint << 32) | objid::bigint) = :k"
                    ),
                    {"k": self.key},
                ),
                self.timeout,
            )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.error("leader election: lost the lock's connection (%s)", type(exc).__name__)
            self._conn = None
            await self._discard(conn, invalidate=True)
            return False
        if not held:
            self._conn = None
            await self._discard(conn, invalidate=True)
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key}),
                self.timeout,
            )
        except (SQLAlchemyError, OSError, TimeoutError):
            await self._discard(conn, invalidate=True)
            return
        await self._discard(conn)

    @staticmethod
    async def _discard(conn: AsyncConnection, *, invalidate: bool = False) -> None:
        try:
            if invalidate:
                # Never hand a connection that may still hold the lock back to the pool.
                await conn.invalidate()
            await conn.close()
        except (SQLAlchemyError, OSError):  # pragma: no cover - already broken
            pass


def leader_lock(engine: AsyncEngine) -> LeaderLock:
    """The lock for this database: advisory on PostgreSQL, always held on SQLite."""
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLock(engine)
    return LocalLock()


@dataclass(frozen=True)
class DatabaseStatus:
    """What /readyz reports about the database."""

    reachable: bool
    revision: str | None = None
    head: str | None = None
    error: str | None = None

    @property
    def current(self) -> bool:
        """Migrated to the newest revision shipped with this code."""
        return self.reachable and self.revision == self.head


async def database_status(engine: AsyncEngine, *, timeout: float = 3.0) -> DatabaseStatus:
    """Reachable (a connection within ``timeout``) and at which migration revision."""
    head = head_revision()
    try:
        revision = await asyncio.wait_for(current_revision(engine), timeout)
    except Exception as exc:  # a probe reports, never raises
        return DatabaseStatus(False, None, head, type(exc).__name__)
    return DatabaseStatus(True, revision, head)
