"""Event listeners: the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.returns.reports import ReportingRefused, ReportingService
from handlers.slack import views
from handlers.slack.listeners.services import SlackServices
from handlers.slack.who import who


class AppHome:
    """The App Home tab, drawn afresh each time it is opened."""

    def __init__(self, reporting: ReportingService) -> None:
        self.reporting = reporting

    async def opened(self, event: dict[str, Any], client: Any) -> None:
        """Publish the person's home: report a tension, open returns, their reports."""
        user = event["user"]
        try:
            view = views.home_view(await self.reporting.home(who(user)))
        except ReportingRefused as exc:
            view = views.home_view(None, str(exc))
        await client.views_publish(user_id=user, view=view)


def register(app: AsyncApp, services: SlackServices) -> None:
    """Attach the event listeners."""
    app.event("app_home_opened")(AppHome(services.reporting).opened)
