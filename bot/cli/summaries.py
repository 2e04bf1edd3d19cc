"""Summaries and their inputs: ``summary`` and ``hatecrime import``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import ADMIN, fail, main, with_services
from bot.config import Config


@main.group()
def hatecrime() -> None:
    """Police hate-crime figures."""


@hatecrime.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def hatecrime_import(config: Config, file: Path) -> None:
    """Import monthly figures (month, ward, strand, count); a month in the file replaces that
    month; all or nothing."""
    from bot.summaries.hatecrime import FigureImportError, HateCrimeService

    text = file.read_text(encoding="utf-8-sig")

    async def work(s: Any) -> Any:
        return await HateCrimeService(s.config, s.db.uow, s.clock).import_csv(
            text, source=str(file), actor=ADMIN
        )

    try:
        result = with_services(config, work)
    except FigureImportError as exc:
        fail("nothing was imported:\n" + "\n".join(f"  {p}" for p in exc.problems))
    click.echo(
        f"imported {result.rows} figure(s), {result.total} hate crime(s), for "
        f"{', '.join(result.months)}"
    )


@main.command("summary")
@click.option(
    "--period", required=True, help="YYYY-MM (a month), YYYY-Qn (a quarter) or YYYY (a year)"
)
@click.option("--ward", default=None)
@click.option("--category", default=None)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write summary.md and one CSV per table into this folder.",
)
@click.option(
    "--no-suppress",
    is_flag=True,
    help="Show every count as it is: no disclosure control (for the system administrator).",
)
@click.pass_obj
def summary(
    config: Config,
    period: str,
    ward: str | None,
    category: str | None,
    out: Path | None,
    no_suppress: bool,
) -> None:
    """The summary of a month, quarter or year: tensions against the previous period and the
    same period last year, hate crime, and pockets of concern (aggregates only: no free text,
    no names)."""

    async def work(s: Any) -> Any:
        return await s.summaries.build(period, actor=ADMIN, ward=ward, category=category)

    try:
        result = with_services(config, work)
    except ValueError as exc:
        fail(str(exc))
    text = result.markdown(suppressed=not no_suppress)
    click.echo(text, nl=False)
    if out is not None:
        from handlers.files.spreadsheets import write

        files = write(result, out, suppressed=not no_suppress)
        click.echo(f"written to {out}: {', '.join(f.name for f in files)}", err=True)
