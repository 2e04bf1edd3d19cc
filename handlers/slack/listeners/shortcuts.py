"""Global shortcut listeners: "Start a crisis return" and "Stop a crisis return" (Slack's
shortcut menu). Each acknowledges, checks the person may (admins and the Prevent and Cohesion
Officer; anyone else is told the one refusal in their DM with the bot) and opens its modal with
the shortcut's trigger_id; the modal's submission is in :mod:`.views`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.returns.crisis import CrisisError, CrisisService
from handlers.slack import crisis_views
from handlers.slack.ids import ShortcutId
from handlers.slack.listeners.helpers import clicker, tell_user
from handlers.slack.listeners.services import SlackServices
from handlers.slack.who import who


class CrisisShortcuts:
    """Open the crisis start and stop modals for those who may use them."""

    def __init__(self, crisis: CrisisService) -> None:
        self.crisis = crisis

    async def _may(self, client: Any, body: dict[str, Any]) -> bool:
        """Whether the person may start and stop cadences; if not, they are told why."""
        try:
            await self.crisis.authorise(who(clicker(body)))
        except CrisisError as refused:
            await tell_user(client, clicker(body), str(refused))
            return False
        return True

    async def start(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """The start modal: wards or neighbourhoods, roles, daily or weekly, a last day."""
        await ack()
        if await self._may(client, body):
            view = crisis_views.start_modal(self.crisis.config)
            await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def stop(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        """The stop modal: the running cadences to tick."""
        await ack()
        if await self._may(client, body):
            running = await self.crisis.active()
            view = (
                crisis_views.stop_modal(running, self.crisis.describe)
                if running
                else crisis_views.nothing_running()
            )
            await client.views_open(trigger_id=body["trigger_id"], view=view)


def register(app: AsyncApp, services: SlackServices) -> None:
    """Attach the global shortcut listeners."""
    crisis = CrisisShortcuts(services.crisis)
    app.global_shortcut(ShortcutId.CRISIS_START)(crisis.start)
    app.global_shortcut(ShortcutId.CRISIS_STOP)(crisis.stop)
