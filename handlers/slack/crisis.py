"""The ``/crisis`` slash command: admins and the Prevent and Cohesion Officer start and stop a
crisis cadence from Slack (the same core call as Telegram's ``/crisis``)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.returns.crisis import CrisisService
from handlers.slack.render import escape
from handlers.slack.who import who


def register(app: AsyncApp, crisis: CrisisService) -> None:
    """Attach the ``/crisis`` listener."""

    @app.command("/crisis")
    async def on_crisis(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        reply = await crisis.command(who(command["user_id"]), command.get("text", ""))
        # To the asker only; the reply may quote what was typed, so it is escaped.
        await respond(text=escape(reply), response_type="ephemeral")
