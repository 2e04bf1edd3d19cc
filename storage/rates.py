"""Token buckets kept in PostgreSQL, shared by every ``tensionbot run`` process.

Each bucket is one row of ``rate_buckets``: the theoretical arrival time (``tat``) of the
generic cell rate algorithm. A send is allowed when ``tat - now <= (burst - 1) * interval``,
and then ``tat = max(tat, now) + interval``; otherwise the caller is told how long to wait and
nothing is taken. The check and the update are one statement on one row, so processes that
join, leave or die need no coordination: a dead process simply stops taking, and the others
get its share at once. Time is the database's clock (``statement_timestamp()``), the same for
every process whatever their own clocks say.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ports import TransientStoreError
from storage.errors import is_transient

_TAKE = text("""
WITH took AS (
    INSERT INTO rate_buckets AS b (key, tat)
    VALUES (:key, statement_timestamp() + CAST(:interval AS double precision) * interval '1 second')
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(b.tat, statement_timestamp())
            + CAST(:interval AS double precision) * interval '1 second'
        WHERE b.tat <= statement_timestamp()
            + CAST(:slack AS double precision) * interval '1 second'
    RETURNING 1
)
SELECT (SELECT count(*) FROM took) AS taken,
       (SELECT extract(epoch FROM tat - statement_timestamp())
          FROM rate_buckets WHERE key = :key) AS ahead
""")
# The second SELECT sees the row as it was before this statement (a data-modifying CTE's
# changes are invisible to the rest of the statement): how far ahead the bucket was.

_FORGET = text("DELETE FROM rate_buckets WHERE tat < statement_timestamp() - interval '10 minutes'")


class PgRateBuckets:
    """:class:`bot.ports.RateBuckets` in PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def take(self, key: str, interval: float, burst: float) -> float:
        slack = (burst - 1.0) * interval
        try:
            async with self.engine.begin() as conn:
                taken, ahead = (
                    await conn.execute(_TAKE, {"key": key, "interval": interval, "slack": slack})
                ).one()
        except Exception as exc:
            if is_transient(exc):
                raise TransientStoreError(type(exc).__name__) from exc
            raise
        if taken:
            return 0.0
        # Ask again when a send should be free (never spin: at least a millisecond).
        return max(0.001, float(ahead or 0.0) - slack)

    async def forget_idle(self) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(_FORGET)
        except Exception as exc:
            if is_transient(exc):
                raise TransientStoreError(type(exc).__name__) from exc
            raise


def shared_rate_buckets(engine: AsyncEngine) -> PgRateBuckets | None:
    """Shared buckets on PostgreSQL; None on SQLite (one process by design: the dispatcher's
    own in-memory buckets are exact there)."""
    if engine.dialect.name == "postgresql":
        return PgRateBuckets(engine)
    return None
