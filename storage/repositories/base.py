"""What every repository shares: the session it adds to and flushes (never commits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_insert(dialect: str, table: Table) -> Any:
    """``INSERT`` of ``dialect`` (``postgresql`` or ``sqlite``), which has ``ON CONFLICT``. The
    dialect's module is imported only when used: SQLAlchemy's PostgreSQL dialect costs a SQLite
    process memory."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
