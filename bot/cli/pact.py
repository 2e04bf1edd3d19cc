"""PACT meetings: ``pact schedule|import|list|insight``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from bot.cli.base import ADMIN, emit, fail, main, with_services
from bot.config import Config


@main.group()
def pact() -> None:
    """PACT (Partners and Communities Together) meetings."""


@pact.command("schedule")
@click.option("--neighbourhood", required=True, help="Key or name (see config [pact]).")
@click.option("--date", "on", required=True, help="YYYY-MM-DD (local).")
@click.option("--time", "at", required=True, help="HH:MM (local).")
@click.option("--venue", required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["in_person", "online", "street_briefing"]),
    default="in_person",
    show_default=True,
)
@click.option("--chair", default=None, help="The chair's email (default: the usual chair).")
@click.option("--duration", type=int, default=None, help="Minutes (default from the config).")
@click.pass_obj
def pact_schedule(
    config: Config,
    neighbourhood: str,
    on: str,
    at: str,
    venue: str,
    fmt: str,
    chair: str | None,
    duration: int | None,
) -> None:
    """Schedule one meeting; its reminders and the chair's prompts follow automatically."""
    from bot.pact.service import PactError

    async def work(s: Any) -> Any:
        return await s.pact.schedule(
            neighbourhood=neighbourhood,
            on=on,
            at=at,
            venue=venue,
            format=fmt,
            chair_email=chair,
            actor=ADMIN,
            duration_minutes=duration,
        )

    try:
        meeting = with_services(config, work)
    except PactError as exc:
        fail(str(exc))
    click.echo(
        f"scheduled meeting {meeting.id}: {meeting.neighbourhood}, "
        f"{meeting.starts_at.astimezone(config.partnership.tz):%a %d %b %Y %H:%M}, {meeting.venue}"
    )


@pact.command("move")
@click.argument("meeting_id", type=int)
@click.option("--date", "on", default=None, help="YYYY-MM-DD (local).")
@click.option("--time", "at", default=None, help="HH:MM (local).")
@click.option("--venue", default=None)
@click.option(
    "--format", "fmt", type=click.Choice(["in_person", "online", "street_briefing"]), default=None
)
@click.pass_obj
def pact_move(
    config: Config, meeting_id: int, on: str | None, at: str | None, venue: str | None,
    fmt: str | None,
) -> None:  # fmt: skip
    """Move an upcoming meeting (what is not given stays); announced in [pact.public]."""
    from bot.pact.service import PactError

    async def work(s: Any) -> Any:
        return await s.pact.move(meeting_id, on=on, at=at, venue=venue, format=fmt, actor=ADMIN)

    try:
        meeting = with_services(config, work)
    except PactError as exc:
        fail(str(exc))
    click.echo(
        f"moved meeting {meeting.id}: "
        f"{meeting.starts_at.astimezone(config.partnership.tz):%a %d %b %Y %H:%M}, {meeting.venue}"
    )


@pact.command("cancel")
@click.argument("meeting_id", type=int)
@click.pass_obj
def pact_cancel(config: Config, meeting_id: int) -> None:
    """Call off an upcoming meeting; announced in [pact.public], struck through on the page."""
    from bot.pact.service import PactError

    async def work(s: Any) -> Any:
        return await s.pact.cancel(meeting_id, actor=ADMIN)

    try:
        meeting = with_services(config, work)
    except PactError as exc:
        fail(str(exc))
    click.echo(f"cancelled meeting {meeting.id}")


@pact.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def pact_import(config: Config, file: Path) -> None:
    """A season of meetings from CSV: neighbourhood,date,time,venue,format,chair_email
    [,duration_minutes]. All or nothing; a re-import updates, never duplicates."""
    from bot.pact.service import PactError

    text = file.read_text(encoding="utf-8-sig")

    async def work(s: Any) -> Any:
        return await s.pact.import_csv(text, source=str(file), actor=ADMIN)

    try:
        result = with_services(config, work)
    except PactError as exc:
        fail("nothing was imported:\n" + "\n".join(f"  {p}" for p in str(exc).splitlines()))
    click.echo(
        f"meetings: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


@pact.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_obj
def pact_list(config: Config, fmt: str) -> None:
    """Every meeting with its status and attendance."""
    from datetime import UTC, datetime

    async def work(s: Any) -> list[dict[str, Any]]:
        async with s.db.uow() as uow:
            meetings = await uow.pact.meetings_between(
                datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
            )
        return [
            {
                "id": m.id,
                "neighbourhood": m.neighbourhood,
                "starts": f"{m.starts_at.astimezone(config.partnership.tz):%Y-%m-%d %H:%M}",
                "venue": m.venue,
                "format": m.format,
                "status": m.status,
                "public": "" if m.public_attendees is None else m.public_attendees,
                "new": "" if m.new_attendees is None else m.new_attendees,
            }
            for m in meetings
        ]

    emit(with_services(config, work), fmt)


@pact.command("insight")
@click.option("--since", required=True, help="YYYY-MM (inclusive).")
@click.option("--until", required=True, help="YYYY-MM (inclusive).")
@click.option("--neighbourhood", default=None)
@click.option(
    "--change-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="YYYY-MM-DD: attendance and new attendees per meeting before and after this date.",
)
@click.pass_obj
def pact_insight(
    config: Config,
    since: str,
    until: str,
    neighbourhood: str | None,
    change_date: datetime | None,
) -> None:
    """Which times and venues draw people: attendance by slot, weekday, venue and format, and
    with --change-date, before and after a change."""
    from bot.common import audit
    from bot.pact.rules import markdown
    from bot.pact.service import PactError

    async def work(s: Any) -> Any:
        changed = None if change_date is None else change_date.date()
        insight = await s.pact.insight(since, until, neighbourhood, change_date=changed)
        async with s.db.uow() as uow:
            await audit(uow, s.clock.now(), ADMIN, "pact.insight.view", f"{since}..{until}")
            await uow.commit()
        return insight

    try:
        click.echo(markdown(with_services(config, work)), nl=False)
    except PactError as exc:
        fail(str(exc))
