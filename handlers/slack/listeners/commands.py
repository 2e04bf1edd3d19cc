"""Slash command listeners: ``/tensions``, ``/pact``, ``/crisis``. Slack wants an answer within
3 seconds: acknowledge, then do the work and answer through the response_url."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.pact.rules import PactInsight
from bot.pact.service import PactError, PactService, insight_message
from bot.returns.crisis import CrisisService
from bot.summaries.chat import SummaryRefused
from bot.summaries.service import SummaryService
from handlers.slack.ids import Command
from handlers.slack.listeners.helpers import refuse_command
from handlers.slack.listeners.services import SlackServices
from handlers.slack.messenger import answer_command
from handlers.slack.render import escape
from handlers.slack.who import who


class Tensions:
    """``/tensions``: a summary of the reports."""

    def __init__(self, summaries: SummaryService) -> None:
        self.summaries = summaries

    async def asked(
        self, ack: Any, command: dict[str, Any], client: Any, respond: Any, context: Any
    ) -> None:
        """Build the summary and its charts and answer where it may be seen."""
        await ack(text="Working on the summary…")
        try:
            answer = await self.summaries.ask("slack", command["user_id"], command.get("text", ""))
        except SummaryRefused as exc:
            await refuse_command(respond, str(exc))
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
            public_channels=self.summaries.config.summaries.channels,
        )


def _pact_chart(insight: PactInsight) -> tuple[bytes, str]:
    """The PACT chart as PNG, and its alt text (matplotlib is loaded here, not at start-up)."""
    from handlers.files.charts import pact_attendance, pact_description, png

    return png(pact_attendance(insight)), pact_description(insight)


class Pact:
    """``/pact``: PACT attendance and priorities."""

    def __init__(self, pact: PactService) -> None:
        self.pact = pact

    async def asked(
        self, ack: Any, command: dict[str, Any], client: Any, respond: Any, context: Any
    ) -> None:
        """Build the insight and its chart and answer where it may be seen."""
        await ack(text="Working on it…")
        try:
            insight = await self.pact.ask_insight(
                "slack", command["user_id"], command.get("text", "")
            )
        except PactError as exc:
            await refuse_command(respond, str(exc))
            return
        charts = []
        if not insight.empty:
            # Drawing takes a moment of CPU: keep it off the event loop.
            chart, alt = await asyncio.to_thread(_pact_chart, insight)
            charts.append(("pact_attendance.png", chart, "PACT attendance", alt))
        await answer_command(
            client,
            respond,
            command,
            insight_message(insight),
            charts,
            bot_user_id=context.bot_user_id,
            public_channels=self.pact.config.summaries.channels,
        )


class Crisis:
    """``/crisis``: admins and the Prevent and Cohesion Officer start and stop a crisis cadence
    (the same core call as Telegram's ``/crisis``)."""

    def __init__(self, crisis: CrisisService) -> None:
        self.crisis = crisis

    async def asked(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        """Start, stop or list cadences; the answer goes to the asker only."""
        await ack()
        reply = await self.crisis.command(who(command["user_id"]), command.get("text", ""))
        # The reply may quote what was typed, so it is escaped.
        await respond(text=escape(reply), response_type="ephemeral")


def register(app: AsyncApp, services: SlackServices) -> None:
    """Attach the slash command listeners."""
    app.command(Command.TENSIONS)(Tensions(services.summaries).asked)
    app.command(Command.PACT)(Pact(services.pact).asked)
    app.command(Command.CRISIS)(Crisis(services.crisis).asked)
