"""The reporter's check: every four weeks an open action's reporter is asked "is this still a
problem?" (as FixMyStreet does), and their answer reopens the action or tells the team it is
sorted."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.actions.messages import ActionMessages
from bot.buttons import ButtonAction, Kind
from bot.common import enqueue
from bot.config import Config, TeamConfig
from bot.deadlines import ack_deadline
from bot.domain import Action, ActionState
from bot.messages import Button, MessageBuilder, bold, code
from bot.ports import UnitOfWork

CHECK_EVERY = timedelta(weeks=4)  # FixMyStreet asks reporters every four weeks


class ReporterChecks:
    """Asks reporters whether their report is still a problem, and takes their answers."""

    def __init__(self, config: Config, messages: ActionMessages) -> None:
        self.config = config
        self.messages = messages
        self.teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}

    async def ask_due(self, uow: UnitOfWork, now: datetime) -> int:
        """Ask about every action due for its check (part of the actions' tick); how many
        reporters were asked."""
        asked = 0
        for action in await uow.actions.due_for_check(now - CHECK_EVERY):
            action.last_check_at = now
            if await self._ask_reporter(uow, action, now):
                asked += 1
        return asked

    async def _ask_reporter(self, uow: UnitOfWork, action: Action, now: datetime) -> bool:
        assert action.id is not None
        report = await uow.reports.get(action.report_id)
        person = await uow.people.get(report.person_id) if report and report.person_id else None
        # Someone who has left is not asked: its buttons would answer them as a stranger.
        address = self.messages.address(person) if person is not None and person.active else None
        if report is None or address is None:
            return False
        team = self.teams[action.team_key]
        message = (
            MessageBuilder()
            .line(code(report.reference), " ", bold("Is this still a problem?"))
            .line(
                f"{team.name} is still working on your report ({report.ward}). Please tell us "
                "whether it is still a problem."
            )
            .row(
                Button(label="Still a problem", data=ButtonAction(Kind.STILL, action.id).encode()),
                Button(
                    label="Sorted now, thanks", data=ButtonAction(Kind.SORTED, action.id).encode()
                ),
            )
            .build()
        )
        await self.messages.event(
            uow,
            action,
            now,
            "check",
            "scheduler",
            "asked the reporter whether it is still a problem",
        )
        await enqueue(
            uow,
            channel=address[0],
            recipient=address[1],
            message=message,
            key=f"action:{action.id}:check:{now.isoformat()}",
            now=now,
            purpose="reply",
        )
        return True

    async def answer(
        self, uow: UnitOfWork, person_id: int, action_id: int, still: bool, now: datetime
    ) -> str:
        """The reporter's answer to the check (in the caller's unit of work). Still a problem:
        the action is reopened (to be acknowledged again, with a new deadline) and the team is
        told; sorted: the team is told, and can close it."""
        action = await uow.actions.get(action_id)
        report = await uow.reports.get(action.report_id) if action else None
        if action is None or report is None or report.person_id != person_id:
            return "That button is not valid any more."
        if action.closed:
            return f"{report.reference} is already closed."
        if still and action.state == ActionState.OPEN:
            return f"Thank you: the team already knows {report.reference} is still a problem."
        if still:
            action.move_to(ActionState.OPEN)
            action.ack_due_at = ack_deadline(self.config, report.level, now)
            action.escalation_level = 0
            action.version += 1
            await self.messages.event(
                uow,
                action,
                now,
                "reopened",
                "reporter",
                "the reporter says it is still a problem: please acknowledge again",
            )
        else:
            await self.messages.event(
                uow,
                action,
                now,
                "reporter_sorted",
                "reporter",
                "the reporter says it is sorted now: please close it",
            )
        await uow.actions.save(action)
        await self.messages.refresh_post(uow, action, now)
        return (
            f"Thank you. We have told the team that {report.reference} is still a problem."
            if still
            else f"Thank you. We have told the team that {report.reference} is sorted."
        )
