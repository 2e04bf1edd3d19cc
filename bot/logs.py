"""Logging for the command line: ``-v`` and ``-vv`` make our own code more verbose, never the
libraries', and a data error is logged without its contents.

Report text, names and emails must not reach a log at any level. Our own log lines carry
references, ids and counts. Libraries are another matter: at DEBUG python-telegram-bot logs
every update and API call (message text, first names), slack_sdk and slack_bolt every request
and response body, aiosqlite every statement with its parameters and every row it returns. So
those loggers are held at INFO (httpx at WARNING: its request lines carry the bot token in the
URL) whatever the verbosity: ``-vv`` turns on DEBUG for ``bot``, ``handlers``, ``scheduler`` and
``storage`` only.

A database or validation error can quote data: PostgreSQL's "Key (email)=(…) already exists",
SQLAlchemy's statement parameters (the engine also hides them: ``hide_parameters``), pydantic's
``input_value``. Every log handler set up here prints such an exception, anywhere in a chain, by
its class and traceback only (and a constraint name when the driver gives one).
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import TextIO

#: Our own packages: the only loggers ``-vv`` takes to DEBUG.
OWN = ("bot", "handlers", "scheduler", "storage", "__main__")
#: Libraries whose request lines carry secrets even at INFO.
WARNING_ONLY = ("httpx", "httpcore")
#: Exceptions raised by these packages may quote the data they refused.
DATA_ERROR_MODULES = ("sqlalchemy", "sqlite3", "aiosqlite", "asyncpg", "pydantic", "pydantic_core")
#: The constraint a refused row broke, as a database names it: identifiers, never values
#: (PostgreSQL: ``violates unique constraint "people_email_key"``; SQLite: ``UNIQUE constraint
#: failed: people.email``).
_CONSTRAINT = re.compile(r'constraint "(\w+)"|constraint failed: ([\w.]+(?:, [\w.]+)*)$')
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def is_data_error(exc: BaseException) -> bool:
    """Whether an exception comes from a database driver, SQLAlchemy or pydantic."""
    module = type(exc).__module__ or ""
    return module.split(".")[0] in DATA_ERROR_MODULES


def _constraint(exc: BaseException) -> str | None:
    first = (str(exc).splitlines() or [""])[0]
    found = _CONSTRAINT.search(first)
    return (found.group(1) or found.group(2)) if found else None


def describe(exc: BaseException) -> str:
    """One line for an exception: a data error by its class (and constraint) only."""
    if not is_data_error(exc):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    constraint = _constraint(exc)
    where = f" ({constraint})" if constraint else ""
    return f"{name}{where}: details hidden (they may hold personal data)"


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        cause = current.__cause__
        current = (
            cause
            if cause is not None
            else (None if current.__suppress_context__ else current.__context__)
        )
    return chain[::-1]


def safe_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and the exceptions it came from, with each data error's
    message replaced by :func:`describe`."""
    parts: list[str] = []
    for i, e in enumerate(_chain(exc)):
        if i:
            parts.append("\nThe above exception led to the following one:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(e.__traceback__))
        parts.append(describe(e) + "\n")
    return "".join(parts).rstrip("\n")


class HideDataErrors(logging.Filter):
    """On a handler: print data errors (in ``exc_info`` or as a message argument) without
    their contents."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and any(is_data_error(e) for e in _chain(exc)):
            record.exc_text = safe_traceback(exc)
            record.exc_info = None
        if isinstance(record.args, tuple) and any(
            isinstance(a, BaseException) and is_data_error(a) for a in record.args
        ):
            record.args = tuple(
                describe(a) if isinstance(a, BaseException) and is_data_error(a) else a
                for a in record.args
            )
        return True


def configure_logging(verbose: int, *, stream: TextIO | None = None) -> None:
    """Log to stderr (or ``stream``): warnings by default, ``-v`` info, ``-vv`` debug for our
    own code; libraries never below INFO."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=max(level, logging.INFO), format=FORMAT, stream=stream)
    root = logging.getLogger()
    root.setLevel(max(level, logging.INFO))  # basicConfig leaves an existing root as it is
    for name in OWN:
        logging.getLogger(name).setLevel(level)
    for name in WARNING_ONLY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for handler in root.handlers:
        if not any(isinstance(f, HideDataErrors) for f in handler.filters):
            handler.addFilter(HideDataErrors())
