"""Modal submission listeners. A submission's ``ack`` carries its errors, so it comes once the
one service call has answered (well within Slack's 3 seconds); a modal whose metadata is not
ours is closed without a word."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions.service import ActionError, ActionService, Officer
from bot.buttons import ButtonAction, Kind
from bot.pact.service import PactError, PactService
from bot.returns.crisis import USAGE, CrisisError, CrisisService
from bot.returns.reports import ReportingRefused, ReportingService
from handlers.slack import crisis_views, pact_views, views
from handlers.slack.ids import ViewId
from handlers.slack.links import SlackMessageLinks
from handlers.slack.listeners.helpers import clicker, modal_id, modal_payload, tell_user
from handlers.slack.listeners.services import SlackServices
from handlers.slack.who import who

log = logging.getLogger(__name__)


class TeamModals:
    """An officer's Add an update / Resolve or close / Reassign / Change category."""

    def __init__(self, actions: ActionService) -> None:
        self.actions = actions

    async def update(self, ack: Any, body: dict[str, Any]) -> None:
        """Add an update, relayed to the reporter if ticked."""
        if (got := await _submitted(ack, body, Kind.UPDATE)) is None:
            return
        officer, b, values = got
        relay = values.get("for_reporter") == "yes"
        change = self.actions.add_update(officer, b.target, b.seq, values.get("text", ""), relay)
        await _answer(ack, Kind.UPDATE, change)

    async def close(self, ack: Any, body: dict[str, Any]) -> None:
        """Close with an outcome and a note."""
        if (got := await _submitted(ack, body, Kind.CLOSE)) is None:
            return
        officer, b, values = got
        outcome, note = values.get("outcome", ""), values.get("note", "")
        await _answer(ack, Kind.CLOSE, self.actions.close(officer, b.target, b.seq, outcome, note))

    async def reassign(self, ack: Any, body: dict[str, Any]) -> None:
        """Pass the action to another team."""
        if (got := await _submitted(ack, body, Kind.REASSIGN)) is None:
            return
        officer, b, values = got
        change = self.actions.reassign(officer, b.target, b.seq, values.get("team", ""))
        await _answer(ack, Kind.REASSIGN, change)

    async def recategorise(self, ack: Any, body: dict[str, Any]) -> None:
        """Correct the category (the report is routed again)."""
        if (got := await _submitted(ack, body, Kind.RECATEGORISE)) is None:
            return
        officer, b, values = got
        change = self.actions.recategorise(officer, b.target, b.seq, values.get("category", ""))
        await _answer(ack, Kind.RECATEGORISE, change)


async def _submitted(
    ack: Any, body: dict[str, Any], kind: Kind
) -> tuple[Officer, ButtonAction, dict[str, str]] | None:
    """(officer, the button that opened the modal, the values) of an officer's modal, or None
    (and the modal closed) when its metadata is not a button of ``kind`` we made."""
    view = body["view"]
    button = modal_payload(view, kind)
    if button is None:
        await ack()
        return None
    return Officer(clicker(body)), button, views.values(view)


async def _answer(ack: Any, kind: Kind, change: Awaitable[object]) -> None:
    """Run the service call; its refusal goes on the modal's field, else the modal closes."""
    try:
        await change
    except ActionError as exc:
        await ack(response_action="errors", errors={views.ERROR_BLOCK[kind]: str(exc)})
        return
    await ack()


class ReportModal:
    """A reporter's form."""

    def __init__(self, reporting: ReportingService) -> None:
        self.reporting = reporting

    async def submit(self, ack: Any, body: dict[str, Any]) -> None:
        """Make the report, or show the form's errors."""
        view = body["view"]
        meta = str(view.get("private_metadata", "0"))
        campaign_id = int(meta) if meta.isascii() and meta.isdigit() else 0
        # The same view (id and hash) submitted again makes no second report.
        once = (str(view.get("id", "")), str(view.get("hash", "")))
        try:
            errors = await self.reporting.submit(
                who(clicker(body)),
                campaign_id,
                views.values(view),
                once=once if once[0] else (),
                # The workspace the form was filled in: a message link must be one of its own.
                links=SlackMessageLinks((body.get("team") or {}).get("domain")),
            )
        except ReportingRefused as exc:
            errors = {"description": str(exc)}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()


