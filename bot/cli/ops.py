"""Running and checking the bot: ``run``, ``check-config``, ``health``, ``doctor``,
``db upgrade`` and ``routing check``. (The demo is not part of the product: ``make demo``
runs ``python -m sim.demo`` from a checkout.)"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from bot.cli.base import fail, main, with_services
from bot.config import Config, ConfigError, delivery_problem, load_config
from bot.forms import FormError, load_form


@main.command("check-config")
@click.pass_obj
def check_config(config: Config) -> None:
    """Validate the configuration and the form file, then exit."""
    try:
        form = load_form(config.form.path)
    except FormError as exc:
        fail(str(exc))
    if (problem := delivery_problem(config)) is not None:
        fail(problem)
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

    from handlers.network import http_address
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
        fail(f"unhealthy: database unreachable ({status.error})")
    if not status.current:
        fail(f"unhealthy: database at revision {status.revision}, the code expects {status.head}")
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
            fail(f"unhealthy: {url} does not answer ({exc})")
        if not ok:
            fail(f"unhealthy: {url} answered {answer.status}")
        click.echo(f"healthy: database migrated, {url} answers")
    elif beat is not None:
        limit = max(30.0, 10 * config.cluster.leader_retry_seconds)
        try:
            age = time.time() - beat.stat().st_mtime
        except OSError:
            fail(f"unhealthy: no heartbeat at {beat} (is `tensionbot run` running?)")
        if age > limit:
            fail(f"unhealthy: heartbeat {beat} is {age:.0f}s old (more than {limit:.0f}s)")
        click.echo(f"healthy: database migrated, heartbeat {age:.0f}s old")
    else:
        fail(
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
        fail(str(exc))
    categories = [o.value for o in form.question("category").options]
    used = {c for r in config.routing.rules for c in r.categories if c != "*"}
    unknown = sorted((used | set(config.routing.private_categories)) - set(categories))
    if unknown:
        fail(f"routing refers to categories the form does not have: {', '.join(unknown)}")
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
            if (p := people.get(email)) is None or not p.address_on("slack") or not p.active
        ]

    return with_services(config, work)


async def _migrate_in_child(config: Config) -> None:
    """Migrate the database, when it is behind, in a child process: the running service then
    never holds Alembic (tests/test_startup_imports.py)."""
    from storage.database import Database
    from storage.migrate import upgrade_in_child

    database = Database(
        config.database.url, sqlite_busy_seconds=config.database.sqlite_busy_seconds
    )
    try:
        await upgrade_in_child(database.engine, config.database.url)
    finally:
        await database.dispose()


@main.command("run")
@click.pass_obj
def run(config: Config) -> None:
    """Run the bot: Telegram (polling or webhook), Slack, the outbox, the scheduler (on the
    leader) and the HTTP server (/healthz, /readyz, /metrics). SIGTERM stops it gracefully;
    SIGHUP re-reads teams, routing, deadlines and escalation from the config file."""
    from handlers.ptb import import_telegram

    import_telegram()  # first, before anything imports telegram with its Passport (handlers/ptb.py)
    from bot.app import build_services, telegram_token
    from bot.runtime import Runtime

    try:
        token = telegram_token(config)
    except ConfigError as exc:
        fail(str(exc))
    if (problem := delivery_problem(config)) is not None:
        fail(problem)

    async def main_loop() -> None:
        await _migrate_in_child(config)
        services = await build_services(config)  # at the head now: loads no Alembic
        try:
            runtime = Runtime(services, token)
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
        fail(str(exc))


async def _settle_background_tasks(timeout: float) -> None:
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout)
        if late:
            logging.getLogger(__name__).warning(
                "%d background task(s) still running at exit", len(late)
            )
