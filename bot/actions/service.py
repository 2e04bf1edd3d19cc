"""Actions: each submitted tension becomes one action per routed team, acted on in Slack.

Every step is an event on the action's timeline; the ones meant for the reporter are relayed to
their chat with the report's reference. The team's Slack message is rebuilt from the database
after every change and updated in place, with the change also added to its thread. Two officers
clicking at once: the action's ``version`` decides, one wins and the other is told.

:class:`ActionService` is the entry point: the officers' steps (guarded by team membership and
the optimistic ``version``), what follows a send, and the tick. The rest is in small collaborators:
routing reports into actions in :mod:`bot.actions.opening`; the team's message, its thread and the
reporter's notices in :mod:`bot.actions.messages`; reminders and the escalation ladder in
:mod:`bot.actions.escalation`; the reporter's 4-weekly check in :mod:`bot.actions.checks`; the
admins' alerts in :mod:`bot.actions.alerts`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.actions import alerts
from bot.actions.checks import ReporterChecks
from bot.actions.escalation import Escalation
from bot.actions.messages import OUTCOME_LABELS, STATE_LABELS, ActionMessages
from bot.actions.opening import ActionOpener
from bot.actions.routing import route
from bot.clock import Clock
from bot.common import Waker, alert_admins
from bot.config import TEAMS_PLATFORM, Config, TeamConfig
from bot.domain import (
    MAX_NOTE,
    Action,
    ActionEvent,
    ActionState,
    ClosedAs,
    OutboxMessage,
    Report,
    Role,
)
from bot.forms.versions import FormService
from bot.messages import OutgoingMessage
from bot.people.identity import NotInvited, Who, identify
from bot.ports import MessageLinks, SendResult, Stale, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

_Change = Callable[["UnitOfWork", Action, datetime], Awaitable[str]]


class ActionError(Exception):
    """An officer's request that cannot be done; the message is shown to them."""


@dataclass(frozen=True)
class Officer:
    """Who clicked on a team's message: their user id on the teams' platform
    (:data:`bot.config.TEAMS_PLATFORM`), as ``teams.members`` names them."""

    address: str


