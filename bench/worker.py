"""One benchmark run in a fresh process: ``python -m bench.worker KIND '<JSON args>'``.

The result is printed as the last line of stdout, as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any


def _runner(kind: str) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    if kind == "fanout":
        from bench import fanout

        return fanout.run
    if kind == "conversation":
        from bench import conversation

        return conversation.run_durable
    if kind == "memory":
        from bench import conversation

        return conversation.run_memory
    if kind == "pickle":
        from bench import conversation

        return conversation.run_pickle
    if kind == "kill":
        from bench import killtest

        return killtest.run
    if kind == "summaries":
        from bench import summaries

        return summaries.run
    if kind == "footprint":
        from bench import footprint

        return footprint.run
    raise SystemExit(f"unknown benchmark {kind!r}")


def main() -> None:
    """Run one benchmark and print its result."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    kind, args = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    result: dict[str, Any] = asyncio.run(_runner(kind)(**args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
