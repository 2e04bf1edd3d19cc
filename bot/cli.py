"""The ``tensionbot`` command line.

Every command loads the configuration once (``--config PATH``, default ``./config.toml``; a
missing file is an error, never a silent fall-back to defaults), validates it, and exits non-zero
with a message naming the file, line or key when something is wrong.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from bot import cells
from bot.config import DEFAULT_CONFIG_PATH, Config, ConfigError, delivery_problem, load_config
from bot.forms import FormError, load_form
from bot.logs import configure_logging

T = TypeVar("T")
ADMIN = "cli"


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _run(config: Config, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True) -> T:
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
    if ctx.invoked_subcommand == "demo" or ctx.meta.get("tensionbot.help"):
        return  # the demo builds its own configuration; help needs none
    try:
        ctx.obj = load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))


@main.command("check-config")
@click.pass_obj
def check_config(config: Config) -> None:
    """Validate the configuration and the form file, then exit."""
    try:
        form = load_form(config.form.path)
    except FormError as exc:
        _fail(str(exc))
    if (problem := delivery_problem(config)) is not None:
        _fail(problem)
    click.echo(f"configuration OK ({config.source})")
    click.echo(
        f"  partnership: {config.partnership.name}, {len(config.partnership.wards)} wards, "
        f"{config.partnership.timezone}"
    )
    click.echo(f"  database:    {config.database.url.split('@')[-1]}")
    click.echo(
        f"  telegram:    {config.telegram.mode} via {config.telegram.api_base_url}, token "
        f"{'set' if config.secrets.telegram_token else 'NOT set'}"
    )
    deliver = (
        "to the teams' Slack channels"
        if config.routing.deliver == "slack"
        else "LOG ONLY (recorded, never sent to a team)"
    )
    click.echo(f"  routing:     {len(config.teams)} team(s), routed tensions go {deliver}")
    s = config.schedule
    click.echo(
        f"  schedule:    opens day {s.open_day} {s.open_time:%H:%M}, reminders on days "
        f"{', '.join(map(str, s.reminder_days)) or 'none'}, closes day {s.close_day} "
        f"{s.close_time:%H:%M}"
    )
    click.echo(f"  form:        {form.title} v{form.version}, {len(form.questions)} questions")


@main.command("health")
@click.option("--timeout", type=float, default=4.0, show_default=True, help="Seconds per probe.")
@click.pass_obj
def health(config: Config, timeout: float) -> None:
    """Exit 0 when the deployment is healthy: the database reachable and migrated, and the
    `tensionbot run` process answering (its /healthz; with no HTTP server, i.e. polling without
    server.port, a fresh server.heartbeat_file). For Docker's HEALTHCHECK and monitoring."""
    import time
    import urllib.error
    import urllib.request

    from bot.app import http_address
    from storage.database import Database
    from storage.leader import database_status

    async def probe() -> Any:
        database = Database(config.database.url)
        try:
            return await database_status(database.engine, timeout=timeout)
        finally:
            await database.dispose()

    status = asyncio.run(probe())
    if not status.reachable:
        _fail(f"unhealthy: database unreachable ({status.error})")
    if not status.current:
        _fail(f"unhealthy: database at revision {status.revision}, the code expects {status.head}")
    address = http_address(config)
    beat = config.server.heartbeat_file
    if address is not None:
        listen, port = address
        host = "127.0.0.1" if listen in ("", "0.0.0.0", "::") else listen  # noqa: S104
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                ok = answer.status == 200
        except (urllib.error.URLError, OSError) as exc:
            _fail(f"unhealthy: {url} does not answer ({exc})")
        if not ok:
            _fail(f"unhealthy: {url} answered {answer.status}")
        click.echo(f"healthy: database migrated, {url} answers")
    elif beat is not None:
        limit = max(30.0, 10 * config.cluster.leader_retry_seconds)
        try:
            age = time.time() - beat.stat().st_mtime
        except OSError:
            _fail(f"unhealthy: no heartbeat at {beat} (is `tensionbot run` running?)")
        if age > limit:
            _fail(f"unhealthy: heartbeat {beat} is {age:.0f}s old (more than {limit:.0f}s)")
        click.echo(f"healthy: database migrated, heartbeat {age:.0f}s old")
    else:
        _fail(
            "cannot tell whether the process answers: this configuration opens no HTTP server "
            "(polling, no Slack over HTTP, no server.port); set server.port or "
            "server.heartbeat_file"
        )


