"""Engine, sessions and the unit of work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bot.ports import TransientStoreError
from storage import repositories as r
from storage.encryption import attach_cipher, make_cipher
from storage.errors import is_transient
from storage.orm import start_mappers
from storage.privacy import PURGED_TABLES, SqlPrivacyRepo

log = logging.getLogger(__name__)


def _sqlite_pragmas(busy_seconds: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the dispatcher read while a handler writes; the busy timeout avoids
        # "database is locked" under concurrent writers; foreign keys are off by default.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted and overwritten content is zeroed in the file, not left in free space (some
        # builds do this by default; the erasure promise must not depend on the build).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return on_connect


def make_engine(
    url: str,
    *,
    echo: bool = False,
    encryption_key: str | None = None,
    sqlite_busy_seconds: float = 10.0,
) -> AsyncEngine:
    """Create the async engine for a database URL (SQLite files get their folder created).

    With ``encryption_key`` (one Fernet key, or several separated by commas) the free-text
    columns are encrypted at rest by this engine (see ``storage.encryption``). On SQLite a
    writer waits up to ``sqlite_busy_seconds`` for another's write lock, then fails."""
    parsed = make_url(url)
    # Statement parameters are report text, names and emails: never in a log line or in the
    # text of an error (bot/logs.py keeps the drivers' own loggers quiet).
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A small pool: every transaction opening a connection (and running the pragmas
        # above) cost more than the transaction itself (bench/RESULTS.md). WAL lets the pooled
        # connections read while one writes.
        kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=5, max_overflow=10)
        if parsed.get_driver_name() == "aiosqlite":
            from storage.sqlite_driver import one_trip_dbapi

            # One trip to aiosqlite's thread per statement, not three or four.
            kwargs["module"] = one_trip_dbapi()
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_busy_seconds))
    attach_cipher(
        engine.sync_engine.dialect, make_cipher(encryption_key) if encryption_key else None
    )
    return engine


#: Other backends whose transaction began before ``started`` and that hold a snapshot or a
#: transaction id: VACUUM FULL must keep the row versions they may still see. In every database
#: of the cluster, not only this one: a backend in another database can hold back this one's
#: horizon too (PostgreSQL's PROC_AFFECTS_ALL_HORIZONS, e.g. while a database is being created
#: from a template; CI found erased ids kept while other tests created theirs). Sessions of
#: other roles are visible only to a role with pg_read_all_stats (deploy/postgres-roles.sql).
_OLDER_SNAPSHOTS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) AND xact_start < :started"
)

_MAY_SWITCH_WAL = (
    "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR "
    "(pg_has_role('pg_checkpoint', 'MEMBER') AND "
    "has_function_privilege('pg_switch_wal()', 'EXECUTE'))"
)


class SqlUnitOfWork:
    """One transaction over one ``AsyncSession``; rolls back unless committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        session = self._sessions()
        self._session = session
        self.people = r.SqlPeopleRepo(session)
        self.invites = r.SqlInviteRepo(session)
        self.forms = r.SqlFormRepo(session)
        self.campaigns = r.SqlCampaignRepo(session)
        self.deliveries = r.SqlDeliveryRepo(session)
        self.conversations = r.SqlConversationRepo(session)
        self.reports = r.SqlReportRepo(session)
        self.outbox = r.SqlOutboxRepo(session)
        self.actions = r.SqlActionRepo(session)
        self.figures = r.SqlFigureRepo(session)
        self.audit = r.SqlAuditRepo(session)
        self.inbound = r.SqlInboundRepo(session)
        self.seen = r.SqlSeenRequestRepo(session)
        self.state = r.SqlStateRepo(session)
        self.pact = r.SqlPactRepo(session)
        # Erasure and subject access read conversations through the same repository, so they
        # are the same plain objects and saved with the rest at commit.
        self.privacy = SqlPrivacyRepo(session, self.conversations)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        # close() rolls back anything uncommitted and detaches the objects *without* expiring
        # them, so results stay readable after the unit of work ends.
        try:
            await self._session.close()
        except Exception as close_exc:
            if exc is None or not is_transient(close_exc):
                raise
            # The connection died with the transaction: the error that matters is ``exc``.
        finally:
            self._session = None
        if (
            exc is not None
            and not isinstance(exc, TransientStoreError | OSError | TimeoutError)
            and is_transient(exc)
        ):
            # The core retries by type and imports no SQLAlchemy: say "try again later". (OSError
            # and TimeoutError are left as they are: the core knows them, and they need not have
            # come from the database.)
            raise TransientStoreError(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def commit(self) -> None:
        """Save the conversations handed out (one compare-and-set each: ``ConversationChanged``
        when another turn saved one first), then make the transaction's changes durable."""
        assert self._session is not None
        await self.conversations.save()
        await self._session.commit()

    async def rollback(self) -> None:
        """Discard the transaction's changes."""
        assert self._session is not None
        self.conversations.forget()
        await self._session.rollback()


