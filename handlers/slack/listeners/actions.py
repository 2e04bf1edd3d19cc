"""Button listeners: ``ack()`` first (Slack wants it within 3 seconds), then decode the
payload, call one core service and answer: a modal, or a note only the clicker sees. A team's
message itself is updated by the core, through the outbox."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions.messages import OUTCOME_LABELS
from bot.actions.service import ActionError, ActionService, Officer
from bot.buttons import ButtonAction, Kind
from bot.pact.service import PactError, PactService
from bot.returns.reports import ReportingRefused, ReportingService
from handlers.slack import pact_views, views
from handlers.slack.ids import ActionId
from handlers.slack.listeners.helpers import clicker, pressed, tell_here, tell_user
from handlers.slack.listeners.services import SlackServices
from handlers.slack.who import who


class TeamButtons:
    """An officer's buttons on a team's action message."""

    def __init__(self, actions: ActionService) -> None:
        self.actions = actions

    async def acknowledge(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Acknowledge: the answer goes to the clicker; the team's message changes by itself."""
        await ack()
        button = pressed(body, Kind.ACK)
        if button is None:
            return
        try:
            reply = await self.actions.acknowledge(
                Officer(clicker(body)), button.target, button.seq
            )
        except ActionError as exc:
            reply = str(exc)
        await tell_here(respond, client, body, reply)

    async def update(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Open "Add an update"."""
        await self._open(ack, body, client, respond, Kind.UPDATE)

    async def close(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Open "Resolve or close"."""
        await self._open(ack, body, client, respond, Kind.CLOSE)

    async def reassign(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Open "Reassign"."""
        await self._open(ack, body, client, respond, Kind.REASSIGN)

    async def recategorise(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Open "Change category"."""
        await self._open(ack, body, client, respond, Kind.RECATEGORISE)

    async def _open(
        self, ack: Any, body: dict[str, Any], client: Any, respond: Any, kind: Kind
    ) -> None:
        """Open the modal for ``kind`` if the clicker may still act on this version; the
        modal carries the button's payload as its metadata."""
        await ack()
        button = pressed(body, kind)
        if button is None:
            return
        try:
            await self.actions.check(Officer(clicker(body)), button.target, button.seq)
        except ActionError as exc:
            await tell_here(respond, client, body, str(exc))
            return
        await client.views_open(trigger_id=body["trigger_id"], view=await self._modal(button))

    async def _modal(self, button: ButtonAction) -> dict[str, Any]:
        meta = button.encode()
        if button.kind is Kind.UPDATE:
            return views.update_modal(meta)
        if button.kind is Kind.CLOSE:
            return views.close_modal(meta, OUTCOME_LABELS)
        if button.kind is Kind.RECATEGORISE:
            return views.category_modal(meta, await self.actions.category_choices(button.target))
        return views.reassign_modal(meta, await self.actions.reassign_choices(button.target))


class CheckButtons:
    """A reporter's answer to "Is this still a problem?" (their DM with the bot)."""

    def __init__(self, actions: ActionService) -> None:
        self.actions = actions

    async def still(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Still a problem: the action is reopened and the team told."""
        await ack()
        await self._answer(body, client, respond, Kind.STILL)

    async def sorted(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Sorted now: the team is told, and can close it."""
        await ack()
        await self._answer(body, client, respond, Kind.SORTED)

    async def _answer(self, body: dict[str, Any], client: Any, respond: Any, kind: Kind) -> None:
        button = pressed(body, kind)
        if button is None:
            return
        reply = await self.actions.answer_check(
            who(clicker(body)), button.target, still=kind is Kind.STILL
        )
        await tell_here(respond, client, body, reply)


class ReporterButtons:
    """A reporter's "Report a tension" and "Nothing to report" (in a DM or the App Home)."""

    def __init__(self, reporting: ReportingService) -> None:
        self.reporting = reporting

    async def start(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """Open the form for the campaign on the button (0: an ad hoc report)."""
        await ack()
        button = pressed(body, Kind.START)
        if button is None:
            return
        user = clicker(body)
        try:
            request = await self.reporting.form_request(who(user), button.target)
        except ReportingRefused as exc:
            await tell_user(client, user, str(exc))
            return
        await client.views_open(trigger_id=body["trigger_id"], view=views.form_modal(request))

    async def nil(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """A nil return for the campaign on the button."""
        await ack()
        button = pressed(body, Kind.NIL)
        if button is None:
            return
        user = clicker(body)
        try:
            text = await self.reporting.nil(who(user), button.target)
        except ReportingRefused as exc:
            text = str(exc)
        await tell_user(client, user, text)


class PactButtons:
    """The chair's Record / It was cancelled, and an owner team's Report back."""

    def __init__(self, pact: PactService) -> None:
        self.pact = pact

    async def record(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """Open the chair's record of the meeting on the button."""
        await ack()
        button = pressed(body, Kind.PACT_RECORD)
        if button is None:
            return
        user = clicker(body)
        try:
            context = await self.pact.context_for(who(user), button.target)
        except PactError as exc:
            await tell_user(client, user, str(exc))
            return
        view = pact_views.record_modal(context, self.pact.config.pact.max_attendance, self.pact.tz)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def cancelled(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """The chair says the meeting on the button did not take place."""
        await ack()
        button = pressed(body, Kind.PACT_CANCELLED)
        if button is None:
            return
        user = clicker(body)
        try:
            text = await self.pact.cancelled_by(who(user), button.target)
        except PactError as exc:
            text = str(exc)
        await tell_user(client, user, text)

    async def report_back(self, ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        """Open an owner team's report back on the priority on the button."""
        await ack()
        button = pressed(body, Kind.PACT_REPORT_BACK)
        if button is None:
            return
        try:
            priority = await self.pact.priority_for_owner(who(clicker(body)), button.target)
        except PactError as exc:
            await tell_here(respond, client, body, str(exc))
            return
        assert priority.id is not None
        view = pact_views.report_back_modal(
            priority.id, priority.title, self.pact.hood_name(priority.neighbourhood)
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)


def register(app: AsyncApp, services: SlackServices) -> None:
    """Attach the button listeners."""
    team = TeamButtons(services.actions)
    app.action(ActionId.ACK)(team.acknowledge)
    app.action(ActionId.UPDATE)(team.update)
    app.action(ActionId.CLOSE)(team.close)
    app.action(ActionId.REASSIGN)(team.reassign)
    app.action(ActionId.RECATEGORISE)(team.recategorise)
    reporter = ReporterButtons(services.reporting)
    app.action(ActionId.START)(reporter.start)
    app.action(ActionId.NIL)(reporter.nil)
    check = CheckButtons(services.actions)
    app.action(ActionId.STILL)(check.still)
    app.action(ActionId.SORTED)(check.sorted)
    pact = PactButtons(services.pact)
    app.action(ActionId.PACT_RECORD)(pact.record)
    app.action(ActionId.PACT_CANCELLED)(pact.cancelled)
    app.action(ActionId.PACT_REPORT_BACK)(pact.report_back)
