"""SQLite through aiosqlite with one trip to the database thread per statement.

aiosqlite runs every sqlite3 call on a thread of its own, and SQLAlchemy's adapter makes four of
those calls for a query (create the cursor, execute, fetch the rows, close the cursor) and three
for a write. Each is a hand-off to that thread and a wake-up of the event loop: about 0.2 ms of
CPU, five times what SQLite takes to run the statement (bench/NEXT_STEPS_CONVERSATION.md). This
cursor does the four in one call on the thread, so a statement costs one hand-off. Everything
else (the thread, the busy timeout, transactions, errors) is aiosqlite's and SQLAlchemy's own.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, list[Any] | None, int, int | None]
"""What one statement left on its cursor: description, rows, rowcount, lastrowid."""


def _run(connection: aiosqlite.Connection, operation: Any, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: one statement, start to finish, on a cursor of its own."""
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, each statement one call on the database thread (the
    results kept here, as the adapter keeps the rows anyway)."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: Any) -> None:
        # Not the base's: it would create an aiosqlite cursor (a trip to the thread).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._outcome: _Outcome = (None, None, -1, None)

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[2]

    @property
    def lastrowid(self) -> int:
        return self._outcome[3]  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # the rows are all fetched with the statement

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._outcome = await self._connection._execute(
                _run, self._connection, operation, parameters, False
            )
        rows = self._outcome[1]
        self._rows = collections.deque(rows) if rows is not None else collections.deque()
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._outcome = await self._connection._execute(
                _run, self._connection, operation, seq_of_parameters, True
            )
        return None

    async def _async_soft_close(self) -> None:
        return  # nothing is open: the sqlite3 cursor was closed on the thread

    def close(self) -> None:
        self._rows.clear()


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneTripCursor

    def _idle(self) -> bool:
        """No transaction open on the connection (sqlite3's own flag, read without a trip:
        SQLAlchemy uses the connection from one task at a time, so no statement is running)."""
        raw = self._connection._connection
        return raw is not None and not raw.in_transaction

    def rollback(self) -> None:
        # The pool rolls back every connection it gets back, also after a commit: with no
        # transaction open that is a trip to the thread for sqlite3 to do nothing.
        if not self._idle():
            super().rollback()

    def commit(self) -> None:
        if not self._idle():  # a unit of work that only read has nothing to commit
            super().commit()


class _OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> Any:
    """The DB-API module to give ``create_async_engine(..., module=)`` for a
    ``sqlite+aiosqlite`` URL."""
    return _OneTripDbapi(aiosqlite, sqlite3)
