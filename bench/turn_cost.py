"""What one conversation update costs the bot: CPU seconds and SQL statements of the measured run.

``python -m bench.turn_cost cpu '{"users": 200, "backend": "sqlite"}'``: the bot process's CPU
time (its threads included: aiosqlite's, asyncpg's) while the simulated reporters answer, beside
updates/s and p99. CPU per update is steadier than updates/s on a shared machine, so compare two
versions by it, back to back. ``{"memory": true}`` measures the in-memory baseline instead.

``python -m bench.turn_cost sql '{"users": 50, "backend": "sqlite"}'``: how many times each SQL
statement ran during the measured run, per update (bench/NEXT_STEPS_CONVERSATION.md).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time
from typing import Any

from sqlalchemy import event

from bench import common, conversation

_measuring = [False]
_statements: collections.Counter[str] = collections.Counter()


def _instrument(count_sql: bool) -> dict[str, float]:
    """Wrap the platform's ``converse`` call (the measured run) to take the CPU time spent in it;
    with ``count_sql``, count the statements the bot's engine runs meanwhile."""
    cpu: dict[str, float] = {}
    call = common.Platform.call

    async def measured(self: common.Platform, cmd: str, **args: Any) -> dict[str, Any]:
        if cmd != "converse":
            return await call(self, cmd, **args)
        start = time.process_time()
        _measuring[0] = True
        try:
            return await call(self, cmd, **args)
        finally:
            _measuring[0] = False
            cpu["cpu_s"] = time.process_time() - start

    common.Platform.call = measured  # type: ignore[method-assign]
    if count_sql:
        build = conversation.build_services

        async def counted(config: Any, **kw: Any) -> Any:
            services = await build(config, **kw)

            def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                if _measuring[0]:
                    _statements[" ".join(statement.split())[:150]] += 1

            event.listen(services.db.engine.sync_engine, "before_cursor_execute", seen)
            return services

        conversation.build_services = counted
    return cpu


def main() -> None:
    """``cpu`` or ``sql``, then the runner's arguments as JSON."""
    mode, args = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    cpu = _instrument(count_sql=mode == "sql")
    runner = conversation.run_memory if args.pop("memory", False) else conversation.run_durable
    result = asyncio.run(runner(**args))
    if mode == "sql":
        updates = result["updates"]
        total = sum(_statements.values())
        print(f"{updates} updates, {total} statements, {total / updates:.2f} per update")
        for statement, n in _statements.most_common(30):
            print(f"{n / updates:6.3f} {n:6d} {statement}")
        return
    keys = ("updates", "updates_per_s", "p99_ms", "error_count", "unanswered", "reports_stored")
    out = {k: result[k] for k in keys if k in result}
    out["cpu_s"] = round(cpu["cpu_s"], 3)
    out["cpu_ms_per_update"] = round(1000 * cpu["cpu_s"] / result["updates"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
