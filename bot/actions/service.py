"""Actions: each submitted tension becomes one action per routed team, acted on in Slack.

Every step is an event on the action's timeline; the ones meant for the reporter are relayed to
their chat with the report's reference. The team's Slack message is rebuilt from the database
after every change and updated in place, with the change also added to its thread. Two officers
clicking at once: the action's ``version`` decides, one wins and the other is told.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.actions.routing import route
from bot.buttons import ButtonAction, Kind
from bot.clock import Clock
from bot.common import Waker, address_of, alert_admins, audit, enqueue, local_time
from bot.config import Config, TeamConfig
from bot.deadlines import ack_deadline
from bot.domain import (
    MAX_NOTE,
    NEWS,
    Action,
    ActionEvent,
    ActionState,
    ClosedAs,
    OutboxMessage,
    Person,
    Report,
    Role,
)
from bot.forms import FormDefinition
from bot.forms.versions import FormService
from bot.messages import Button, MessageBuilder, OutgoingMessage, bold, code, italic, link
from bot.people.identity import NotInvited, Who, identify
from bot.places import stored_link
from bot.ports import SendResult, Stale, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

TEAM_PLATFORM = "slack"
"""Where the teams work (their channels, and the officers' user ids in ``teams.members``)."""

OUTCOME_LABELS: dict[str, str] = {
    ClosedAs.RESOLVED: "Resolved",
    ClosedAs.NO_FURTHER_ACTION: "Closed: no further action",
    ClosedAs.NOT_OUR_RESPONSIBILITY: "Closed: not our responsibility",
    ClosedAs.REFERRED: "Referred on",
    ClosedAs.DUPLICATE: "Closed: duplicate",
}
STATE_LABELS: dict[str, str] = {
    ActionState.OPEN: "Waiting to be acknowledged",
    ActionState.ACKNOWLEDGED: "Acknowledged",
    ActionState.IN_PROGRESS: "In progress",
    ActionState.CLOSED: "Closed",
}
#: What /status says of a report with no action (yet): never "waiting to be acknowledged" for a
#: report that no team was sent.
REPORT_STATUS_LABELS = {
    "logged": "Recorded; not sent to a team (the bot is not connected to the teams' Slack)",
    "unrouted": "Recorded; not passed to a team yet",
}
#: An open action whose Slack post has not gone out yet: nobody can acknowledge it so far.
NOT_DELIVERED = "Not delivered to the team yet"
CHECK_EVERY = timedelta(weeks=4)  # FixMyStreet asks reporters every four weeks
_Change = Callable[["UnitOfWork", Action, datetime], Awaitable[str]]


class ActionError(Exception):
    """An officer's request that cannot be done; the message is shown to them."""


@dataclass(frozen=True)
class Officer:
    """Who clicked on a team's message: their user id on the teams' platform
    (:data:`TEAM_PLATFORM`), as ``teams.members`` names them."""

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
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        self.forms = forms
        self.wake = wake
        self.teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}
        self.tz = config.partnership.tz

    # ----------------------------------------------------------------- creation

    async def create_for_reports(
        self, uow: UnitOfWork, reports: Sequence[Report], now: datetime
    ) -> None:
        """Route each report and queue its actions to the teams' channels (same transaction)."""
        for report in reports:
            assert report.id is not None
            r = route(self.config, category=report.category, ward=report.ward, level=report.level)
            if r.unrouted:
                report.status = "unrouted"
                await self.alert_admins(
                    uow,
                    now,
                    f"{report.reference} ({report.category}, {report.ward}) reaches no "
                    "team: check the routing rules (tensionbot routing check)",
                    key=f"report:{report.reference}:unrouted",
                )
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
                await self._open_action(uow, report, key, now, actor="router")

    async def _open_action(
        self, uow: UnitOfWork, report: Report, team_key: str, now: datetime, actor: str
    ) -> Action:
        assert report.id is not None
        team = self.teams[team_key]
        action = Action(
            report_id=report.id,
            team_key=team_key,
            created_at=now,
            ack_due_at=ack_deadline(self.config, report.level, now),
            slack_channel=team.slack_channel,
        )
        await uow.actions.add(action)
        await self._event(uow, action, now, "created", actor, f"routed to {team.name}")
        message = await self.team_message(uow, action)
        await enqueue(
            uow,
            channel="slack",
            recipient=team.slack_channel,
            message=message,
            key=f"action:{action.id}:post",
            now=now,
            purpose="action_post",
            action_id=action.id,
        )
        return action

    # ----------------------------------------------------------------- after a send

    async def on_sent(
        self, uow: UnitOfWork, row: OutboxMessage, result: SendResult, now: datetime
    ) -> None:
        """The dispatcher's hook: the team's message is really in Slack now; and admins hear
        about anyone who has blocked the bot."""
        now = self.clock.now()  # business time (the dispatcher's clock is for rate limits)
        if result.blocked:
            await self._alert_blocked(uow, row, now)
        if row.purpose != "action_post" or row.action_id is None:
            return
        if not result.ok:
            if row.attempts == 1:  # once per action, on the first failure: it stays queued
                await self.alert_admins(
                    uow,
                    now,
                    f"cannot post action {row.action_id} to Slack channel "
                    f"{row.recipient} ({result.error}); it stays queued and is retried. Is the "
                    "bot a member of that channel?",
                    key=f"action:{row.action_id}:post-failed",
                )
            return
        action = await uow.actions.get(row.action_id)
        if action is None or action.delivered_at is not None:
            return
        report = await uow.reports.get(action.report_id)
        if report is not None:
            # Before any change (the order recategorising takes too): the posts of one
            # submission queue here, so exactly one of them sees them all delivered.
            await uow.reports.lock_period(report.period)
        action.slack_ts = result.message_ref
        action.delivered_at = now
        team = self.teams.get(action.team_key)
        name = team.name if team else action.team_key
        await self._event(uow, action, now, "delivered", "slack", f"delivered to {name}")
        await self._tell_delivered(uow, action, now)
        if action.version > 0:
            # An officer acted on the post between Slack showing it and this record (the post
            # is built at version 0; on a busy machine the fault suite's officer clicked in that
            # gap): their change skipped the message and its thread, the ts being unknown then.
            # Catch up now, under the keys those changes would have used: nothing twice.
            for event in await uow.actions.events(action.id or 0):
                if event.kind not in ("created", "delivered"):
                    await self._thread_post(uow, action, event, now)
            await self._refresh_slack(uow, action, now)

    async def _tell_delivered(self, uow: UnitOfWork, action: Action, now: datetime) -> None:
        """One "delivered" notice per submission, once every team has its post: a return with
        two tensions routed to three teams gives the reporter one message, not three."""
        report = await uow.reports.get(action.report_id)
        if report is None or report.person_id is None:
            return
        batch = [
            r
            for r in await uow.reports.for_person(report.person_id, limit=50)
            if r.created_at == report.created_at
        ]
        teams: list[tuple[Report, list[str]]] = []
        for r in sorted(batch, key=lambda r: r.reference):
            assert r.id is not None
            actions = await uow.actions.for_report(r.id)
            if any(a.delivered_at is None for a in actions):
                return  # the last post to go out sends the notice
            names = [
                self.teams[a.team_key].name if a.team_key in self.teams else a.team_key
                for a in actions
            ]
            teams.append((r, names))
        person = await uow.people.get(report.person_id)
        address = self._address(person) if person is not None else None
        if address is None:
            return
        b = MessageBuilder()
        if len(teams) == 1:
            b.line(code(teams[0][0].reference), " ", bold(f"Delivered to {_and(teams[0][1])}"))
        else:
            b.line(bold(f"Your {len(teams)} reports have been delivered"))
            for r, names in teams:
                b.line(code(r.reference), f" to {_and(names)}")
        await enqueue(
            uow,
            channel=address[0],
            recipient=address[1],
            message=b.build(),
            key=f"delivered:{report.person_id}:{min(r.reference for r, _ in teams)}",
            now=now,
            purpose=NEWS,
        )

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
            await self._event(
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
            await self._event(
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
            await self._event(
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
            await self._event(
                uow,
                action,
                now,
                "reassigned",
                officer.address,
                f"passed to {target.name}",
                for_reporter=True,
                headline=f"Passed to {target.name} by {who}",
            )
            await self._open_action(uow, report, team_key, now, actor=officer.address)
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
                        await self._refresh_slack(uow, other, now)
            for key in r.teams:
                if key not in existing:
                    await self._open_action(uow, report, key, now, actor=officer.address)
            names = ", ".join(self.teams[k].name for k in r.teams) or "no team yet"
            await self._event(
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
                await self.alert_admins(
                    uow,
                    now,
                    f"{report.reference} reaches no team after its category changed to {category}",
                    key=f"report:{report.reference}:unrouted:{category}",
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
            log.warning("refused slack user %s on action %s", officer.address, action_id)
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
            await self._refresh_slack(uow, action, now)
            await uow.commit()
        self.wake()
        return reply

    @staticmethod
    async def _who(uow: UnitOfWork, officer: Officer, team: TeamConfig | None) -> str:
        """ "Jane Smith, Community Cohesion Team": the officer by name when we know them, and
        the team they acted for (just the team when the officer is not on the people list)."""
        person = await uow.people.by_address(TEAM_PLATFORM, officer.address)
        names = [person.name] if person is not None and person.active else []
        names += [team.name] if team is not None else []
        return ", ".join(names) or "an officer"

    @staticmethod
    async def _may_act(uow: UnitOfWork, officer: Officer, team: TeamConfig) -> bool:
        if officer.address in team.members:
            return True
        person = await uow.people.by_address(TEAM_PLATFORM, officer.address)
        if person is None or not person.active:
            return False
        # A member by email: the imported person whose address on the teams' platform this is.
        return team.has_member(officer.address, person.email) or (person.role == Role.ADMIN.value)

    # ----------------------------------------------------------------- timeline and messages

    async def _event(
        self,
        uow: UnitOfWork,
        action: Action,
        now: datetime,
        kind: str,
        actor: str,
        text: str,
        *,
        for_reporter: bool = False,
        headline: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an event; ``headline`` names what happened and who did it, once, in the
        thread and the reporter's notice (``detail``, if any, follows it)."""
        assert action.id is not None
        event = ActionEvent(
            action_id=action.id,
            at=now,
            kind=kind,
            actor=actor,
            text=text,
            for_reporter=for_reporter,
        )
        await uow.actions.add_event(event)
        if action.slack_ts is not None and kind not in ("created", "delivered"):
            await self._thread_post(uow, action, event, now, headline, detail)
        if for_reporter:
            await self._tell_reporter(uow, action, event, headline, detail)

    async def _thread_post(
        self,
        uow: UnitOfWork,
        action: Action,
        event: ActionEvent,
        now: datetime,
        headline: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The change also goes into the thread under the team's message (once per event):
        ``headline`` names what happened and who did it, once (an event caught up later, whose
        headline is not kept, shows its kind and text)."""
        line = (
            MessageBuilder().line(bold(headline), *([": ", detail] if detail else []))
            if headline
            else MessageBuilder().line(bold(f"{event.kind.capitalize()}: "), event.text)
        )
        await enqueue(
            uow,
            channel="slack",
            recipient=action.slack_channel or "",
            message=line.build(),
            key=f"action:{action.id}:thread:{event.id}",
            now=now,
            purpose="action_thread",
            thread_ref=action.slack_ts,
        )

    async def _tell_reporter(
        self,
        uow: UnitOfWork,
        action: Action,
        event: ActionEvent,
        headline: str | None = None,
        detail: str | None = None,
    ) -> None:
        report = await uow.reports.get(action.report_id)
        if report is None or report.person_id is None:
            return
        person = await uow.people.get(report.person_id)
        if person is None:
            return
        address = self._address(person)
        if address is None:
            return
        channel, recipient = address
        b = MessageBuilder().line(
            code(report.reference), " ", bold(headline or _reporter_headline(event))
        )
        if headline is None:
            b.line(event.text)
        elif detail:
            b.line(detail)
        message = b.build()
        await enqueue(
            uow,
            channel=channel,
            recipient=recipient,
            message=message,
            key=f"action-event:{event.id}:reporter",
            now=event.at,
            purpose=NEWS,
        )

    async def _refresh_slack(self, uow: UnitOfWork, action: Action, now: datetime) -> None:
        if action.slack_ts is None:
            return  # not posted yet: the post itself will show the current state
        message = await self.team_message(uow, action)
        await enqueue(
            uow,
            channel="slack",
            recipient=action.slack_channel or "",
            message=message,
            key=f"action:{action.id}:v{action.version}",
            now=now,
            purpose="action_update",
            edit_ref=action.slack_ts,
        )

    async def team_message(self, uow: UnitOfWork, action: Action) -> OutgoingMessage:
        """The team's Slack message for an action, built from the database."""
        assert action.id is not None
        report = await uow.reports.get(action.report_id)
        assert report is not None
        form: FormDefinition = await self.forms.definition(uow, report.form_version_id)
        category = form.display_value(form.question("category"), report.category)
        level = form.display_value(form.question("level"), str(report.level))
        basis = form.display_value(form.question("basis"), report.basis)
        b = MessageBuilder()
        b.line(bold(f"{report.reference} · {report.ward} · {category}"))
        b.line(f"Level: {level} · Basis: {basis.split(':')[0]}")
        b.line(report.answers.get("description", ""))
        for qid in ("location", "since", "impact"):
            answer = report.answers.get(qid)
            if answer:
                url = stored_link(answer) if qid == "location" else None
                shown = link("message in Slack", url) if url else answer
                b.line(italic(f"{form.question(qid).label}: "), shown)
        if report.consent_share and report.person_id is not None:
            person = await uow.people.get(report.person_id)
            who = f"{person.name} ({person.organisation or person.role})" if person else "?"
            b.line(
                "Reported by: ",
                who,
                " · may be contacted" if report.consent_contact else " · do not contact",
            )
        else:
            b.line(italic("Reporter: anonymous to partners (they did not consent to sharing)"))
        state = STATE_LABELS[action.state]
        if action.closed and action.outcome:
            state = OUTCOME_LABELS[action.outcome] + (
                f": {action.outcome_note}" if action.outcome_note else ""
            )
        elif action.state == ActionState.OPEN and action.ack_due_at is not None:
            state += f" (by {local_time(action.ack_due_at, self.tz)})"
        b.line(bold("Status: "), state)
        if not action.closed:
            v = action.version
            buttons = []
            if action.state == ActionState.OPEN:
                buttons.append(
                    Button(label="Acknowledge", data=ButtonAction(Kind.ACK, action.id, v).encode())
                )
            buttons += [
                Button(label="Add update", data=ButtonAction(Kind.UPDATE, action.id, v).encode()),
                Button(label="Resolve", data=ButtonAction(Kind.CLOSE, action.id, v).encode()),
                Button(label="Reassign", data=ButtonAction(Kind.REASSIGN, action.id, v).encode()),
                Button(
                    label="Change category",
                    data=ButtonAction(Kind.RECATEGORISE, action.id, v).encode(),
                ),
            ]
            b.row(*buttons)
        return b.build()

    # ----------------------------------------------------------------- escalation

    async def tick(self) -> dict[str, int]:
        """Remind and escalate unacknowledged actions: at most one new rung per action per
        tick, each rung once (``escalation_level``), so running twice or late is safe."""
        now = self.clock.now()
        rungs = self.config.escalation.rungs
        fired: dict[str, int] = {}
        async with self.uow_factory() as uow:
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
            for action in await uow.actions.due_for_check(now - CHECK_EVERY):
                action.last_check_at = now
                if await self._ask_reporter(uow, action, now):
                    fired["reporter-check"] = fired.get("reporter-check", 0) + 1
            await uow.commit()
        if fired:
            self.wake()
        return fired

    async def _escalate(self, uow: UnitOfWork, action: Action, target: str, now: datetime) -> None:
        report = await uow.reports.get(action.report_id)
        assert report is not None and action.id is not None and action.ack_due_at is not None
        team = self.teams[action.team_key]
        due = local_time(action.ack_due_at, self.tz)
        if target == "team":
            await self._event(
                uow, action, now, "reminder", "scheduler", f"not acknowledged yet: it was due {due}"
            )
            return
        await self._event(
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
            channel="slack",
            recipient=target,
            message=message,
            key=f"action:{action.id}:escalate:{action.escalation_level}",
            now=now,
            purpose="escalation",
            action_id=action.id,
        )

    async def _alert_blocked(self, uow: UnitOfWork, row: OutboxMessage, now: datetime) -> None:
        """Someone blocked the bot (the dispatcher has marked them): tell the admins once per
        block, so they can get in touch another way."""
        person = await uow.people.by_chat(row.channel, row.recipient)
        if person is None or person.blocked_at is None:
            return
        wards = ", ".join(person.wards) or "no ward"
        await self.alert_admins(
            uow,
            now,
            f"{person.name} ({person.role}, {wards}) has blocked the bot on "
            f"{row.channel.title()}: a {row.purpose} message was not delivered and they are marked unreachable until "
            "they write to the bot again. Please contact them another way.",
            key=f"person:{person.id}:blocked:{person.blocked_at:%Y%m%dT%H%M%S}",
        )

    def _address(self, person: Person) -> tuple[str, str] | None:
        """Where to tell this person anything: the platform they use."""
        return address_of(person, self.config.platforms)

    async def alert_admins(self, uow: UnitOfWork, now: datetime, text: str, *, key: str) -> None:
        """Tell every reachable admin on the platform they use (:func:`bot.common.alert_admins`:
        the text, which may name a person, never reaches the application log)."""
        await alert_admins(uow, now, text, key=key, platforms=self.config.platforms)

    # ----------------------------------------------------------------- the reporter's check

    async def _ask_reporter(self, uow: UnitOfWork, action: Action, now: datetime) -> bool:
        assert action.id is not None
        report = await uow.reports.get(action.report_id)
        person = await uow.people.get(report.person_id) if report and report.person_id else None
        address = self._address(person) if person is not None else None
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
        await self._event(
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
            await self._event(
                uow,
                action,
                now,
                "reopened",
                "reporter",
                "the reporter says it is still a problem: please acknowledge again",
            )
        else:
            await self._event(
                uow,
                action,
                now,
                "reporter_sorted",
                "reporter",
                "the reporter says it is sorted now: please close it",
            )
        await uow.actions.save(action)
        await self._refresh_slack(uow, action, now)
        return (
            f"Thank you. We have told the team that {report.reference} is still a problem."
            if still
            else f"Thank you. We have told the team that {report.reference} is sorted."
        )

    async def states_for(self, uow: UnitOfWork, report: Report) -> str:
        """How a report stands with its teams, for the reporter's /status."""
        assert report.id is not None
        parts = []
        for action in await uow.actions.for_report(report.id):
            team = self.teams.get(action.team_key)
            name = team.name if team else action.team_key
            state = (
                OUTCOME_LABELS[action.outcome]
                if action.closed and action.outcome
                else NOT_DELIVERED
                if action.state == ActionState.OPEN and action.delivered_at is None
                else STATE_LABELS[action.state]
            )
            parts.append(f"{name}: {state.lower()}")
        return "; ".join(parts) or REPORT_STATUS_LABELS.get(report.status, report.status)

    async def timeline(self, action_id: int) -> list[ActionEvent]:
        """The action's events in order."""
        async with self.uow_factory() as uow:
            return list(await uow.actions.events(action_id))


def _reporter_headline(event: ActionEvent) -> str:
    return {
        "delivered": "Your report has been delivered",
        "acknowledged": "Your report has been acknowledged",
        "update": "Update on your report",
        "closed": "Your report has been closed",
        "reassigned": "Your report has been passed to another team",
        "reopened": "Your report has been reopened",
        "recategorised": "Your report has been re-routed",
    }.get(event.kind, "News about your report")


def _and(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
