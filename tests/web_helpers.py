"""The web form's test world: the core services with the web form on, the one HTTP server on
127.0.0.1 (the real ``build_http_app`` and ``handlers/web``), the December return open and four
people who never linked a chat app (so their deliveries are "unreachable": the web is their way)."""

from __future__ import annotations

import re
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
from sim.fake_slack import FakeSlack
from sim.scripts import until
from sim.world import SimWorld, free_port
from tests.conftest import SLACK_ENV, make_config
from tests.email_helpers import Inbox, text_of
from tests.helpers import PEOPLE_CSV, team_slack

WEB_SECRET = "test-web-secret-0123456789abcdef0123456789"
# A personal link to the return's form, in an email's plain text.
RETURN_LINK = re.compile(r"http://127\.0\.0\.1:\d+/return/t/[^\s<>]+")

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
        return await self.services.web.link_for(email, self.campaign_key, actor="t")

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
    port = free_port()
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


@dataclass
class EmailBot:
    """Handles on the running bot (Telegram, Slack, email, web) of :func:`email_bot`."""

    world: SimWorld
    slack: FakeSlack  # the teams' workspace (tests.helpers.team_slack)
    base: str  # the bot's one HTTP server (Slack's events and the web pages), e.g. http://127.0.0.1:PORT


@asynccontextmanager
async def email_bot(
    db_url: str, clock: FakeClock, inbox: Inbox, fake_telegram: Any, people: str
) -> AsyncIterator[EmailBot]:
    """The whole running bot with email to ``inbox`` and the web pages on: test_actions' teams
    and routing in the fake Slack, ``people`` imported and the December return sent (by email
    to those whose channel it is)."""
    from tests.test_actions import ROUTING, TEAMS

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with team_slack() as slack:
        config = make_config(
            db_url,
            fake_telegram.base_url,
            env={**SLACK_ENV, "TENSIONBOT_WEB_SECRET": WEB_SECRET},
            slack={"api_base_url": slack.base_url, "port": port},
            teams=TEAMS,
            routing=ROUTING,
            web={"base_url": base, "secure_cookies": False},
            email={"host": "127.0.0.1", "port": inbox.port, "security": "none"},
        )
        world = await SimWorld.start(config, fake_telegram, clock)
        try:
            await world.import_people(people)
            await world.services.campaigns.tick()
            yield EmailBot(world, slack, base)
        finally:
            await world.stop()


async def answer_return_by_email(inbox: Inbox, base: str, email: str) -> str:
    """``email`` answers the return on the web, from the link in the first email to them: the
    form, the review, one tension (:data:`TENSION`) sent. Returns the page they end on."""
    await until(lambda: inbox.to(email))
    link = RETURN_LINK.findall(text_of(inbox.to(email)[0], "plain"))[0]
    async with browser_session() as client:
        await (await client.get(link)).text()
        page = await (await client.get(f"{base}/return/form")).text()
        fields = {
            **TENSION,
            "_csrf": hidden_field(page, "_csrf"),
            "_once": hidden_field(page, "_once", "review"),
        }
        return await (await client.post(f"{base}/return/submit", data=fields)).text()
