"""Slack adapter for PACT meetings: the chair's Record / It was cancelled buttons and the record
modal, an owner team's Report back button and modal, and ``/pact``.

As everywhere in the Slack adapter: ``ack()`` first (a view submission's ``ack`` carries its
errors, so it comes once the one service call has answered), decode, call one method of
:class:`~bot.pact.service.PactService`, render the answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.buttons import Action, BadPayload, Kind
from bot.pact.rules import PactInsight
from bot.pact.service import PactError, PactService, insight_message
from handlers.slack import pact_views
from handlers.slack.messenger import answer_command
from handlers.slack.render import escape
from handlers.slack.who import who

log = logging.getLogger(__name__)


def _chart(insight: PactInsight) -> tuple[bytes, str]:
    """The PACT chart as PNG, and its alt text (matplotlib is loaded here, not at start-up)."""
    from handlers.files.charts import pact_attendance, pact_description, png

    return png(pact_attendance(insight)), pact_description(insight)


def register_pact(app: AsyncApp, pact: PactService) -> None:
    """Attach the PACT listeners to ``app``."""

    def decode(body: dict[str, Any], kind: Kind) -> Action | None:
        try:
            action = Action.decode(str(body["actions"][0].get("value", "")))
        except (BadPayload, KeyError, IndexError):
            log.warning("refused a malformed PACT button payload")
            return None
        if action.kind != kind:
            log.warning("refused a PACT button payload of the wrong kind")
            return None
        return action

    async def tell_user(client: Any, user: str, text: str) -> None:
        dm = await client.conversations_open(users=user)
        await client.chat_postEphemeral(channel=dm["channel"]["id"], user=user, text=escape(text))

    async def tell_here(respond: Any, client: Any, body: dict[str, Any], text: str) -> None:
        """A note only the clicker sees, where they clicked (through the click's response_url,
        which reaches them even in a channel they are not in), else in their DM."""
        if respond is not None and body.get("response_url"):
            await respond(text=escape(text), response_type="ephemeral", replace_original=False)
        else:
            await tell_user(client, body["user"]["id"], text)

    def meta_id(view: dict[str, Any]) -> int | None:
        meta = str(view.get("private_metadata", ""))
        return int(meta) if meta.isdigit() and len(meta) < 16 else None

    # ----------------------------------------------------------------- the chair

    @app.action("tb_pact_record")
    async def on_record(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        action = decode(body, Kind.PACT_RECORD)
        if action is None:
            return
        user = body["user"]["id"]
        try:
            context = await pact.context_for(who(user), action.target)
        except PactError as exc:
            await tell_user(client, user, str(exc))
            return
        view = pact_views.record_modal(context, pact.config.pact.max_attendance, pact.tz)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(pact_views.RECORD_CALLBACK)
    async def on_record_submit(ack: Any, body: dict[str, Any]) -> None:
        view = body["view"]
        meeting_id = meta_id(view)
        if meeting_id is None:
            log.warning("refused a PACT record modal with malformed metadata")
            await ack()
            return
        record, errors, slots = pact_views.read_record(view, pact.config.pact.max_attendance)
        if record is None:
            await ack(response_action="errors", errors=errors)
            return
        try:
            errors = await pact.record_for(who(body["user"]["id"]), meeting_id, record)
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

    @app.action("tb_pact_cancelled")
    async def on_cancelled(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        action = decode(body, Kind.PACT_CANCELLED)
        if action is None:
            return
        user = body["user"]["id"]
        try:
            text = await pact.cancelled_by(who(user), action.target)
        except PactError as exc:
            text = str(exc)
        await tell_user(client, user, text)

    # ----------------------------------------------------------------- owner teams

    @app.action("tb_pact_report_back")
    async def on_report_back(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await ack()
        action = decode(body, Kind.PACT_REPORT_BACK)
        if action is None:
            return
        try:
            priority = await pact.priority_for_owner(who(body["user"]["id"]), action.target)
        except PactError as exc:
            await tell_here(respond, client, body, str(exc))
            return
        assert priority.id is not None
        view = pact_views.report_back_modal(
            priority.id, priority.title, pact.hood_name(priority.neighbourhood)
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(pact_views.REPORT_BACK_CALLBACK)
    async def on_report_back_submit(ack: Any, body: dict[str, Any]) -> None:
        view = body["view"]
        priority_id = meta_id(view)
        if priority_id is None:
            log.warning("refused a PACT report-back modal with malformed metadata")
            await ack()
            return
        text = pact_views.state(view).get("text", {}).get("value") or ""
        try:
            thanks = await pact.report_back(who(body["user"]["id"]), priority_id, str(text))
        except PactError as exc:
            await ack(response_action="errors", errors={"text": str(exc)})
            return
        await ack(response_action="update", view=pact_views.done_modal("Report back", thanks))

    # ----------------------------------------------------------------- insight

    @app.command("/pact")
    async def on_pact(
        ack: Any, command: dict[str, Any], client: Any, respond: Any, context: Any
    ) -> None:
        await ack(text="Working on it…")
        try:
            insight = await pact.ask_insight("slack", command["user_id"], command.get("text", ""))
        except PactError as exc:
            # The refusal may quote what was typed: escaped, like all text from a user. Through
            # the response_url: it reaches the person even in a channel the bot is not in.
            await respond(text=escape(str(exc)), response_type="ephemeral")
            return
        charts = []
        if not insight.empty:
            # Drawing takes a moment of CPU: keep it off the event loop.
            chart, alt = await asyncio.to_thread(_chart, insight)
            charts.append(("pact_attendance.png", chart, "PACT attendance", alt))
        await answer_command(
            client,
            respond,
            command,
            insight_message(insight),
            charts,
            bot_user_id=context.bot_user_id,
            public_channels=pact.config.summaries.channels,
        )
