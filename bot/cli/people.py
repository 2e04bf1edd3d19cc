"""People and their invitations: ``people import|list|deactivate|reactivate`` and ``invites``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from bot.cli.base import ADMIN, emit, fail, main, with_services
from bot.config import Config, ConfigError


@main.group()
def people() -> None:
    """People: import, list, erase, export."""


@people.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def people_import(config: Config, file: Path) -> None:
    """Import or update people from a CSV file (all or nothing).

    Columns: name, role, wards (separated by ';', or 'all'), organisation, email, slack_user_id.
    People are matched by email: a re-import updates them and never duplicates.
    """
    from bot.people.importing import ImportError_

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text")
    try:
        result = with_services(
            config, lambda s: s.people.import_csv(text, source=str(file), actor=ADMIN)
        )
    except ImportError_ as exc:
        fail("nothing was imported:\n" + "\n".join(f"  {p}" for p in exc.problems))
    click.echo(
        f"imported {file}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


@people.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_obj
def people_list(config: Config, fmt: str) -> None:
    """Everyone, and whether their Telegram is linked."""
    rows = [
        {
            "name": p.name,
            "role": p.role,
            "email": p.email,
            "wards": ";".join(p.wards),
            "organisation": p.organisation,
            "telegram": "blocked" if p.blocked_at else ("linked" if p.linked else "not linked"),
            "active": p.active,
        }
        for p in with_services(config, lambda s: s.people.export_list(actor=ADMIN))
    ]
    emit(rows, fmt)


@people.command("deactivate")
@click.argument("email")
@click.pass_obj
def people_deactivate(config: Config, email: str) -> None:
    """Mark a person as having left: no more forms, reminders or summaries, and the bot refuses
    them. After privacy.personal_data_months the retention tick anonymises them."""
    _set_active(config, email, False)


@people.command("reactivate")
@click.argument("email")
@click.pass_obj
def people_reactivate(config: Config, email: str) -> None:
    """Undo `people deactivate` (a people import that lists them does the same)."""
    _set_active(config, email, True)


def _set_active(config: Config, email: str, active: bool) -> None:
    person = with_services(config, lambda s: s.people.set_active(email, active, actor=ADMIN))
    if person is None:
        fail(f"no person with email {email!r}")
    state = "active" if active else "inactive"
    click.echo(f"{person.name} <{person.email}> is {state}")


@main.command("invites")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default=None,
    help="Default: a table on a terminal, CSV when the output goes to a file or a pipe.",
)
@click.option("--person", "email", default=None, help="Only this person (by email).")
@click.option(
    "--reissue",
    is_flag=True,
    help="Also replace links sent earlier that are still unused and unexpired (they stop "
    "working). Without it a re-run leaves them alone.",
)
@click.option(
    "--relink",
    is_flag=True,
    help="With --person: issue a link even though they are already linked. Whoever uses it "
    "takes over the account; their old chat is told.",
)
@click.pass_obj
def invites(
    config: Config, fmt: str | None, email: str | None, relink: bool, reissue: bool
) -> None:
    """Print a personal, single-use, expiring Telegram link for everyone not yet linked.

    A re-run issues links only to people without a valid one: links sent earlier that are still
    unused and unexpired keep working (--reissue replaces them). --person EMAIL issues a fresh
    link for one person, replacing their earlier one. People already linked are skipped (a new
    link would move their account to whoever uses it): to move one person to a new chat, use
    --person EMAIL --relink.
    """
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else "csv"
    if relink and email is None:
        fail("--relink moves one person's account: name them with --person EMAIL")
    config = _with_bot_username(config)
    try:
        issued = with_services(
            config,
            lambda s: s.people.invite(actor=ADMIN, email=email, relink=relink, reissue=reissue),
        )
    except LookupError as exc:
        fail(str(exc.args[0]))
    emit(
        [
            {
                "name": link.person.name,
                "email": link.person.email,
                "link": link.url,
                "expires": link.expires_at.astimezone(config.partnership.tz).strftime(
                    "%Y-%m-%d %H:%M"
                ),
            }
            for link in issued.links
        ],
        fmt,
        whole=frozenset({"link"}),
    )
    # On stderr, so that the CSV or JSON on stdout stays clean.
    if email is not None and issued.skipped:
        click.echo(
            f"{email} is already linked to a Telegram chat: skipped. A new link would move "
            "their account to whoever uses it; to do that, run again with --relink.",
            err=True,
        )
        sys.exit(1)
    if issued.skipped:
        n = len(issued.skipped)
        click.echo(
            f"{n} already linked {'person' if n == 1 else 'people'} skipped "
            "(to move one to a new chat: --person EMAIL --relink)",
            err=True,
        )
    if issued.kept:
        n = len(issued.kept)
        click.echo(
            f"{n} {'person has' if n == 1 else 'people have'} an unused, unexpired link sent "
            "earlier, which keeps working: no new link (--reissue replaces them; --person "
            "EMAIL for one)",
            err=True,
        )


def _with_bot_username(config: Config) -> Config:
    """The config with the bot's @username from Telegram (getMe) when the config leaves it
    unset, or a one-line error saying what to set."""
    if config.telegram.bot_username is not None:
        return config
    from telegram.error import TelegramError

    from bot.app import telegram_token
    from handlers.telegram.identity import with_bot_username

    try:
        return asyncio.run(with_bot_username(config, telegram_token(config)))
    except ConfigError as exc:
        fail(f"{exc}; or set telegram.bot_username for the invitation links")
    except TelegramError as exc:
        fail(
            f"cannot ask Telegram for the bot's username ({exc}): set telegram.bot_username, "
            "or run `tensionbot doctor` to see what is wrong"
        )
