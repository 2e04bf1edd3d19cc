"""What every command shares: the top-level ``tensionbot`` group (it loads the configuration),
running one coroutine with the services, failing with one line, and printing rows."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from bot.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from bot.logs import configure_logging
from handlers.files import cells

T = TypeVar("T")
ADMIN = "cli"


def fail(message: str) -> NoReturn:
    """Print one ``error:`` line and exit 2."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def write_private(path: Path, text: str) -> None:
    """Write personal data to ``path``, readable by its owner only from the first byte: created
    (or truncated) with mode 0600, never through a symlink, and only a regular file (a FIFO or a
    device is refused without blocking). Fails the command, naming the path, otherwise."""
    import stat

    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror} (not a regular file, or a symlink?)")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            fail(f"cannot write {path}: not a regular file")
        os.fchmod(fd, 0o600)  # a file that existed keeps its old mode otherwise
        handle.write(text)


def with_services(
    config: Config, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True
) -> T:
    """Build the services, run one coroutine with them, close them."""
    from bot.app import build_services

    async def main() -> T:
        services = await build_services(config, migrate=migrate)
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


class _Main(click.Group):
    """The top-level group: notes whether help was asked for anywhere on the command line, so
    ``tensionbot people import --help`` works without a configuration file."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["tensionbot.help"] = any(a in ("-h", "--help") for a in args)
        return super().parse_args(ctx, args)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="Configuration file; relative paths in it are relative to its folder.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: int) -> None:
    """tensionbot: the monthly community-tension return as a chat bot."""
    # Opt in to python-telegram-bot's coming timedelta durations (avoids a deprecation warning
    # on every 429); our code handles both forms.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    configure_logging(verbose)
    if ctx.meta.get("tensionbot.help"):
        return  # help needs no configuration
    try:
        ctx.obj = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))


def emit(rows: list[dict[str, Any]], fmt: str, whole: frozenset[str] = frozenset()) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if fmt == "csv":
        buf = io.StringIO()
        if rows:
            writer = cells.dict_writer(buf, list(rows[0]))  # formula-like text as text
            writer.writeheader()
            writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
        return
    if not rows:
        click.echo("(none)")
        return
    cols = list(rows[0])
    # Columns in ``whole`` (links) are never cut: a shortened link is a broken link.
    widths = {
        c: max(len(c), *(len(str(r[c])) for r in rows))
        if c in whole
        else min(40, max(len(c), *(len(str(r[c])) for r in rows)))
        for c in cols
    }
    click.echo("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        cell = {c: str(r[c]) if c in whole else str(r[c])[:40] for c in cols}
        click.echo("  ".join(cell[c].ljust(widths[c]) for c in cols).rstrip())
