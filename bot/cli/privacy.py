"""Data protection: ``people erase``, ``people export`` and ``privacy retention``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bot.cli.base import ADMIN, fail, main, with_services, write_private
from bot.cli.people import people
from bot.config import Config


def _privacy(s: Any) -> Any:
    return s.privacy


@people.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Really erase (without it: say what would be erased).")
@click.pass_obj
def people_erase(config: Config, email: str, yes: bool) -> None:
    """Erase a person (right to erasure): anonymise them and remove or redact everything about
    them. Report statistics (ward, category, level, basis, period) and the audit log are kept."""
    from bot.people.personal_data import PrivacyError

    async def work(s: Any) -> Any:
        service = _privacy(s)
        return await (service.erase(email, actor=ADMIN) if yes else service.plan(email))

    try:
        plan = with_services(config, work)
    except PrivacyError:
        fail(f"no person with email {email!r}")
    if not yes:
        click.echo("would erase (run again with --yes to do it):")
        click.echo("\n".join(f"  {line}" for line in plan.lines()))
        sys.exit(1)
    click.echo("erased:")
    click.echo("\n".join(f"  {line}" for line in plan.lines()))


@people.command("export")
@click.argument("email")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON to this file (default: standard output).",
)
@click.pass_obj
def people_export(config: Config, email: str, out: Path | None) -> None:
    """Subject-access export: everything held about a person, as JSON (the export is audited)."""
    from bot.people.personal_data import PrivacyError

    try:
        data = with_services(config, lambda s: _privacy(s).export(email, actor=ADMIN))
    except PrivacyError:
        fail(f"no person with email {email!r}")
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
        return
    write_private(out, text + "\n")
    click.echo(f"written to {out}", err=True)


@main.group()
def privacy() -> None:
    """Data protection: retention."""


@privacy.command("retention")
@click.option("--full", is_flag=True, help="Look at every old row again, not only new ones.")
@click.pass_obj
def privacy_retention(config: Config, full: bool) -> None:
    """Run the retention once now: redact free text older than privacy.retention_months and
    anonymise people inactive longer than privacy.personal_data_months (aggregates are kept)."""
    result = with_services(config, lambda s: _privacy(s).tick(full=full))
    click.echo(f"retention cut-off {result.cutoff:%Y-%m-%d}: {result.total} row(s) redacted")
    for kind, n in result.redacted.items():
        click.echo(f"  {kind:<16} {n}")
    click.echo(f"  people anonymised: {result.anonymised}")