class Database:
    """The engine plus a unit-of-work factory."""

    #: How long the purge's VACUUM FULL waits for each table's lock (seconds).
    purge_lock_timeout = 5.0
    #: How long the purge waits for older snapshots in this database to end (seconds).
    purge_snapshot_wait = 30.0

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        encryption_key: str | None = None,
        sqlite_busy_seconds: float = 10.0,
    ) -> None:
        start_mappers()
        self.url = url
        self.engine = make_engine(
            url,
            echo=echo,
            encryption_key=encryption_key,
            sqlite_busy_seconds=sqlite_busy_seconds,
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def uow(self) -> SqlUnitOfWork:
        """A fresh unit of work."""
        return SqlUnitOfWork(self.sessions)

    async def purge(self) -> bool:
        """Clear erased and redacted values out of the database files (:class:`bot.ports.Purger`).

        SQLite: with ``secure_delete`` the main file is zeroed as rows change, but the old pages
        stay in the ``-wal`` file; a TRUNCATE checkpoint copies the WAL back and empties it.
        PostgreSQL: an UPDATE or DELETE leaves the old row version (and its index entries) in
        place until VACUUM, and a plain VACUUM frees the space without clearing it (the page is
        compacted; the old bytes stay in its free space: tests/test_erasure_on_disk.py found
        the name and report text there). So the tables erasure and retention write to are
        rewritten with VACUUM FULL into new files, and the old files are emptied (each table is
        locked while it is rewritten, one at a time). The audit log is not among them: it is
        append-only, and the service may not own it (deploy/README.md). Then, when the role
        may (superuser, or ``pg_checkpoint`` and EXECUTE on ``pg_switch_wal``), the
        write-ahead log moves to a new segment and a checkpoint lets the server remove the
        segments that held the old values (deleted, not kept for reuse, with
        ``wal_recycle = off``).

        VACUUM FULL copies a dead row version into the new file while any transaction in the
        database may still see it (an older snapshot: a long report query, autovacuum's ANALYZE;
        CI found the report text kept so). So the purge first waits, up to
        ``purge_snapshot_wait``, for every transaction that began before it and holds a
        snapshot. True when everything was cleared; False when something had to be left for
        the next purge (a busy table or WAL, a snapshot that did not end)."""
        if self.engine.dialect.name == "sqlite":
            async with self.engine.connect() as conn:
                for _ in range(3):
                    row = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
                    if row[0] == 0:  # not busy: the WAL is empty
                        return True
                log.warning("purge: the WAL is busy; erased data stays in it until it is reused")
            return False
        complete = True
        async with self.engine.connect() as conn:
            # VACUUM cannot run inside a transaction block.
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await self._older_snapshots_ended(auto):
                complete = False
                log.warning(
                    "purge: a transaction older than the change still holds a snapshot; "
                    "old row versions it may see go at the next purge"
                )
            # While VACUUM FULL waits for its lock every later query on the table queues behind
            # it: give up on a table another transaction holds too long, rather than stall the
            # bot; the next purge rewrites it.
            timeout_ms = int(self.purge_lock_timeout * 1000)
            await auto.exec_driver_sql(f"SET lock_timeout = {timeout_ms}")
            for table in PURGED_TABLES:
                try:
                    await auto.exec_driver_sql(f"VACUUM (FULL) {table}")
                except DBAPIError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                        raise
                    log.warning("purge: %s is busy; its old rows go at the next purge", table)
                    complete = False
            await auto.exec_driver_sql("RESET lock_timeout")
            may = (await auto.exec_driver_sql(_MAY_SWITCH_WAL)).scalar_one()
            if may:
                await auto.exec_driver_sql("SELECT pg_switch_wal()")
                await auto.exec_driver_sql("CHECKPOINT")
            else:
                log.info("purge: no right to switch the WAL; old segments go at the checkpoints")
        return complete

    async def _older_snapshots_ended(self, auto: AsyncConnection) -> bool:
        """Wait until no other backend in this database holds a snapshot from a transaction
        that began before now (polling; the bot's other tasks go on meanwhile)."""
        started = (await auto.exec_driver_sql("SELECT clock_timestamp()")).scalar_one()
        deadline = time.monotonic() + self.purge_snapshot_wait
        while True:
            older = (await auto.execute(_OLDER_SNAPSHOTS, {"started": started})).scalar_one()
            if not older:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)

    async def dispose(self) -> None:
        """Close all connections."""
        await self.engine.dispose()
