"""Which database errors are transient: classified by exception type, never by message text.

A transient error (the connection was lost, the server is restarting, SQLite's write lock is
held by another process: "database is locked" is an ``OperationalError``) means "the same work
may succeed if tried again". The unit of work re-raises these as the core's
:class:`~bot.ports.TransientStoreError`, so the core can retry without importing SQLAlchemy.
"""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions as pg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa

_TRANSIENT_DRIVER: tuple[type[BaseException], ...] = (
    sqlite3.OperationalError,  # "database is locked", "disk I/O error", "unable to open"
    pg.PostgresConnectionError,  # cannot connect now, connection does not exist, rejected
    pg.InterfaceError,  # the connection is closed
    pg.AdminShutdownError,  # pg_terminate_backend, a fast shutdown
    pg.CrashShutdownError,
    pg.CannotConnectNowError,
    pg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    TimeoutError,
)


# SQLite's primary result codes that pass: another connection holds the lock, or the disk
# hiccupped. Everything else SQLite calls an OperationalError ("no such table", "attempt to
# write a readonly database", a syntax error) will fail the same way every time.
_SQLITE_TRANSIENT = {5, 6, 10, 14}  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN


def _sqlite_code(exc: BaseException) -> int | None:
    """The SQLite primary result code behind ``exc``, if SQLite raised it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` (or an exception it was raised from) says "try again later".

    Only ``__cause__`` is followed (what the exception was raised from), not ``__context__``
    (what was being handled when it happened): an IntegrityError raised while handling a lost
    connection is still an IntegrityError."""
    code = _sqlite_code(exc)
    if code is not None:
        return code in _SQLITE_TRANSIENT
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa.OperationalError | sa.InterfaceError | sa.DisconnectionError):
            return True
        if isinstance(current, sa.TimeoutError):  # the pool found no free connection in time
            return True
        if isinstance(current, _TRANSIENT_DRIVER):
            return True
        if isinstance(current, sa.DBAPIError) and isinstance(current.orig, _TRANSIENT_DRIVER):
            return True
        current = current.__cause__
    return False
