"""Slack adapter: Bolt listeners for the action buttons and their modals.

``ack()`` comes first (Slack wants it within 3 seconds); the work follows. Each listener decodes
the button payload, calls one method of the core :class:`~bot.actions.service.ActionService`
and renders the answer: an ephemeral note to the clicker, a modal, or modal errors. The team's
message itself is updated by the core through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.actions.service import OUTCOME_LABELS, ActionError, ActionService, Officer
from bot.buttons import Action, BadPayload, Kind
from bot.delivery.seen import SeenRequests, request_key
from bot.returns.reports import ReportingRefused, ReportingService
from bot.summaries.chat import SummaryRefused
from bot.summaries.service import SummaryService
from handlers.slack import views
from handlers.slack.messenger import answer_command
from handlers.slack.render import escape
from handlers.slack.who import who

log = logging.getLogger(__name__)

MODAL_KINDS = {
    "update": Kind.UPDATE,
    "close": Kind.CLOSE,
    "reassign": Kind.REASSIGN,
    "recategorise": Kind.RECATEGORISE,
}


def refuse_replays(app: AsyncApp, seen: SeenRequests) -> None:
    """Answer 401 to a signed request seen before, by this process or any other sharing the
    database, before or after a restart. Bolt checks the signature and that the timestamp is
    under five minutes old; within those five minutes the same bytes could be sent again.
    (Socket Mode requests are not signed and are not checked here.)"""

    @app.middleware
    async def once_only(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        if signature and not await seen.first_time(request_key("slack-request", signature)):
            log.warning("refused a replayed Slack request")
            return BoltResponse(status=401, body="")
        await next()
        return None


def register(
    app: AsyncApp,
    actions: ActionService,
    reporting: ReportingService,
    summaries: SummaryService,
    seen: SeenRequests,
) -> None:
    """Attach tensionbot's Slack listeners to ``app``."""
    refuse_replays(app, seen)

    async def tell(respond: Any, client: Any, body: dict[str, Any], text: str) -> None:
        """A note only the clicker sees, where they clicked: through the click's response_url,
        which reaches them even in a channel they are not a member of (chat.postEphemeral
        would fail there with user_not_in_channel); without one, in their DM with the bot."""
        if respond is not None and body.get("response_url"):
            await respond(text=escape(text), response_type="ephemeral", replace_original=False)
            return
        await tell_user(client, body["user"]["id"], text)

    async def tell_user(client: Any, user: str, text: str) -> None:
        dm = await client.conversations_open(users=user)
        await client.chat_postEphemeral(channel=dm["channel"]["id"], user=user, text=escape(text))

    def decode(body: dict[str, Any], kind: Kind) -> Action | None:
        try:
            action = Action.decode(str(body["actions"][0].get("value", "")))
        except (BadPayload, KeyError, IndexError):
            log.warning("refused a malformed Slack button payload")
            return None
        if action.kind is not kind:  # another button's payload: its target is not an action
            log.warning("refused a Slack button payload of the wrong kind")
            return None
        return action

    @app.action("tb_ack")
    async def on_ack(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await ack()
        action = decode(body, Kind.ACK)
        if action is None:
            return
        try:
            reply = await actions.acknowledge(
                Officer(body["user"]["id"]), action.target, action.seq
            )
        except ActionError as exc:
            reply = str(exc)
        await tell(respond, client, body, reply)

    async def open_modal(
        ack: Any, body: dict[str, Any], client: Any, respond: Any, kind: str
    ) -> None:
        await ack()
        action = decode(body, MODAL_KINDS[kind])
        if action is None:
            return
        officer = Officer(body["user"]["id"])
        try:
            await actions.check(officer, action.target, action.seq)
        except ActionError as exc:
            await tell(respond, client, body, str(exc))
            return
        meta = action.encode()
        if kind == "update":
            view = views.update_modal(meta)
        elif kind == "close":
            view = views.close_modal(meta, OUTCOME_LABELS)
        elif kind == "recategorise":
            view = views.category_modal(meta, await actions.category_choices(action.target))
        else:
            view = views.reassign_modal(meta, await actions.reassign_choices(action.target))
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action("tb_update")
    async def on_update(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await open_modal(ack, body, client, respond, "update")

    @app.action("tb_close")
    async def on_close(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await open_modal(ack, body, client, respond, "close")

    @app.action("tb_reassign")
    async def on_reassign(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await open_modal(ack, body, client, respond, "reassign")

    @app.action("tb_recategorise")
    async def on_recategorise(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await open_modal(ack, body, client, respond, "recategorise")

    async def submit(ack: Any, body: dict[str, Any], kind: str) -> None:
        view = body["view"]
        values = views.values(view)
        try:
            action = Action.decode(view.get("private_metadata", ""))
        except BadPayload:
            await ack()
            return
        if action.kind is not MODAL_KINDS[kind]:
            log.warning("refused a Slack modal with metadata of the wrong kind")
            await ack()
            return
        officer = Officer(body["user"]["id"])
        try:
            if kind == "update":
                await actions.add_update(
                    officer,
                    action.target,
                    action.seq,
                    values.get("text", ""),
                    values.get("for_reporter") == "yes",
                )
            elif kind == "close":
                await actions.close(
                    officer,
                    action.target,
                    action.seq,
                    values.get("outcome", ""),
                    values.get("note", ""),
                )
            elif kind == "recategorise":
                await actions.recategorise(
                    officer, action.target, action.seq, values.get("category", "")
                )
            else:
                await actions.reassign(officer, action.target, action.seq, values.get("team", ""))
        except ActionError as exc:
            await ack(response_action="errors", errors={views.ERROR_BLOCK[kind]: str(exc)})
            return
        await ack()

    @app.view("tb_update_modal")
    async def on_update_submit(ack: Any, body: dict[str, Any]) -> None:
        await submit(ack, body, "update")

    @app.view("tb_close_modal")
    async def on_close_submit(ack: Any, body: dict[str, Any]) -> None:
        await submit(ack, body, "close")

    @app.view("tb_reassign_modal")
    async def on_reassign_submit(ack: Any, body: dict[str, Any]) -> None:
        await submit(ack, body, "reassign")

    @app.view("tb_recategorise_modal")
    async def on_recategorise_submit(ack: Any, body: dict[str, Any]) -> None:
        await submit(ack, body, "recategorise")

    # ----------------------------------------------------------------- reporters in Slack

    @app.action("tb_start")
    async def on_start(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        action = decode(body, Kind.START)
        if action is None:
            return
        user = body["user"]["id"]
        try:
            request = await reporting.form_request(who(user), action.target)
        except ReportingRefused as exc:
            await tell_user(client, user, str(exc))
            return
        await client.views_open(trigger_id=body["trigger_id"], view=views.form_modal(request))

    @app.action("tb_nil")
    async def on_nil(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        action = decode(body, Kind.NIL)
        if action is None:
            return
        user = body["user"]["id"]
        try:
            text = await reporting.nil(who(user), action.target)
        except ReportingRefused as exc:
            text = str(exc)
        await tell_user(client, user, text)

    async def answer_check(body: dict[str, Any], client: Any, respond: Any, kind: Kind) -> None:
        """The reporter's answer to "Is this still a problem?" (their DM with the bot)."""
        action = decode(body, kind)
        if action is None:
            return
        reply = await actions.answer_check(
            who(body["user"]["id"]), action.target, still=kind is Kind.STILL
        )
        await tell(respond, client, body, reply)

    @app.action("tb_still")
    async def on_still(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await ack()
        await answer_check(body, client, respond, Kind.STILL)

    @app.action("tb_sorted")
    async def on_sorted(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        await ack()
        await answer_check(body, client, respond, Kind.SORTED)

    @app.view("tb_report_modal")
    async def on_report_submit(ack: Any, body: dict[str, Any]) -> None:
        view = body["view"]
        meta = str(view.get("private_metadata", "0"))
        campaign_id = int(meta) if meta.isdigit() else 0
        # The same view (id and hash) submitted again makes no second report.
        once = (str(view.get("id", "")), str(view.get("hash", "")))
        try:
            errors = await reporting.submit(
                who(body["user"]["id"]),
                campaign_id,
                views.values(view),
                once=once if once[0] else (),
                # The workspace the form was filled in: a message link must be one of its own.
                workspace=(body.get("team") or {}).get("domain"),
            )
        except ReportingRefused as exc:
            errors = {"description": str(exc)}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: Any) -> None:
        user = event["user"]
        try:
            view = views.home_view(await reporting.home(who(user)))
        except ReportingRefused as exc:
            view = views.home_view(None, str(exc))
        await client.views_publish(user_id=user, view=view)

    # ----------------------------------------------------------------- summaries

    @app.command("/tensions")
    async def on_tensions(
        ack: Any, command: dict[str, Any], client: Any, respond: Any, context: Any
    ) -> None:
        # Slack wants an answer within 3 seconds: acknowledge, then build the summary.
        await ack(text="Working on the summary…")
        try:
            answer = await summaries.ask("slack", command["user_id"], command.get("text", ""))
        except SummaryRefused as exc:
            # The refusal may quote what was typed: escaped, like all text from a user. Through
            # the response_url: it reaches the person even in a channel the bot is not in.
            await respond(text=escape(str(exc)), response_type="ephemeral")
            return
        # The charts go up as files (in the channel, or the asker's DM), the text as blocks.
        charts = [(a.filename, a.data, a.title, a.alt_text) for a in answer.attachments]
        await answer_command(
            client,
            respond,
            command,
            answer.model_copy(update={"attachments": []}),
            charts,
            bot_user_id=context.bot_user_id,
            public_channels=summaries.config.summaries.channels,
        )
