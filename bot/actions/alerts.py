"""What the admins hear about actions: a report that reaches no team, a team post that Slack
refuses, someone who has blocked the bot.

Each alert goes to every reachable admin through :func:`bot.common.alert_admins` (the text, which
may name a person, never reaches the application log), once per ``key``.
"""

from __future__ import annotations

from datetime import datetime

from bot.common import alert_admins
from bot.domain import OutboxMessage, Report
from bot.ports import UnitOfWork


async def unrouted(
    uow: UnitOfWork, report: Report, now: datetime, platforms: frozenset[str]
) -> None:
    """A submitted report that the routing rules send to no team."""
    await alert_admins(
        uow,
        now,
        f"{report.reference} ({report.category}, {report.ward}) reaches no "
        "team: check the routing rules (tensionbot routing check)",
        key=f"report:{report.reference}:unrouted",
        platforms=platforms,
    )


async def unrouted_after_recategorise(
    uow: UnitOfWork, report: Report, category: str, now: datetime, platforms: frozenset[str]
) -> None:
    """An officer changed a report's category to one that reaches no team."""
    await alert_admins(
        uow,
        now,
        f"{report.reference} reaches no team after its category changed to {category}",
        key=f"report:{report.reference}:unrouted:{category}",
        platforms=platforms,
    )


async def post_failed(
    uow: UnitOfWork, row: OutboxMessage, error: str | None, now: datetime, platforms: frozenset[str]
) -> None:
    """An action's post to its team's channel failed; it stays queued and is retried."""
    await alert_admins(
        uow,
        now,
        f"cannot post action {row.action_id} to the team's {row.channel} channel "
        f"{row.recipient} ({error}); it stays queued and is retried. Is the "
        "bot a member of that channel?",
        key=f"action:{row.action_id}:post-failed",
        platforms=platforms,
    )


async def blocked(
    uow: UnitOfWork, row: OutboxMessage, now: datetime, platforms: frozenset[str]
) -> None:
    """Someone blocked the bot (the dispatcher has marked them): tell the admins once per
    block, so they can get in touch another way."""
    person = await uow.people.by_chat(row.channel, row.recipient)
    if person is None or person.blocked_at is None:
        return
    wards = ", ".join(person.wards) or "no ward"
    await alert_admins(
        uow,
        now,
        f"{person.name} ({person.role}, {wards}) has blocked the bot on "
        f"{row.channel.title()}: a {row.purpose} message was not delivered and they are marked unreachable until "
        "they write to the bot again. Please contact them another way.",
        key=f"person:{person.id}:blocked:{person.blocked_at:%Y%m%dT%H%M%S}",
        platforms=platforms,
    )