class PactModals:
    """The chair's record of a meeting and an owner team's report back."""

    def __init__(self, pact: PactService) -> None:
        self.pact = pact

    async def record(self, ack: Any, body: dict[str, Any]) -> None:
        """Record the meeting, or put each error on its block."""
        view = body["view"]
        meeting_id = modal_id(view)
        if meeting_id is None:
            log.warning("refused a PACT record modal with malformed metadata")
            await ack()
            return
        record, errors, slots = pact_views.read_record(view, self.pact.config.pact.max_attendance)
        if record is None:
            await ack(response_action="errors", errors=errors)
            return
        try:
            errors = await self.pact.record_for(who(clicker(body)), meeting_id, record)
        except PactError as exc:
            errors = {"public": str(exc)}
        if errors:
            blocks = {str(b.get("block_id")) for b in view.get("blocks") or []}
            await ack(
                response_action="errors",
                errors=pact_views.record_errors(errors, slots, blocks),
            )
            return
        await ack()

    async def report_back(self, ack: Any, body: dict[str, Any]) -> None:
        """Store what the owner team did, and thank them in place of the modal."""
        view = body["view"]
        priority_id = modal_id(view)
        if priority_id is None:
            log.warning("refused a PACT report-back modal with malformed metadata")
            await ack()
            return
        text = pact_views.state(view).get("text", {}).get("value") or ""
        try:
            thanks = await self.pact.report_back(who(clicker(body)), priority_id, str(text))
        except PactError as exc:
            await ack(response_action="errors", errors={"text": str(exc)})
            return
        await ack(response_action="update", view=pact_views.done_modal("Report back", thanks))


class CrisisModals:
    """The crisis start and stop modals (opened by the global shortcuts). The service checks
    again who submits: a modal may be submitted by someone it was never shown."""

    def __init__(self, crisis: CrisisService) -> None:
        self.crisis = crisis

    async def start(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """Start the cadence; the refusal or what is wrong goes on the form, else the modal
        closes and the person is told in their DM."""
        try:
            wanted = crisis_views.read_start(body["view"], self.crisis.config)
            reply = await self.crisis.start_for(who(clicker(body)), wanted)
        except CrisisError as exc:
            await _crisis_refused(ack, exc, crisis_views.BLOCKS)
            return
        await ack()
        await tell_user(client, clicker(body), reply)

    async def stop(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """Stop the cadences ticked."""
        try:
            reply = await self.crisis.stop_for(
                who(clicker(body)), crisis_views.read_stop(body["view"])
            )
        except CrisisError as exc:
            await _crisis_refused(ack, exc, ("cadences",))
            return
        await ack()
        await tell_user(client, clicker(body), reply)


async def _crisis_refused(ack: Any, exc: CrisisError, blocks: tuple[str, ...]) -> None:
    """Show a crisis refusal on the modal's block at fault (else its first block), without
    the typed command's usage line."""
    block = exc.field if exc.field in blocks else blocks[0]
    text = str(exc).replace(USAGE, "").strip() or USAGE
    await ack(response_action="errors", errors={block: text})


def register(app: AsyncApp, services: SlackServices) -> None:
    """Attach the modal submission listeners."""
    team = TeamModals(services.actions)
    app.view(ViewId.UPDATE)(team.update)
    app.view(ViewId.CLOSE)(team.close)
    app.view(ViewId.REASSIGN)(team.reassign)
    app.view(ViewId.RECATEGORISE)(team.recategorise)
    app.view(ViewId.REPORT)(ReportModal(services.reporting).submit)
    pact = PactModals(services.pact)
    app.view(ViewId.PACT_RECORD)(pact.record)
    app.view(ViewId.PACT_REPORT_BACK)(pact.report_back)
    crisis = CrisisModals(services.crisis)
    app.view(ViewId.CRISIS_START)(crisis.start)
    app.view(ViewId.CRISIS_STOP)(crisis.stop)