class ActionService:
    """Creates, updates and relays actions."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        wake: Waker,
        links: MessageLinks | None = None,
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        self.forms = forms
        self.wake = wake
        self.teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}
        self.tz = config.partnership.tz
        # The collaborators, one per seam; each step here calls the one it needs.
        self.messages = ActionMessages(config, forms, links)
        self.escalation = Escalation(config, self.messages)
        self.checks = ReporterChecks(config, self.messages)
        self.opener = ActionOpener(config, self.messages)

    # ----------------------------------------------------------------- creation

    async def create_for_reports(
        self, uow: UnitOfWork, reports: Sequence[Report], now: datetime
    ) -> None:
        """Route each report and queue its actions to the teams' channels (same transaction)."""
        await self.opener.for_reports(uow, reports, now)

    # ----------------------------------------------------------------- after a send

    async def on_sent(
        self, uow: UnitOfWork, row: OutboxMessage, result: SendResult, now: datetime
    ) -> None:
        """The dispatcher's hook: the team's message is really in Slack now; and admins hear
        about anyone who has blocked the bot."""
        now = self.clock.now()  # business time (the dispatcher's clock is for rate limits)
        if result.blocked:
            await alerts.blocked(uow, row, now, self.config.platforms)
        if row.purpose != "action_post" or row.action_id is None:
            return
        if not result.ok:
            if row.attempts == 1:  # once per action, on the first failure: it stays queued
                await alerts.post_failed(uow, row, result.error, now, self.config.platforms)
            return
        action = await uow.actions.get(row.action_id)
        if action is None or action.delivered_at is not None:
            return
        report = await uow.reports.get(action.report_id)
        if report is not None:
            # Before any change (the order recategorising takes too): the posts of one
            # submission queue here, so exactly one of them sees them all delivered.
            await uow.reports.lock_period(report.period)
        action.post_ref = result.message_ref
        action.delivered_at = now
        team = self.teams.get(action.team_key)
        name = team.name if team else action.team_key
        await self.messages.event(
            uow, action, now, "delivered", TEAMS_PLATFORM, f"delivered to {name}"
        )
        await self.messages.tell_delivered(uow, action, now)
        if action.version > 0:
            # An officer acted on the post between Slack showing it and this record (the post
            # is built at version 0; on a busy machine the fault suite's officer clicked in that
            # gap): their change skipped the message and its thread, the ts being unknown then.
            # Catch up now, under the keys those changes would have used: nothing twice.
            for event in await uow.actions.events(action.id or 0):
                if event.kind not in ("created", "delivered"):
                    await self.messages.thread_post(uow, action, event, now)
            await self.messages.refresh_post(uow, action, now)

    # ----------------------------------------------------------------- officers

    async def acknowledge(self, officer: Officer, action_id: int, version: int) -> str:
        """Acknowledge an action (members of the owning team, or admins)."""

        async def change(uow: UnitOfWork, action: Action, now: datetime) -> str:
            # Before any change: a query after one would flush it early (see _change).
            who = await self._who(uow, officer, self.teams.get(action.team_key))
            if action.state != ActionState.OPEN:
                raise ActionError(f"Already {STATE_LABELS[action.state].lower()}.")
            action.move_to(ActionState.ACKNOWLEDGED)
            action.acknowledged_at = now
            action.acknowledged_by = officer.address
            team = self.teams[action.team_key]
            await self.messages.event(
                uow,
                action,
                now,
                "acknowledged",
                officer.address,
                f"acknowledged by {team.name}",
                for_reporter=True,
                headline=f"Acknowledged by {who}",
            )
            return "Acknowledged."

        return await self._change(officer, action_id, version, change)

    async def add_update(
        self, officer: Officer, action_id: int, version: int, text: str, for_reporter: bool
    ) -> str:
        """An update on the timeline; optionally relayed to the reporter."""
        text = text.strip()
        if not text:
            raise ActionError("Please write the update.")
        if len(text) > MAX_NOTE:
            raise ActionError(f"Please keep updates under {MAX_NOTE} characters.")

        async def change(uow: UnitOfWork, action: Action, now: datetime) -> str:
            # Before any change: a query after one would flush it early (see _change).
            who = await self._who(uow, officer, self.teams.get(action.team_key))
            if action.closed:
                raise ActionError("This action is closed.")
            if action.state == ActionState.OPEN:
                action.acknowledged_at, action.acknowledged_by = now, officer.address
            action.move_to(ActionState.IN_PROGRESS)
            await self.messages.event(
                uow,
                action,
                now,
                "update",
                officer.address,
                text,
                for_reporter=for_reporter,
                headline=f"Update from {who}",
                detail=text,
            )
            return "Update added."

        return await self._change(officer, action_id, version, change)

    async def close(
        self, officer: Officer, action_id: int, version: int, outcome: str, note: str
    ) -> str:
        """Close with an outcome; 'not our responsibility' must say where to go instead."""
        note = note.strip()
        if outcome not in OUTCOME_LABELS:
            raise ActionError("Please choose an outcome.")
        if outcome == ClosedAs.NOT_OUR_RESPONSIBILITY and not note:
            raise ActionError("Please say who is responsible, or where to go instead.")
        if len(note) > MAX_NOTE:
            raise ActionError(f"Please keep the note under {MAX_NOTE} characters.")

        async def change(uow: UnitOfWork, action: Action, now: datetime) -> str:
            # Before any change: a query after one would flush it early (see _change).
            who = await self._who(uow, officer, self.teams.get(action.team_key))
            if action.closed:
                raise ActionError("This action is already closed.")
            action.move_to(ActionState.CLOSED)
            action.outcome, action.outcome_note, action.closed_at = outcome, note, now
            text = OUTCOME_LABELS[outcome] + (f": {note}" if note else "")
            await self.messages.event(
                uow,
                action,
                now,
                "closed",
                officer.address,
                text,
                for_reporter=True,
                headline=f"Closed by {who}",
                detail=text,
            )
            return "Closed."

        return await self._change(officer, action_id, version, change)

    async def reassign(self, officer: Officer, action_id: int, version: int, team_key: str) -> str:
        """Hand the action to another team: this one closes as referred, the other opens."""
        if team_key not in self.teams:
            raise ActionError("Unknown team.")

        async def change(uow: UnitOfWork, action: Action, now: datetime) -> str:
            # Before any change: a query after one would flush it early (see _change).
            who = await self._who(uow, officer, self.teams.get(action.team_key))
            if action.closed:
                raise ActionError("This action is closed.")
            if team_key == action.team_key:
                raise ActionError("It is already with that team.")
            report = await uow.reports.get(action.report_id)
            assert report is not None
            target = self.teams[team_key]
            if report.category in self.config.routing.private_categories and not target.restricted:
                raise ActionError(f"{target.name} is not a need-to-know team for this category.")
            if any(a.team_key == team_key for a in await uow.actions.for_report(report.id or 0)):
                raise ActionError(f"{target.name} already has this report.")
            action.move_to(ActionState.CLOSED)
            action.outcome, action.closed_at = ClosedAs.REFERRED, now
            action.outcome_note = f"reassigned to {target.name}"
            await self.messages.event(
                uow,
                action,
                now,
                "reassigned",
                officer.address,
                f"passed to {target.name}",
                for_reporter=True,
                headline=f"Passed to {target.name} by {who}",
            )
            await self.opener.open(uow, report, team_key, now, actor=officer.address)
            return f"Reassigned to {target.name}."

        return await self._change(officer, action_id, version, change)

    async def recategorise(
        self, officer: Officer, action_id: int, version: int, category: str
    ) -> str:
        """Correct the report's category; it is routed again and the reporter is told."""

        async def change(uow: UnitOfWork, action: Action, now: datetime) -> str:
            # Before any change: a query after one would flush it early (see _change).
            who = await self._who(uow, officer, self.teams.get(action.team_key))
            report = await uow.reports.get(action.report_id)
            assert report is not None and report.id is not None
            form = await self.forms.definition(uow, report.form_version_id)
            question = form.question("category")
            if category not in {o.value for o in question.options}:
                raise ActionError("Please choose a category.")
            if category == report.category:
                raise ActionError("That is already its category.")
            old = form.display_value(question, report.category)
            new = form.display_value(question, category)
            # Before the change reaches the count triggers: see ReportRepo.lock_period.
            await uow.reports.lock_period(report.period)
            report.category = category
            answers = dict(report.answers)
            answers["category"] = category
            report.answers = answers
            r = route(self.config, category=category, ward=report.ward, level=report.level)
            existing = {a.team_key: a for a in await uow.actions.for_report(report.id)}
            for key, other in existing.items():
                if key not in r.teams and not other.closed:
                    other.move_to(ActionState.CLOSED)
                    other.outcome, other.closed_at = ClosedAs.REFERRED, now
                    other.outcome_note = f"re-routed: the category is now {new}"
                    if other is not action:
                        other.version += 1
                        await uow.actions.save(other)
                        await self.messages.refresh_post(uow, other, now)
            for key in r.teams:
                if key not in existing:
                    await self.opener.open(uow, report, key, now, actor=officer.address)
            names = ", ".join(self.teams[k].name for k in r.teams) or "no team yet"
            await self.messages.event(
                uow,
                action,
                now,
                "recategorised",
                officer.address,
                f"category changed from {old} to {new}; it now goes to {names}",
                for_reporter=True,
                headline=f"Re-routed by {who}",
                detail=f"category changed from {old} to {new}; it now goes to {names}",
            )
            if not r.teams:
                await alerts.unrouted_after_recategorise(
                    uow, report, category, now, self.config.platforms
                )
            return f"Category changed to {new}; routed to {names}."

        return await self._change(officer, action_id, version, change)

    async def category_choices(self, action_id: int) -> list[tuple[str, str]]:
        """(value, label) of the categories of the report's form."""
        async with self.uow_factory() as uow:
            action = await uow.actions.get(action_id)
            report = await uow.reports.get(action.report_id) if action else None
            if report is None:
                return []
            form = await self.forms.definition(uow, report.form_version_id)
        return [
            (o.value, o.label)
            for o in form.question("category").options
            if o.value != report.category
        ]

    async def check(self, officer: Officer, action_id: int, version: int) -> None:
        """Raise :class:`ActionError` unless this officer may act on this version now."""
        async with self.uow_factory() as uow:
            await self._load_for(uow, officer, action_id, version)

    async def reassign_choices(self, action_id: int) -> list[tuple[str, str]]:
        """(key, name) of the teams this action may be passed to."""
        async with self.uow_factory() as uow:
            action = await uow.actions.get(action_id)
            report = await uow.reports.get(action.report_id) if action else None
        if action is None or report is None:
            return []
        private = report.category in self.config.routing.private_categories
        return [
            (t.key, t.name)
            for t in self.config.teams
            if t.key != action.team_key and (t.restricted or not private)
        ]

    async def _load_for(
        self, uow: UnitOfWork, officer: Officer, action_id: int, version: int
    ) -> Action:
        action = await uow.actions.get(action_id)
        if action is None:
            raise ActionError("That action no longer exists.")
        team = self.teams.get(action.team_key)
        if team is None or not await self._may_act(uow, officer, team):
            # Not the officer's platform id: they may be no one we know.
            log.warning("refused an officer outside the owning team on action %s", action_id)
            raise ActionError(
                f"Only members of {team.name if team else 'the owning team'} can do that."
            )
        if action.version != version:
            raise ActionError(
                "Someone else has just changed this action; the message now shows its current "
                "state."
            )
        return action

    async def _change(self, officer: Officer, action_id: int, version: int, change: _Change) -> str:
        now = self.clock.now()
        async with self.uow_factory() as uow:
            action = await self._load_for(uow, officer, action_id, version)
            try:
                reply = await change(uow, action, now)
                action.version += 1
                await uow.actions.save(action)  # applies only if nobody moved it on meanwhile
            except Stale:
                raise ActionError(
                    "Someone else has just changed this action; the message now shows its "
                    "current state."
                ) from None
            await self.messages.refresh_post(uow, action, now)
            await uow.commit()
        self.wake()
        return reply

    @staticmethod
    async def _who(uow: UnitOfWork, officer: Officer, team: TeamConfig | None) -> str:
        """ "Jane Smith, Community Cohesion Team": the officer by name when we know them, and
        the team they acted for (just the team when the officer is not on the people list)."""
        person = await uow.people.by_address(TEAMS_PLATFORM, officer.address)
        names = [person.name] if person is not None and person.active else []
        names += [team.name] if team is not None else []
        return ", ".join(names) or "an officer"

    @staticmethod
    async def _may_act(uow: UnitOfWork, officer: Officer, team: TeamConfig) -> bool:
        if officer.address in team.members:
            return True
        person = await uow.people.by_address(TEAMS_PLATFORM, officer.address)
        if person is None or not person.active:
            return False
        # A member by email: the imported person whose address on the teams' platform this is.
        return team.has_member(officer.address, person.email) or (person.role == Role.ADMIN.value)

    async def team_message(self, uow: UnitOfWork, action: Action) -> OutgoingMessage:
        """The team's Slack message for an action, built from the database."""
        return await self.messages.team_message(uow, action)

    # ----------------------------------------------------------------- escalation

    async def tick(self) -> dict[str, int]:
        """Remind and escalate unacknowledged actions: at most one new rung per action per
        tick, each rung once (``escalation_level``), so running twice or late is safe; and ask
        the reporters whose actions are due for their check."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            fired = await self.escalation.escalate_overdue(uow, now)
            if asked := await self.checks.ask_due(uow, now):
                fired["reporter-check"] = fired.get("reporter-check", 0) + asked
            await uow.commit()
        if fired:
            self.wake()
        return fired

    async def alert_admins(self, uow: UnitOfWork, now: datetime, text: str, *, key: str) -> None:
        """Tell every reachable admin on the platform they use (:func:`bot.common.alert_admins`:
        the text, which may name a person, never reaches the application log)."""
        await alert_admins(uow, now, text, key=key, platforms=self.config.platforms)

    # ----------------------------------------------------------------- the reporter's check

    async def answer_check(self, who: Who, action_id: int, still: bool) -> str:
        """The reporter's answer to the check from a platform that has no conversation (Slack):
        the same as :meth:`reporter_answer`, in a unit of work of its own."""
        async with self.uow_factory() as uow:
            try:
                person = await identify(uow, who, self.config.partnership)
            except NotInvited as refused:
                return str(refused)
            assert person.id is not None
            reply = await self.reporter_answer(uow, person.id, action_id, still, self.clock.now())
            await uow.commit()
        self.wake()
        return reply

    async def reporter_answer(
        self, uow: UnitOfWork, person_id: int, action_id: int, still: bool, now: datetime
    ) -> str:
        """The reporter's answer to the check (in the caller's unit of work). Still a problem:
        the action is reopened (to be acknowledged again, with a new deadline) and the team is
        told; sorted: the team is told, and can close it."""
        return await self.checks.answer(uow, person_id, action_id, still, now)

    async def states_for(self, uow: UnitOfWork, report: Report) -> str:
        """How a report stands with its teams, for the reporter's /status."""
        return await self.messages.states_for(uow, report)

    async def timeline(self, action_id: int) -> list[ActionEvent]:
        """The action's events in order."""
        async with self.uow_factory() as uow:
            return list(await uow.actions.events(action_id))
