"""Returns: ``campaign open|status|web-link``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click

from bot.cli.base import ADMIN, fail, main, with_services
from bot.config import Config


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
        camp, created = with_services(config, work)
    except CampaignError as exc:
        fail(str(exc))
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
        status, cadences = with_services(config, work)
    except CampaignError as exc:
        fail(str(exc))
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
        fail("the web form is off: set TENSIONBOT_WEB_SECRET (see [web] in config.example.toml)")

    async def work(s: Any) -> str:
        camp = await s.campaigns.resolve(period, key)
        return str(await s.web.link_for(email, camp.key, actor=ADMIN))

    try:
        click.echo(with_services(config, work))
    except CampaignError as exc:
        fail(str(exc))
    except LookupError:
        fail(f"no person with email {email!r}")


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