@main.command("doctor")
@click.pass_obj
def doctor(config: Config) -> None:
    """Check the live set-up before go-live and after every change: Telegram token, username
    and webhook; Slack token, scopes, channel membership and signing secret; the database;
    the proxy. Each line ✓ or ✗ with the fix; exit status 1 if anything is ✗."""
    from bot.app import doctor as run_doctor

    checks = asyncio.run(run_doctor(config))
    for check in checks:
        click.echo(check.line())
    failed = sum(not c.ok for c in checks)
    click.echo(f"{failed} problem(s) to fix" if failed else "all good")
    sys.exit(1 if failed else 0)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(config: Config) -> None:
    """Apply migrations up to the newest (also done automatically at start). With
    TENSIONBOT_MIGRATION_DATABASE_URL set, connect with that URL instead of database.url (a
    role that also owns the audit log: deploy/README.md)."""
    from storage.database import Database
    from storage.migrate import current_revision, upgrade

    override = config.secrets.migration_database_url
    url = override.get_secret_value() if override is not None else config.database.url

    async def work() -> str | None:
        database = Database(url)
        try:
            await upgrade(database.engine)
            return await current_revision(database.engine)
        finally:
            await database.dispose()

    click.echo(f"database at revision {asyncio.run(work())}")


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
    from bot.people.service import ImportError_

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"{file}: not UTF-8 text")
    try:
        result = _run(config, lambda s: s.people.import_csv(text, source=str(file), actor=ADMIN))
    except ImportError_ as exc:
        _fail("nothing was imported:\n" + "\n".join(f"  {p}" for p in exc.problems))
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
        for p in _run(config, lambda s: s.people.everyone())
    ]
    _emit(rows, fmt)


def _privacy(s: Any) -> Any:
    return s.privacy


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
    person = _run(config, lambda s: s.people.set_active(email, active, actor=ADMIN))
    if person is None:
        _fail(f"no person with email {email!r}")
    state = "active" if active else "inactive"
    click.echo(f"{person.name} <{person.email}> is {state}")


@people.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Really erase (without it: say what would be erased).")
@click.pass_obj
def people_erase(config: Config, email: str, yes: bool) -> None:
    """Erase a person (right to erasure): anonymise them and remove or redact everything about
    them. Report statistics (ward, category, level, basis, period) and the audit log are kept."""
    from bot.people.privacy import PrivacyError

    async def work(s: Any) -> Any:
        service = _privacy(s)
        return await (service.erase(email, actor=ADMIN) if yes else service.plan(email))

    try:
        plan = _run(config, work)
    except PrivacyError:
        _fail(f"no person with email {email!r}")
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
    from bot.people.privacy import PrivacyError

    try:
        data = _run(config, lambda s: _privacy(s).export(email, actor=ADMIN))
    except PrivacyError:
        _fail(f"no person with email {email!r}")
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n", encoding="utf-8")
    out.chmod(0o600)
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
    result = _run(config, lambda s: _privacy(s).tick(full=full))
    click.echo(f"retention cut-off {result.cutoff:%Y-%m-%d}: {result.total} row(s) redacted")
    for kind, n in result.redacted.items():
        click.echo(f"  {kind:<16} {n}")
    click.echo(f"  people anonymised: {result.anonymised}")


