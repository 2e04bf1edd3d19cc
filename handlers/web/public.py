"""Public PACT pages: ``/pact/`` (the neighbourhoods), ``/pact/{key}`` (upcoming meetings) and
``/pact/{key}.ics`` (a calendar feed to subscribe to). Read-only, no personal data, no cookies,
no scripts; the same strict headers as the web form, but cacheable for a few minutes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.config import Config
from bot.pact.public import PublicPactService
from handlers.web import HEADERS, _environment, _stylesheet

PUBLIC_HEADERS = {**HEADERS, "Cache-Control": "public, max-age=300"}


def public_pact_app(service: PublicPactService, config: Config) -> web.Application:
    """The public PACT pages as an aiohttp sub-application (mounted at ``/pact``)."""
    env = _environment()

    def render(template: str, status: int = 200, **context: Any) -> web.Response:
        body = env.get_template(template).render(
            base="/pact", partnership=config.partnership.name, **context
        )
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    async def index(_: web.Request) -> web.Response:
        return render("pact_index.html", title="PACT meetings", hoods=service.neighbourhoods())

    async def page(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        if key.endswith(".ics"):
            feed = await service.feed(key.removesuffix(".ics"))
            if feed is None:
                raise web.HTTPNotFound()
            return web.Response(body=feed, content_type="text/calendar", charset="utf-8")
        listing = await service.listing(key)
        if listing is None:
            return render(
                "problem.html",
                status=404,
                title="No such neighbourhood",
                text="There is no PACT neighbourhood at this address.",
            )
        return render("pact_page.html", title=f"{listing.name} PACT meetings", hood=listing)

    @web.middleware
    async def headers(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(PUBLIC_HEADERS)
            raise
        response.headers.update(PUBLIC_HEADERS)
        return response

    app = web.Application(middlewares=[headers])
    app.router.add_get("/", index)
    app.router.add_get("/style.css", _stylesheet)
    app.router.add_get("/{key}", page)
    return app
