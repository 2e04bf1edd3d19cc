"""Building the Slack side: the Web API client, the Bolt app and its HTTP endpoint."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.internals import parse_body
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions.service import ActionService
from bot.delivery.seen import SeenRequests
from bot.pact.service import PactService
from bot.returns.crisis import CrisisService
from bot.returns.reports import ReportingService
from bot.summaries.service import SummaryService
from handlers.http import MAX_BODY
from handlers.slack.listeners import SlackServices, register_listeners
from handlers.slack.requests import problem

log = logging.getLogger(__name__)


def build_client(api_base_url: str, token: str, proxy: str | None = None) -> AsyncWebClient:
    """A Web API client that honours 429 Retry-After and retries connection errors, through
    ``proxy`` (from handlers.network.proxy_for) or directly when None."""
    client = AsyncWebClient(
        token=token,
        base_url=f"{api_base_url}/api/",
        proxy=proxy,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )
    # slack_sdk reads HTTPS_PROXY itself when given none, ignoring NO_PROXY: the choice is ours.
    # Bolt's per-request clients and respond() copy it from this client.
    client.proxy = proxy
    return client


def build_app(
    client: AsyncWebClient,
    signing_secret: str,
    actions: ActionService,
    reporting: ReportingService,
    summaries: SummaryService,
    *,
    seen: SeenRequests,
    pact: PactService,
    crisis: CrisisService,
) -> AsyncApp:
    """The Bolt app (signature and timestamp of every request verified by Bolt, replays refused
    through ``seen``, in the database), with the PACT and crisis listeners."""
    # Named here: without a name Bolt calls inspect.stack(), which reads the source of every
    # calling module into linecache, to be held (about 1 MB) for as long as the process runs.
    app = AsyncApp(
        name="tensionbot",
        client=client,
        signing_secret=signing_secret,
        process_before_response=False,
    )
    register_listeners(app, SlackServices(actions, reporting, summaries, seen, pact, crisis))
    return app


def events_handler(
    app: AsyncApp, signing_secret: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for Slack's Events API and interactivity (Bolt verifies the
    signature and timestamp of every request). A correctly signed request whose body is not the
    shape Slack sends (not JSON, not an object, no actions, a modal without state, ...) is
    answered 400 before Bolt parses it; an unsigned one is left to Bolt (401)."""
    verifier = SignatureVerifier(signing_secret)

    def signed(raw: bytes, headers: dict[str, str]) -> bool:
        try:
            return verifier.is_valid_request(raw.decode(), headers)
        except UnicodeDecodeError:
            # Slack signs bytes; the verifier only takes text. Check the same way over bytes.
            lower = {k.lower(): v for k, v in headers.items()}
            stamp, given = (
                lower.get("x-slack-request-timestamp", ""),
                lower.get("x-slack-signature", ""),
            )
            if not (stamp.isascii() and stamp.isdigit()) or abs(time.time() - int(stamp)) > 300:
                return False
            digest = hmac.new(
                signing_secret.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256
            ).hexdigest()
            return hmac.compare_digest(f"v0={digest}", given)

    async def events(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="too large")
        raw = await request.read()
        if signed(raw, dict(request.headers)):
            try:
                reason = problem(parse_body(raw.decode(), request.content_type))
                bolt_request = await to_bolt_request(request)  # Bolt reads fields here too
            except (ValueError, TypeError, KeyError, AttributeError, IndexError):
                reason, bolt_request = "not a Slack request body", None
            if reason is not None or bolt_request is None:
                log.warning("refused a malformed Slack request: %s", reason)
                return web.Response(status=400, text="bad request")
        else:
            try:
                bolt_request = await to_bolt_request(request)
            except (ValueError, TypeError, KeyError, AttributeError, IndexError):
                return web.Response(status=401, text="")
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    return events


def http_app(app: AsyncApp, path: str, signing_secret: str) -> web.Application:
    """A stand-alone aiohttp application serving Slack at ``path`` (``tensionbot run`` mounts
    :func:`events_handler` on its one server instead)."""
    web_app = web.Application(client_max_size=MAX_BODY)
    web_app.router.add_post(path, events_handler(app, signing_secret))
    return web_app
