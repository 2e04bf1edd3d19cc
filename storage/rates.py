"""Token buckets kept in PostgreSQL, shared by every ``tensionbot run`` process.

Each bucket is one row of ``rate_buckets``: the theoretical arrival time (``tat``) of the
generic cell rate algorithm. A send reserves its slot, ``max(now, tat - (burst - 1) * interval)``,
and moves ``tat`` on to ``max(tat, now) + interval``; a slot further ahead than ``horizon`` is
not reserved, and the caller is told when to ask again. The check and the update are one
statement on one row, so processes that join, leave or die need no coordination: a dead
process simply stops reserving (losing at most the slots it had reserved, under ``horizon``
seconds of them), and the others use its share at once. Reserving a slot ahead, rather than
asking "may I send now?", means a process that wakes late for its slot costs no throughput.
Time is the database's clock (``statement_timestamp()``), the same for every process.

Each process asks through one connection of its own (autocommit, no pool checkout and ping per
request): a few hundred microseconds a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.ports import TransientStoreError
from storage.errors import is_transient

_SECONDS = "CAST(:{} AS double precision) * interval '1 second'"
_NOW = "statement_timestamp()"
_RESERVE = text(f"""
WITH took AS (
    INSERT INTO rate_buckets AS b (key, tat)
    VALUES (:key, {_NOW} + {_SECONDS.format("span")})
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(b.tat, {_NOW}) + {_SECONDS.format("span")}
        WHERE greatest(b.tat - {_SECONDS.format("slack")}, {_NOW})
            <= {_NOW} + {_SECONDS.format("horizon")}
    RETURNING tat
)
SELECT (SELECT extract(epoch FROM tat - {_NOW}) FROM took) AS reserved,
       (SELECT extract(epoch FROM tat - {_NOW}) FROM rate_buckets WHERE key = :key) AS ahead
""")  # noqa: S608 (constants only)
# The second SELECT sees the row as it was before this statement (a data-modifying CTE's
# changes are invisible to the rest of the statement): how far ahead the bucket was.
# ``span`` is ``count`` intervals: a batch of sends takes its slots in one statement.

# One slot in each of many buckets (one per chat), each no earlier than its ``after`` seconds
# from now (its send's slot in the channel's bucket). Keys must be distinct.
_RESERVE_EACH = text(f"""
WITH asks AS (
    SELECT a.key, a.after
    FROM unnest(CAST(:keys AS text[]), CAST(:afters AS double precision[])) AS a(key, after)
), took AS (
    INSERT INTO rate_buckets AS b (key, tat)
    SELECT key, {_NOW} + {_SECONDS.format("interval")} + after * interval '1 second' FROM asks
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(b.tat, excluded.tat - {_SECONDS.format("interval")})
            + {_SECONDS.format("interval")}
        WHERE greatest(b.tat - {_SECONDS.format("slack")}, excluded.tat
            - {_SECONDS.format("interval")}) <= {_NOW} + {_SECONDS.format("horizon")}
    RETURNING key, tat
)
SELECT a.key,
       extract(epoch FROM t.tat - {_NOW}) AS reserved,
       (SELECT extract(epoch FROM r.tat - {_NOW}) FROM rate_buckets r WHERE r.key = a.key)
           AS ahead
FROM asks a LEFT JOIN took t ON t.key = a.key
""")  # noqa: S608 (constants only)

_FORGET = text("DELETE FROM rate_buckets WHERE tat < statement_timestamp() - interval '10 minutes'")


class PgRateBuckets:
    """:class:`bot.ports.RateBuckets` in PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection

    async def reserve(
        self, key: str, interval: float, burst: float, horizon: float
    ) -> tuple[bool, float]:
        slots, wait = await self.reserve_slots(key, interval, burst, horizon, 1)
        return (True, slots[0]) if slots else (False, wait)

    async def reserve_slots(
        self, key: str, interval: float, burst: float, horizon: float, count: int
    ) -> tuple[list[float], float]:
        slack = (burst - 1.0) * interval
        params = {
            "key": key,
            "span": interval * count,
            "slack": slack,
            "horizon": horizon,
        }
        reserved, ahead = (await self._run(_RESERVE, params)).one()
        if reserved is not None:
            # ``reserved`` is the new tat; the batch's slots are the ``count`` intervals (less
            # the burst allowance) before it, never in the past.
            end = float(reserved)
            return [max(0.0, end - (count - j) * interval - slack) for j in range(count)], 0.0
        # Ask again when the slot would be within the horizon (never spin: at least 1 ms).
        return [], max(0.001, float(ahead or 0.0) - slack - horizon)

    async def reserve_each(
        self,
        keys: Sequence[str],
        interval: float,
        burst: float,
        horizon: float,
        after: Sequence[float],
    ) -> list[float | None]:
        if not keys:
            return []
        slack = (burst - 1.0) * interval
        params = {
            "keys": list(keys),
            "afters": [float(a) for a in after],
            "interval": interval,
            "slack": slack,
            "horizon": horizon,
        }
        got = {row.key: row.reserved for row in (await self._run(_RESERVE_EACH, params)).all()}
        out: list[float | None] = []
        for key, not_before in zip(keys, after, strict=True):
            reserved = got.get(key)
            # The slot: one interval (less the burst allowance) before the new tat, and never
            # before the send's slot in the channel's bucket.
            out.append(
                None
                if reserved is None
                else max(float(not_before), float(reserved) - interval - slack)
            )
        return out

    async def forget_idle(self) -> None:
        await self._run(_FORGET, {})

    async def _run(self, stmt: TextClause, params: dict[str, Any]) -> Any:
        async with self._lock:
            try:
                if self._conn is None:
                    conn = await self.engine.connect()
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    self._conn = conn
                return await self._conn.execute(stmt, params)
            except Exception as exc:
                await self._discard()
                if is_transient(exc):
                    raise TransientStoreError(type(exc).__name__) from exc
                raise

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:  # noqa: S110 - already broken; a new one is opened next time
            pass

    async def close(self) -> None:
        """Give the connection back."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await conn.close()
                except Exception:  # noqa: S110 - the database is away: nothing to give back
                    pass


def shared_rate_buckets(engine: AsyncEngine) -> PgRateBuckets | None:
    """Shared buckets on PostgreSQL; None on SQLite (one process by design: the dispatcher's
    own in-memory buckets are exact there)."""
    if engine.dialect.name == "postgresql":
        return PgRateBuckets(engine)
    return None
