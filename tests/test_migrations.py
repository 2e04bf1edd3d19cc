"""The Alembic migrations and the models agree, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.database import Database
from storage.migrate import current_revision, head_revision
from storage.tables import metadata


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_models_match_migrations(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await current_revision(db.engine) == head_revision()
        async with db.engine.connect() as connection:
            diff = await connection.run_sync(_diff)
        assert diff == []
    finally:
        await db.dispose()
