"""Which database errors are transient: classified by exception type, never by message text.

A transient error (the connection was lost, the server is restarting, SQLite's write lock is
held by another process: "database is locked" is an ``OperationalError``) means "the same work
may succeed if tried again". The unit of work re-raises these as the core's
:class:`~bot.ports.TransientStoreError`, so the core can retry without importing SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy import exc as sa

_TRANSIENT_BUILTIN: tuple[type[BaseException], ...] = (
    sqlite3.OperationalError,  # "database is locked", "disk I/O error", "unable to open"
    ConnectionError,
    OSError,
    TimeoutError,
)
#: asyncpg's transient errors, by name in ``asyncpg.exceptions``.
_PG_TRANSIENT = (
    "PostgresConnectionError",  # cannot connect now, connection does not exist, rejected
    "InterfaceError",  # the connection is closed
    "AdminShutdownError",  # pg_terminate_backend, a fast shutdown
    "CrashShutdownError",
    "CannotConnectNowError",
    "TooManyConnectionsError",
)
_transient_driver_cache: tuple[type[BaseException], ...] | None = None


def _transient_driver() -> tuple[type[BaseException], ...]:
    """The drivers' transient exception types. asyncpg's are taken from the loaded module: on
    PostgreSQL the engine has loaded it; on SQLite it is never loaded (it would cost the
    running process memory), and then none of its exceptions can exist to be classified."""
    global _transient_driver_cache
    if _transient_driver_cache is not None:
        return _transient_driver_cache
    pg = sys.modules.get("asyncpg.exceptions")
    if pg is None:
        return _TRANSIENT_BUILTIN
    _transient_driver_cache = _TRANSIENT_BUILTIN + tuple(getattr(pg, n) for n in _PG_TRANSIENT)
    return _transient_driver_cache


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
    driver = _transient_driver()
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
        if isinstance(current, driver):
            return True
        if isinstance(current, sa.DBAPIError) and isinstance(current.orig, driver):
            return True
        current = current.__cause__
    return False
