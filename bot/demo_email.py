"""The demo's email and web scene: a community leader without Telegram answers the return from
the email the bot sent, on the web form, and someone who blocked the bot sends a nil return from
the fallback email. The mail is received by a real SMTP server (aiosmtpd) on 127.0.0.1; the web
form is opened in the system's Chromium when there is one (a screenshot of the form lands in the
output folder), else with plain HTTP requests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LINK = re.compile(r"https?://\S+/t/\S+")
#: The demo's web-form secret (never a real one).
WEB_SECRET = "demo-web-secret-not-a-real-one-0123456789"  # noqa: S105


@dataclass
class MailInbox:
    """What the demo's SMTP server received."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for ``address``."""
        return [m for m in self.messages if m["To"] == address]


@asynccontextmanager
async def mail_server() -> AsyncIterator[MailInbox]:
    """A real SMTP server on 127.0.0.1 (a free port) in this event loop."""
    from aiosmtpd.smtp import SMTP

    inbox = MailInbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="mail.demo", ident="demo SMTP"), "127.0.0.1", 0
    )
    inbox.port = int(server.sockets[0].getsockname()[1])
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()


def link_in(message: EmailMessage) -> str:
    """The personal web-form link in an email's plain-text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = LINK.findall(str(part.get_content()))
    assert found, "no link in the email"
    return str(found[0])


async def answer_on_the_web(
    inbox: MailInbox,
    out: Path,
    say: Callable[[str], None],
    until: Callable[..., Any],
    tick: Callable[[], Awaitable[None]],
) -> None:
    """Ruth (no Telegram) reports a tension from her email; Linda (blocked the bot) sends a nil
    return from the fallback email."""
    ruth, linda = "ruth.adeyemi@example.org", "linda.brown@example.org"
    await until(lambda: inbox.to(ruth))
    # The bot learnt of Linda's block when her form was refused; the scheduler's next tick
    # sends it by email instead (ticks are idempotent: run until it has gone).
    for _ in range(300):
        if inbox.to(linda):
            break
        await tick()
        await asyncio.sleep(0.1)
    await until(lambda: inbox.to(linda))
    say(
        f"  By email (a real SMTP server on 127.0.0.1): {len(inbox.messages)} forms, each with "
        "its person's own link to the web form: Bishop Ruth Adeyemi (no Telegram: her channel "
        "is email), David Green (never linked: email is his default) and Linda Brown (blocked "
        "the bot: email.fallback, once)"
    )
    if CHROMIUM.exists():
        await _in_chromium(link_in(inbox.to(ruth)[0]), link_in(inbox.to(linda)[0]), out)
        say(
            "  Ruth opened her link in a browser (Chromium), filled in the web form, checked "
            "her answers and got her reference; screenshot: web-form.png, web-form-done.png"
        )
    else:
        await _over_http(link_in(inbox.to(ruth)[0]), link_in(inbox.to(linda)[0]))
        say("  Ruth answered on the web form (no /usr/bin/chromium here, so no screenshot)")
    say("  Linda sent a nil return with the web form's one button")


async def _in_chromium(ruth_link: str, linda_link: str, out: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await (
                await browser.new_context(viewport={"width": 800, "height": 900})
            ).new_page()
            await page.goto(ruth_link)
            await page.wait_for_url("**/form")
            await page.select_option("#f-ward", "Park")
            await page.check("input[name='category'][value='religion']")
            await page.fill(
                "#f-description", "Anti-Muslim leaflets pushed through doors near the park"
            )
            await page.check("input[name='basis'][value='evidenced']")
            await page.check("input[name='level'][value='2']")
            await page.check("input[name='media'][value='social']")
            await page.check("input[name='already_reported'][value='no']")
            await page.check("input[name='consent_contact'][value='yes']")
            await page.check("input[name='consent_share'][value='yes']")
            await page.screenshot(path=str(out / "web-form.png"), full_page=True)
            await page.click("form[action$='/review'] button")
            await page.click("form[action$='/submit'] button")
            await page.wait_for_selector(".reference")
            await page.screenshot(path=str(out / "web-form-done.png"), full_page=True)
            page = await (await browser.new_context()).new_page()
            await page.goto(linda_link)
            await page.wait_for_url("**/form")
            await page.click("form[action$='/nil'] button")
            await page.wait_for_selector("text=Your nil return is recorded")
        finally:
            await browser.close()


async def _over_http(ruth_link: str, linda_link: str) -> None:
    import aiohttp

    def hidden(html: str, name: str, action: str) -> str:
        html = html[html.index(f'action="/return/{action}"') :]
        match = re.search(rf'name="{name}" value="([^"]*)"', html)
        assert match
        return match.group(1)

    base = ruth_link.split("/return/", 1)[0] + "/return"
    answers = {
        "ward": "Park",
        "category": "religion",
        "description": "Anti-Muslim leaflets pushed through doors near the park",
        "basis": "evidenced",
        "level": "2",
        "media": "social",
        "already_reported": "no",
        "consent_contact": "yes",
        "consent_share": "yes",
    }
    for link, action in ((ruth_link, "review"), (linda_link, "nil")):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            await (await client.get(link)).text()
            page = await (await client.get(f"{base}/form")).text()
            fields = {
                "_csrf": hidden(page, "_csrf", action),
                "_once": hidden(page, "_once", action),
            }
            if action == "nil":
                await (await client.post(f"{base}/nil", data=fields)).text()
                continue
            await (await client.post(f"{base}/review", data={**answers, **fields})).text()
            await (await client.post(f"{base}/submit", data={**answers, **fields})).text()


async def answered_by_channel(services: Any, campaign_id: int) -> str:
    """Who answered the return (tensions or nil) on which channel: where their form went."""
    by: dict[str, list[str]] = {}
    async with services.db.uow() as uow:
        for delivery in await uow.deliveries.for_campaign(campaign_id):
            if delivery.status not in ("responded", "nil"):
                continue
            person = await uow.people.get(delivery.person_id)
            addresses = [("email", person.email)]
            if person.telegram_chat_id is not None:
                addresses.append(("telegram", str(person.telegram_chat_id)))
            if person.slack_user_id:
                addresses.append(("slack", person.slack_user_id))
            forms = [
                m
                for m in await uow.privacy.messages_to(addresses)
                if m.delivery_id == delivery.id and m.purpose == "form" and m.status == "sent"
            ]
            channel = forms[-1].channel if forms else "chat (/report)"
            label = {"email": "email and the web form"}.get(channel, channel.capitalize())
            by.setdefault(label, []).append(person.name)
    return "Answered by channel: " + "; ".join(
        f"{label}: {', '.join(sorted(names))}" for label, names in sorted(by.items())
    )
