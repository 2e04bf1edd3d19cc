"""Building the Slack side: the Web API client, the Bolt app and its HTTP endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.actions import ActionService
from bot.services.pact import PactService
from bot.services.reports import ReportingService
from bot.services.summary import SummaryService
from handlers.slack import register
from handlers.slack.pact import register_pact

MAX_BODY = 1024 * 1024


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
    pact: PactService | None = None,
) -> AsyncApp:
    """The Bolt app (signature and timestamp of every request verified by Bolt); with ``pact``,
    the PACT listeners too."""
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)
    register(app, actions, reporting, summaries)
    if pact is not None:
        register_pact(app, pact)
    return app


def events_handler(app: AsyncApp) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for Slack's Events API and interactivity (Bolt verifies the
    signature and timestamp of every request)."""

    async def events(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="too large")
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    return events


def http_app(app: AsyncApp, path: str) -> web.Application:
    """A stand-alone aiohttp application serving Slack at ``path`` (``tensionbot run`` mounts
    :func:`events_handler` on its one server instead)."""
    web_app = web.Application(client_max_size=MAX_BODY)
    web_app.router.add_post(path, events_handler(app))
    return web_app