def _emit(rows: list[dict[str, Any]], fmt: str, whole: frozenset[str] = frozenset()) -> None:
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
        _fail("--relink moves one person's account: name them with --person EMAIL")
    config = _with_bot_username(config)
    try:
        issued = _run(
            config,
            lambda s: s.people.invite(actor=ADMIN, email=email, relink=relink, reissue=reissue),
        )
    except LookupError as exc:
        _fail(str(exc.args[0]))
    _emit(
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
        _fail(f"{exc}; or set telegram.bot_username for the invitation links")
    except TelegramError as exc:
        _fail(
            f"cannot ask Telegram for the bot's username ({exc}): set telegram.bot_username, "
            "or run `tensionbot doctor` to see what is wrong"
        )


@main.group()
def campaign() -> None:
    """Returns: open one, see its status."""


@campaign.command("open")
@click.option("--period", default=None, help="YYYY-MM (default: this month).")
@click.option("--extra", is_flag=True, help="An extra return (e.g. weekly or daily in a crisis).")
@click.option("--wards", default="", help="Extra return: wards, separated by ';'.")
@click.option("--roles", default="", help="Extra return: roles, separated by ';'.")
@click.option(
    "--closes-in",
    "closes_in",
    type=click.FloatRange(0.5, 744),
    default=48.0,
    show_default=True,
    help="Extra return: hours until it closes.",
)
@click.pass_obj
def campaign_open(
    config: Config, period: str | None, extra: bool, wards: str, roles: str, closes_in: float
) -> None:
    """Open this month's return now (once per period), or an extra one.

    The running bot sends the forms (its dispatcher picks them up within a second).
    """
    from bot.returns.campaigns import CampaignError

    def split(value: str) -> list[str]:
        return [v.strip() for v in value.split(";") if v.strip()]

    async def work(s: Any) -> tuple[Any, bool]:
        if extra:
            closes = s.clock.now() + timedelta(hours=closes_in)
            c = await s.campaigns.open_extra(
                closes_at=closes, wards=split(wards), roles=split(roles), actor=ADMIN
            )
            return c, True
        return await s.campaigns.open_monthly(period, actor=ADMIN, force=True)

    try:
        camp, created = _run(config, work)
    except CampaignError as exc:
        _fail(str(exc))
    verb = "opened" if created else "already open"
    click.echo(
        f"{verb}: {camp.key} ({camp.title}), closes "
        f"{camp.closes_at.astimezone(config.partnership.tz):%Y-%m-%d %H:%M}"
    )


@campaign.command("status")
@click.option("--period", default=None, help="YYYY-MM: that month's return.")
@click.option("--key", default=None, help="A campaign key (for extra returns).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def campaign_status(config: Config, period: str | None, key: str | None, as_json: bool) -> None:
    """Who has answered, sent a nil return, not replied, or cannot be reached."""
    from bot.returns.campaigns import CampaignError

    async def work(s: Any) -> Any:
        camp = await s.campaigns.resolve(period, key)
        status = await s.campaigns.status(camp.id, actor=ADMIN)
        cadences = await s.crisis.all()
        return status, [(c, s.crisis.describe(c)) for c in cadences]

    try:
        status, cadences = _run(config, work)
    except CampaignError as exc:
        _fail(str(exc))
    if as_json:
        data = status.as_dict()
        data["crisis_cadences"] = [{**vars(c), "summary": line} for c, line in cadences]
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_status(status))
    if cadences:
        click.echo("Crisis cadences (/crisis):")
        for _, line in cadences:
            click.echo(f"  {line}")


@campaign.command("web-link")
@click.argument("email")
@click.option("--period", default=None, help="YYYY-MM: that month's return (default: the latest).")
@click.option("--key", default=None, help="A campaign key (for extra returns).")
@click.pass_obj
def campaign_web_link(config: Config, email: str, period: str | None, key: str | None) -> None:
    """Print EMAIL's personal link to the web form of a return (valid until it closes). Needs
    TENSIONBOT_WEB_SECRET; give the link only to that person: it lets them answer as themselves."""
    from bot.returns.campaigns import CampaignError

    if config.secrets.web_secret is None:
        _fail("the web form is off: set TENSIONBOT_WEB_SECRET (see [web] in config.example.toml)")

    async def work(s: Any) -> str:
        camp = await s.campaigns.resolve(period, key)
        return str(await s.web.link_for(email, camp.key))

    try:
        click.echo(_run(config, work))
    except CampaignError as exc:
        _fail(str(exc))
    except LookupError:
        _fail(f"no person with email {email!r}")


def format_status(status: Any) -> str:
    """A human-readable campaign status."""
    lines = [
        f"{status.title}  [{status.key}, {status.status}, form v{status.form_version}]",
        f"  opens {status.opens_at}  closes {status.closes_at}  reminders "
        f"{status.reminders_done}/{status.reminders_planned}",
        "  " + ", ".join(f"{k}: {v}" for k, v in sorted(status.counts.items())),
    ]
    for p in status.people:
        extra = f"{p.tensions} tension(s)" if p.tensions else p.detail
        lines.append(
            f"  {p.name:<28} {p.role:<17} {p.outcome:<12} reminded {p.reminders}  "
            f"{'; '.join(p.wards)[:30]:<30} {extra}"
        )
    return "\n".join(lines)


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
        result = _run(config, work)
    except FigureImportError as exc:
        _fail("nothing was imported:\n" + "\n".join(f"  {p}" for p in exc.problems))
    click.echo(
        f"imported {result.rows} figure(s), {result.total} hate crime(s), for "
        f"{', '.join(result.months)}"
    )


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
        meeting = _run(config, work)
    except PactError as exc:
        _fail(str(exc))
    click.echo(
        f"scheduled meeting {meeting.id}: {meeting.neighbourhood}, "
        f"{meeting.starts_at.astimezone(config.partnership.tz):%a %d %b %Y %H:%M}, {meeting.venue}"
    )


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
        result = _run(config, work)
    except PactError as exc:
        _fail("nothing was imported:\n" + "\n".join(f"  {p}" for p in str(exc).splitlines()))
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

    _emit(_run(config, work), fmt)


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
        click.echo(markdown(_run(config, work)), nl=False)
    except PactError as exc:
        _fail(str(exc))


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
        result = _run(config, work)
    except ValueError as exc:
        _fail(str(exc))
    text = result.markdown(suppressed=not no_suppress)
    click.echo(text, nl=False)
    if out is not None:
        from bot.exports import write

        files = write(result, out, suppressed=not no_suppress)
        click.echo(f"written to {out}: {', '.join(f.name for f in files)}", err=True)


@main.group()
def routing() -> None:
    """Routing of tensions to teams."""


@routing.command("check")
@click.pass_obj
def routing_check(config: Config) -> None:
    """List every category and ward that would reach no team; exit 1 if there are any."""
    from bot.actions.routing import gaps

    try:
        form = load_form(config.form.path)
    except FormError as exc:
        _fail(str(exc))
    categories = [o.value for o in form.question("category").options]
    used = {c for r in config.routing.rules for c in r.categories if c != "*"}
    unknown = sorted((used | set(config.routing.private_categories)) - set(categories))
    if unknown:
        _fail(f"routing refers to categories the form does not have: {', '.join(unknown)}")
    found = gaps(config, categories)
    click.echo(
        f"{len(config.teams)} team(s), {len(config.routing.rules)} rule(s), "
        f"default team: {config.routing.default_team or 'none'}"
    )
    unresolved = _unresolved_members(config)
    for key in unresolved:
        click.echo(f"{key}: no imported person with a slack_user_id has that email")
    if not found:
        click.echo(
            f"every category reaches a team in all {len(config.partnership.wards)} wards "
            "at every level"
        )
        if unresolved:
            sys.exit(1)
        return
    click.echo(f"{len(found)} category/ward combination(s) reach NO team:")
    for gap in found:
        levels = (
            "all levels"
            if gap.levels == (1, 2, 3, 4, 5)
            else "levels " + ", ".join(map(str, gap.levels))
        )
        click.echo(f"  {gap.category:<20} {gap.ward:<28} {levels}")
    sys.exit(1)


def _unresolved_members(config: Config) -> list[str]:
    """The keys (teams.N.members.M) of member emails that match no imported person with a
    slack_user_id: nobody could act as them. The database is opened only if there are any."""
    emails = [
        (f"teams.{i}.members.{j}", m)
        for i, team in enumerate(config.teams)
        for j, m in enumerate(team.members)
        if "@" in m
    ]
    if not emails:
        return []

    async def work(s: Any) -> list[str]:
        people = {p.email: p for p in await s.people.everyone()}
        return [
            key
            for key, email in emails
            if (p := people.get(email)) is None or not p.slack_user_id or not p.active
        ]

    return _run(config, work)


@main.command("run")
@click.pass_obj
def run(config: Config) -> None:
    """Run the bot: Telegram (polling or webhook), Slack, the outbox, the scheduler (on the
    leader) and the HTTP server (/healthz, /readyz, /metrics). SIGTERM stops it gracefully;
    SIGHUP re-reads teams, routing, deadlines and escalation from the config file."""
    from bot.app import TelegramRuntime, build_services, telegram_token

    try:
        token = telegram_token(config)
    except ConfigError as exc:
        _fail(str(exc))
    if (problem := delivery_problem(config)) is not None:
        _fail(problem)

    async def main_loop() -> None:
        services = await build_services(config)
        try:
            runtime = TelegramRuntime(services, token)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runtime.stop)
            # SIGHUP (`systemctl reload`): teams, routing, deadlines and escalation, no restart.
            source = Path(config.source)
            loop.add_signal_handler(signal.SIGHUP, runtime.reload, lambda: load_config(source))
            await runtime.run()
            # Work a listener started after answering (Slack acks first) gets a moment to end.
            await _settle_background_tasks(config.server.shutdown_seconds)
        finally:
            await services.close()

    try:
        asyncio.run(main_loop())
    except ConfigError as exc:
        _fail(str(exc))


async def _settle_background_tasks(timeout: float) -> None:
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout)
        if late:
            logging.getLogger(__name__).warning(
                "%d background task(s) still running at exit", len(late)
            )


@main.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for the demo's database, transcripts and status.",
)
def demo(out: Path) -> None:
    """Run the whole product offline against a simulated Telegram, and print what happened."""
    from bot.demo import run_demo

    sys.exit(asyncio.run(run_demo(out)))


if __name__ == "__main__":  # pragma: no cover
    main()
