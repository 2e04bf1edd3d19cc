"""The email and web scene: a community leader without Telegram answers the return from the
email the bot sent, on the web form, and someone who blocked the bot sends a nil return from the
fallback email; four weeks on, Ruth answers "is this still a problem?" from the email's button
link. The mail is received by a real SMTP server (``sim/mail.py``) on 127.0.0.1; the
web form is opened in the system's Chromium when there is one (a screenshot of the form lands in
the output folder), else with plain HTTP requests."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from sim.demo.stage import CHANNELS, Stage, say
from sim.mail import link_in
from sim.scripts import until as scripted_until

CHROMIUM = Path("/usr/bin/chromium")
BUTTON_LINK = re.compile(r"(Still a problem|Sorted now, thanks) <(http://[^\s<>]+/b/t/[^\s<>]+)>")
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


async def ruth_and_linda_answer_on_the_web(stage: Stage) -> None:
    """Ruth (no Telegram) reports a tension from her email; Linda (blocked the bot) sends a nil
    return from the fallback email."""
    inbox, out = stage.inbox, stage.out
    ruth, linda = "ruth.adeyemi@example.org", "linda.brown@example.org"
    await scripted_until(lambda: inbox.to(ruth))
    # The bot learnt of Linda's block when her form was refused; the scheduler's next tick
    # sends it by email instead (ticks are idempotent: run until it has gone).
    for _ in range(300):
        if inbox.to(linda):
            break
        await stage.world.tick()
        await asyncio.sleep(0.1)
    await scripted_until(lambda: inbox.to(linda))
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


async def ruth_is_asked_four_weeks_on(stage: Stage) -> None:
    """Four weeks on, the team is still working on Ruth's report: "Is this still a problem?"
    comes by email, each button a personal link. A link scanner opens them (nothing changes);
    Ruth presses "Still a problem" on the page they lead to: the action is reopened and the
    team told in Slack."""
    ruth = "ruth.adeyemi@example.org"
    team = await _acknowledge_reports_of(stage, ruth)
    stage.clock.set(stage.clock.now() + timedelta(weeks=4, hours=1))
    asked = (await stage.world.services.actions.tick()).get("reporter-check", 0)
    await stage.world.settle()

    def checks() -> list[EmailMessage]:
        return [m for m in stage.inbox.to(ruth) if "still a problem" in str(m["Subject"])]

    if not checks():
        say(f"  Four weeks on: {asked} reporters asked whether it is still a problem (not Ruth)")
        return
    part = checks()[0].get_body(preferencelist=("plain",))
    assert part is not None
    links = dict(BUTTON_LINK.findall(str(part.get_content())))
    import aiohttp

    async with aiohttp.ClientSession() as scanner:  # a mail filter: opens every link
        for link in links.values():
            await (await scanner.get(link)).text()
    if CHROMIUM.exists():
        answer = await _press_in_chromium(links["Still a problem"], stage.out)
        shot = "; screenshot: email-button.png"
    else:
        answer = await _press_over_http(links["Still a problem"])
        shot = ""
    await stage.world.settle()
    say(
        f"  {team} acknowledged Ruth's report. Four weeks on, {asked} reporters were asked "
        "whether their report is still a problem; Ruth (channel: email) by an email whose "
        "buttons are personal links to the web. A link scanner "
        f'opened them (nothing changed); she pressed "Still a problem" on the page{shot}: '
        f"{answer}"
    )


RECORD_LINK = re.compile(r"Record the meeting <(http://[^\s<>]+/b/t/[^\s<>]+)>")


async def ruth_records_penn_on_the_web(stage: Stage) -> None:
    """10 December: Ruth (no chat app) chaired the evening Penn meeting in Blakenhall. The
    "How did it go?" prompt comes by email; its "Record the meeting" link opens the record as
    one form, where a wrong count is shown by its field and the corrected record is stored."""
    from datetime import datetime

    from sim.demo.stage import LONDON

    ruth = "ruth.adeyemi@example.org"
    await stage.at(datetime(2026, 12, 10, 21, 0, tzinfo=LONDON))
    await stage.world.settle()

    def prompts() -> list[EmailMessage]:
        return [m for m in stage.inbox.to(ruth) if "How did" in str(m["Subject"])]

    await scripted_until(prompts)
    part = prompts()[0].get_body(preferencelist=("plain",))
    assert part is not None
    [link] = RECORD_LINK.findall(str(part.get_content()))
    if not CHROMIUM.exists():
        say("- 10 Dec: Ruth's record of the Penn meeting: no /usr/bin/chromium here, not shown")
        return
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 800, "height": 900})
            page = await context.new_page()
            await page.goto(link)
            await page.wait_for_url("**/b")
            await page.fill("#f-public", "9")
            await page.fill("#f-new", "11")  # a slip: more new attendees than attendees
            for review in await page.query_selector_all("fieldset[id^='f-review_']"):
                carried = await review.query_selector("input[value='carried']")
                assert carried is not None
                await carried.check()
                note = await review.query_selector("textarea")
                if note is not None and not (await note.input_value()).strip():
                    await note.fill("Raised again; the council is arranging a site visit.")
            await page.click("button:has-text('Record the meeting')")
            await page.wait_for_selector(".error-summary")
            refused = (await page.inner_text(".error-message")).removeprefix("Error:").strip()
            await page.fill("#f-new", "4")
            await page.screenshot(path=str(stage.out / "pact-record-web.png"), full_page=True)
            await page.click("button:has-text('Record the meeting')")
            await page.wait_for_selector(".answer")
            answer = str(await page.inner_text(".answer"))
        finally:
            await browser.close()
    await stage.world.settle()
    say(
        "- 10 Dec: Bishop Ruth Adeyemi (no chat app) chaired the Penn meeting in Blakenhall and "
        f"recorded it from the link in her email, in Chromium: first refused ({refused}), "
        f"then: {answer} (screenshot: pact-record-web.png)"
    )


async def _acknowledge_reports_of(stage: Stage, email: str) -> str:
    """The owning team acknowledges the person's reports in Slack (a click on each team
    message); the team's channel name(s)."""
    services = stage.world.services
    async with services.db.uow() as uow:
        person = await uow.people.by_email(email)
        assert person is not None and person.id is not None
        reports = {r.reference: r.id for r in await uow.reports.for_person(person.id)}
    refs = set(reports)
    names: list[str] = []
    for channel, name, members in CHANNELS:
        for user in (stage.jane, stage.pc, stage.sam):
            if user.user_id not in members:
                continue
            for post in stage.slack.top_level(channel):
                if post.text.split(" ", 1)[0] in refs and "tb_ack" in post.action_ids():
                    await user.click(post, "tb_ack")
                    names.append(f"#{name}")

    async def still_open() -> bool:  # Slack is answered first; the work follows
        async with services.db.uow() as uow:
            for report_id in reports.values():
                assert report_id is not None
                if any(a.state == "open" for a in await uow.actions.for_report(report_id)):
                    return True
        return False

    for _ in range(1200):
        if not await still_open():
            break
        await asyncio.sleep(0.05)
    await stage.world.settle()
    return " and ".join(names) or "Nobody"


