"""The web form's test world: the core services with the web form on, the one HTTP server on
127.0.0.1 (the real ``build_http_app`` and ``handlers/web``), the December return open and four
people who never linked a chat app (so their deliveries are "unreachable": the web is their way)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.app import Services, build_services
from bot.clock import FakeClock
from bot.domain import Report
from bot.pact.public import PublicPactService
from handlers.http import HttpServer, Readiness, build_http_app
from handlers.web import web_app
from handlers.web.public import public_pact_app
from tests.conftest import make_config
from tests.helpers import PEOPLE_CSV

WEB_SECRET = "test-web-secret-0123456789abcdef0123456789"

TENSION = {
    "ward": "Heath Town",
    "category": "religion",
    "description": "Graffiti on the community centre wall",
    "location": "",
    "since": "",
    "basis": "experienced",
    "level": "2",
    "media": "none",
    "impact": "",
    "already_reported": "no",
    "consent_contact": "yes",
    "consent_share": "no",
}


def browser_session() -> aiohttp.ClientSession:
    """An HTTP client that keeps cookies as a browser does."""
    # unsafe=True: keep cookies for an IP address (127.0.0.1), as a browser does.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def hidden_field(html: str, name: str, form_action: str | None = None) -> str:
    """A hidden field's value in a page (in the form posting to ``form_action``, if given)."""
    if form_action is not None:
        html = html[html.index(f'action="/return/{form_action}"') :]
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} in the page"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WebWorld:
    """Handles on the running server and its database."""

    services: Services
    clock: FakeClock
    base: str  # e.g. http://127.0.0.1:PORT
    campaign_key: str

    @property
    def form_url(self) -> str:
        return f"{self.base}/return/form"

    async def link(self, email: str) -> str:
        """The person's personal link to the open return."""
        assert self.services.web is not None
        return await self.services.web.link_for(email, self.campaign_key)

    async def delivery(self, email: str) -> str:
        """The status of the person's delivery of the return."""
        async with self.services.db.uow() as uow:
            person = await uow.people.by_email(email)
            campaign = await uow.campaigns.by_key(self.campaign_key)
            assert person is not None and person.id is not None
            assert campaign is not None and campaign.id is not None
            delivery = await uow.deliveries.get_for(campaign.id, person.id)
            assert delivery is not None
            return delivery.status

    async def reports(self) -> list[Report]:
        """Every report of the return."""
        async with self.services.db.uow() as uow:
            campaign = await uow.campaigns.by_key(self.campaign_key)
            assert campaign is not None and campaign.id is not None
            return list(await uow.reports.for_campaign(campaign.id))


async def _ready() -> Readiness:
    return Readiness(True)


@asynccontextmanager
async def web_world(
    db_url: str,
    clock: FakeClock,
    *,
    secure_cookies: bool = False,
    people: str = PEOPLE_CSV,
    before_open: Callable[[Services], Awaitable[None]] | None = None,
    **config: Any,
) -> AsyncIterator[WebWorld]:
    """The web form served on 127.0.0.1 with the December return open (``before_open`` runs
    after the people import, before the return opens: linking, blocking)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cfg = make_config(
        db_url,
        env={"TENSIONBOT_WEB_SECRET": WEB_SECRET},
        web={"base_url": base, "secure_cookies": secure_cookies},
        **config,
    )
    services = await build_services(cfg, clock=clock, migrate=False)
    assert services.web is not None
    server = HttpServer(
        build_http_app(
            readiness=_ready,
            pages=[
                (cfg.web.path, web_app(services.web, cfg, services.web_buttons)),
                ("/pact", public_pact_app(PublicPactService(cfg, services.db.uow, clock), cfg)),
            ],
        ),
        "127.0.0.1",
        port,
        shutdown=1.0,
    )
    try:
        await services.people.import_csv(people, source="test", actor="test")
        if before_open is not None:
            await before_open(services)
        opened = (await services.campaigns.tick()).opened
        assert opened == ["monthly:2026-12"], opened
        await server.start()
        yield WebWorld(services, clock, base, "monthly:2026-12")
    finally:
        await server.stop()
        await services.close()
