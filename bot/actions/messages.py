"""What an action says, and to whom: the team's Slack message, the notes in its thread and the
reporter's notices.

Every step on an action is recorded here as an event on its timeline (:meth:`ActionMessages.event`);
the event goes into the thread under the team's message once that message is in Slack, and the
ones meant for the reporter are relayed to their chat with the report's reference. The team's
message itself is rebuilt from the database after every change (:meth:`ActionMessages.refresh_post`)
and updated in place.
"""

from __future__ import annotations

from datetime import datetime

from bot.buttons import ButtonAction, Kind
from bot.common import address_of, enqueue, local_time
from bot.config import TEAMS_PLATFORM, Config, TeamConfig
from bot.domain import NEWS, Action, ActionEvent, ActionState, ClosedAs, Person, Report
from bot.forms import FormDefinition
from bot.forms.versions import FormService
from bot.messages import Button, MessageBuilder, OutgoingMessage, bold, code, italic, link
from bot.ports import MessageLinks, UnitOfWork

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
    "logged": "Recorded; not sent to a team (the bot is not connected to the teams' channels)",
    "unrouted": "Recorded; not passed to a team yet",
}
#: An open action whose Slack post has not gone out yet: nobody can acknowledge it so far.
NOT_DELIVERED = "Not delivered to the team yet"


class ActionMessages:
    """Records an action's events and sends what they mean to the team and the reporter."""

    def __init__(
        self, config: Config, forms: FormService, links: MessageLinks | None = None
    ) -> None:
        self.config = config
        self.forms = forms
        # The teams' platform's message links: a stored "Where exactly?" link it accepts is
        # shown as a link; without it (or for anything it refuses) the answer stays text.
        self.links = links
        self.teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}
        self.tz = config.partnership.tz

    def address(self, person: Person) -> tuple[str, str] | None:
        """Where to tell this person anything: the platform they use."""
        return address_of(person, self.config.platforms)

    async def event(
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
        if action.post_ref is not None and kind not in ("created", "delivered"):
            await self.thread_post(uow, action, event, now, headline, detail)
        if for_reporter:
            await self.tell_reporter(uow, action, event, headline, detail)

    async def thread_post(
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
            channel=TEAMS_PLATFORM,
            recipient=action.room or "",
            message=line.build(),
            key=f"action:{action.id}:thread:{event.id}",
            now=now,
            purpose="action_thread",
            thread_ref=action.post_ref,
        )

    async def tell_reporter(
        self,
        uow: UnitOfWork,
        action: Action,
        event: ActionEvent,
        headline: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The event, relayed to the reporter's chat with the report's reference."""
        report = await uow.reports.get(action.report_id)
        if report is None or report.person_id is None:
            return
        person = await uow.people.get(report.person_id)
        if person is None:
            return
        address = self.address(person)
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

    async def tell_delivered(self, uow: UnitOfWork, action: Action, now: datetime) -> None:
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
        address = self.address(person) if person is not None else None
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

    async def refresh_post(self, uow: UnitOfWork, action: Action, now: datetime) -> None:
        """Update the team's message in place to show the action as it stands now."""
        if action.post_ref is None:
            return  # not posted yet: the post itself will show the current state
        message = await self.team_message(uow, action)
        await enqueue(
            uow,
            channel=TEAMS_PLATFORM,
            recipient=action.room or "",
            message=message,
            key=f"action:{action.id}:v{action.version}",
            now=now,
            purpose="action_update",
            edit_ref=action.post_ref,
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
                url = self.links.url(answer) if qid == "location" and self.links else None
                shown = link("the message", url) if url else answer
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
