"""Engine, sessions and the unit of work."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
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
from storage.privacy import SqlPrivacyRepo


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dispatcher read while a handler writes; the busy timeout avoids "database is
    # locked" under concurrent writers; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, *, echo: bool = False, encryption_key: str | None = None) -> AsyncEngine:
    """Create the async engine for a database URL (SQLite files get their folder created).

    With ``encryption_key`` (one Fernet key, or several separated by commas) the free-text
    columns are encrypted at rest by this engine (see ``storage.encryption``)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A small pool: every transaction opening a connection (and running the pragmas
        # above) cost more than the transaction itself (bench/RESULTS.md). WAL lets the pooled
        # connections read while one writes.
        kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=5, max_overflow=10)
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    attach_cipher(
        engine.sync_engine.dialect, make_cipher(encryption_key) if encryption_key else None
    )
    return engine


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
        self.state = r.SqlStateRepo(session)
        self.pact = r.SqlPactRepo(session)
        self.privacy = SqlPrivacyRepo(session)
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
        """Make the transaction's changes durable."""
        assert self._session is not None
        await self._session.commit()

    async def rollback(self) -> None:
        """Discard the transaction's changes."""
        assert self._session is not None
        await self._session.rollback()


class Database:
    """The engine plus a unit-of-work factory."""

    def __init__(self, url: str, *, echo: bool = False, encryption_key: str | None = None) -> None:
        start_mappers()
        self.url = url
        self.engine = make_engine(url, echo=echo, encryption_key=encryption_key)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def uow(self) -> SqlUnitOfWork:
        """A fresh unit of work."""
        return SqlUnitOfWork(self.sessions)

    async def dispose(self) -> None:
        """Close all connections."""
        await self.engine.dispose()
