"""The escalation ladder for actions nobody has acknowledged: a reminder in the team's thread,
then a message to each channel up the ladder (``escalation.rungs``), each rung once."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.actions.messages import ActionMessages
from bot.common import enqueue, local_time
from bot.config import TEAMS_PLATFORM, Config, TeamConfig
from bot.domain import Action
from bot.messages import MessageBuilder, bold, code
from bot.ports import UnitOfWork


class Escalation:
    """Reminds and escalates overdue actions (part of the actions' tick)."""

    def __init__(self, config: Config, messages: ActionMessages) -> None:
        self.config = config
        self.messages = messages
        self.teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}
        self.tz = config.partnership.tz

    async def escalate_overdue(self, uow: UnitOfWork, now: datetime) -> dict[str, int]:
        """At most one new rung per action per call, each rung once (``escalation_level``), so
        running twice or late is safe; how many fired, by rung target."""
        rungs = self.config.escalation.rungs
        fired: dict[str, int] = {}
        for action in await uow.actions.overdue(now):
            assert action.id is not None and action.ack_due_at is not None
            if action.escalation_level >= len(rungs):
                continue
            rung = rungs[action.escalation_level]
            if now < action.ack_due_at + timedelta(hours=rung.after_hours):
                continue
            action.escalation_level += 1  # not a version change: buttons stay valid
            await self._escalate(uow, action, rung.target, now)
            fired[rung.target] = fired.get(rung.target, 0) + 1
        return fired

    async def _escalate(self, uow: UnitOfWork, action: Action, target: str, now: datetime) -> None:
        report = await uow.reports.get(action.report_id)
        assert report is not None and action.id is not None and action.ack_due_at is not None
        team = self.teams[action.team_key]
        due = local_time(action.ack_due_at, self.tz)
        if target == "team":
            await self.messages.event(
                uow, action, now, "reminder", "scheduler", f"not acknowledged yet: it was due {due}"
            )
            return
        await self.messages.event(
            uow,
            action,
            now,
            "escalated",
            "scheduler",
            f"escalated to {target}: not acknowledged by {team.name} (due {due})",
        )
        message = (
            MessageBuilder()
            .line(
                bold("Escalation: "),
                code(report.reference),
                f" · {report.ward} · level {report.level}",
            )
            .line(f"Routed to {team.name} and not acknowledged; it was due {due}.")
            .build()
        )
        await enqueue(
            uow,
            channel=TEAMS_PLATFORM,
            recipient=target,
            message=message,
            key=f"action:{action.id}:escalate:{action.escalation_level}",
            now=now,
            purpose="escalation",
            action_id=action.id,
        )
