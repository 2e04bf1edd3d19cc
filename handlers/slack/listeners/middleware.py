"""Middleware run before every listener: refuse a replayed request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.delivery.seen import SeenRequests, request_key
from handlers.slack.listeners.services import SlackServices

log = logging.getLogger(__name__)


class ReplayGuard:
    """Answers 401 to a signed request seen before, by this process or any other sharing the
    database, before or after a restart. Bolt checks the signature and that the timestamp is
    under five minutes old; within those five minutes the same bytes could be sent again.
    (Socket Mode requests are not signed and are not checked here.)"""

    def __init__(self, seen: SeenRequests) -> None:
        self.seen = seen

    async def once_only(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Let a request through the first time its signature is seen, and only then."""
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        if signature and not await self.seen.first_time(request_key("slack-request", signature)):
            log.warning("refused a replayed Slack request")
            return BoltResponse(status=401, body="")
        await next()
        return None


def register(app: AsyncApp, services: SlackServices) -> None:
    """Put the replay guard in front of every listener."""
    app.middleware(ReplayGuard(services.seen).once_only)
