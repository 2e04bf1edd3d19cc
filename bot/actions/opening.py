"""Opening actions: each submitted report is routed (:func:`bot.actions.routing.route`) and
becomes one action per team, its post queued to the team's Slack channel in the same
transaction. A report that reaches no team, or a deployment without Slack (``routing.deliver =
"log_only"``), gets no action: nothing waits for an acknowledgement that can never come."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.actions import alerts
from bot.actions.messages import ActionMessages
from bot.actions.routing import route
from bot.common import audit, enqueue
from bot.config import TEAMS_PLATFORM, Config, TeamConfig
from bot.deadlines import ack_deadline
from bot.domain import Action, Report
from bot.ports import UnitOfWork

log = logging.getLogger(__name__)


class ActionOpener:
    """Turns reports into actions for their teams."""

    def __init__(self, config: Config, messages: ActionMessages) -> None:
        self.config = config
        self.messages = messages
        self.teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}

    async def for_reports(self, uow: UnitOfWork, reports: Sequence[Report], now: datetime) -> None:
        """Route each report and queue its actions to the teams' channels (same transaction)."""
        for report in reports:
            assert report.id is not None
            r = route(self.config, category=report.category, ward=report.ward, level=report.level)
            if r.unrouted:
                report.status = "unrouted"
                await alerts.unrouted(uow, report, now, self.config.platforms)
                await audit(
                    uow,
                    now,
                    "router",
                    "report.unrouted",
                    report.reference,
                    category=report.category,
                    ward=report.ward,
                    reason=r.reason,
                )
                log.warning("report %s reaches no team (%s)", report.reference, r.reason)
                continue
            if self.config.routing.deliver == "log_only":
                # No Slack: record where it would have gone; no action, so nothing waits for an
                # acknowledgement that can never come.
                report.status = "logged"
                await audit(
                    uow,
                    now,
                    "router",
                    "report.logged",
                    report.reference,
                    teams=",".join(r.teams),
                    reason=r.reason,
                )
                log.info(
                    "report %s routed to %s: routing.deliver is log_only, not sent",
                    report.reference,
                    ", ".join(r.teams),
                )
                continue
            report.status = "routed"
            for key in r.teams:
                await self.open(uow, report, key, now, actor="router")

    async def open(
        self, uow: UnitOfWork, report: Report, team_key: str, now: datetime, actor: str
    ) -> Action:
        """A new action for one team, its post queued to the team's channel."""
        assert report.id is not None
        team = self.teams[team_key]
        action = Action(
            report_id=report.id,
            team_key=team_key,
            created_at=now,
            ack_due_at=ack_deadline(self.config, report.level, now),
            room=team.room,
        )
        await uow.actions.add(action)
        await self.messages.event(uow, action, now, "created", actor, f"routed to {team.name}")
        message = await self.messages.team_message(uow, action)
        await enqueue(
            uow,
            channel=TEAMS_PLATFORM,
            recipient=team.room,
            message=message,
            key=f"action:{action.id}:post",
            now=now,
            purpose="action_post",
            action_id=action.id,
        )
        return action
