"""Middleware run before every listener: refuse a replayed request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.delivery.seen import SeenRequests, request_key, signed_lifetime
from handlers.slack.listeners.services import SlackServices

log = logging.getLogger(__name__)


class ReplayGuard:
    """Answers 401 to a signed request seen before, by this process or any other sharing the
    database, before or after a restart. Bolt checks the signature and that the timestamp is
    within five minutes of its clock (either way); while it is, the same bytes could be sent
    again, so the signature is remembered until the timestamp + 5 minutes (and some skew).
    (Socket Mode requests are not signed and are not checked here.)"""

    def __init__(self, seen: SeenRequests) -> None:
        self.seen = seen

    async def once_only(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Let a request through the first time its signature is seen, and only then."""
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        stamp = (req.headers.get("x-slack-request-timestamp") or [""])[0]
        # Remembered while the signature is valid: until its stamp + 5 min, not our now + 5 min.
        lifetime = signed_lifetime(stamp, self.seen.now())
        key = request_key("slack-request", signature)
        if signature and not await self.seen.first_time(key, lifetime):
            log.warning("refused a replayed Slack request")
            return BoltResponse(status=401, body="")
        await next()
        return None


def register(app: AsyncApp, services: SlackServices) -> None:
    """Put the replay guard in front of every listener."""
    app.middleware(ReplayGuard(services.seen).once_only)