async def _press_in_chromium(link: str, out: Path) -> str:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 800, "height": 600})
            page = await context.new_page()
            await page.goto(link)
            await page.wait_for_url("**/b")
            await page.screenshot(path=str(out / "email-button.png"), full_page=True)
            await page.click("button:has-text('Still a problem')")
            await page.wait_for_selector(".answer")
            return str(await page.inner_text(".answer"))
        finally:
            await browser.close()


async def _press_over_http(link: str) -> str:
    import aiohttp

    base = link.split("/b/t/", 1)[0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        await (await client.get(link)).text()
        page = await (await client.get(f"{base}/b")).text()
        fields = {
            name: re.findall(rf'name="{name}" value="([^"]*)"', page)[0]
            for name in ("_csrf", "_once")
        }
        still = re.findall(r'name="choice" value="([^"]*)"[^>]*>Still a problem', page)[0]
        done = await (await client.post(f"{base}/b", data={**fields, "choice": still})).text()
    found = re.search(r'<p class="answer">([^<]*)</p>', done)
    return found.group(1) if found else "(no answer shown)"


async def answered_by_channel(stage: Stage) -> None:
    """Who answered the December return (tensions or nil) on which channel: where their form
    went."""
    services = stage.world.services
    december = await services.campaigns.resolve("2026-12")
    assert december.id is not None
    by: dict[str, list[str]] = {}
    async with services.db.uow() as uow:
        for delivery in await uow.deliveries.for_campaign(december.id):
            if delivery.status not in ("responded", "nil"):
                continue
            person = await uow.people.get(delivery.person_id)
            assert person is not None
            addresses = [("email", person.email)]
            addresses += [(a.platform, a.chat) for a in person.addresses if a.chat is not None]
            forms = [
                m
                for m in await uow.privacy.messages_to(addresses)
                if m.delivery_id == delivery.id and m.purpose == "form" and m.status == "sent"
            ]
            channel = forms[-1].channel if forms else "chat (/report)"
            label = {"email": "email and the web form"}.get(channel, channel.capitalize())
            by.setdefault(label, []).append(person.name)
    say(
        "Answered by channel: "
        + "; ".join(f"{label}: {', '.join(sorted(names))}" for label, names in sorted(by.items()))
    )
