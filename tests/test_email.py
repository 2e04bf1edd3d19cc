"""Email out: the form goes by email, through the outbox, to people without a chat app, and is
received by a real SMTP server (aiosmtpd) on 127.0.0.1; then the link in the received email is
opened in a real browser and the return completed. Transient refusals are retried with the same
Message-ID; a refused mailbox fails for good; STARTTLS is never silently skipped."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.config import ConfigError
from bot.delivery.outbox import OutboxDispatcher, RateLimits
from handlers.email import EmailMessenger
from tests.conftest import make_config
from tests.email_helpers import Inbox, smtp_server, text_of
from tests.test_web_browser import ARGS, CHROMIUM, assert_accessible
from tests.web_helpers import WebWorld, web_world

LINK = re.compile(r"http://127\.0\.0\.1:\d+/return/t/\S+")


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as server:
        yield server


@pytest.fixture
async def world(db_url: str, clock: FakeClock, inbox: Inbox) -> AsyncIterator[WebWorld]:
    email = {"host": "127.0.0.1", "port": inbox.port, "security": "none"}
    async with web_world(db_url, clock, email=email) as w:
        yield w


def outbox(world: WebWorld, clock: FakeClock | None = None) -> OutboxDispatcher:
    """The real dispatcher with the real email messenger (fast limits for the test)."""
    config = world.services.config
    return OutboxDispatcher(
        world.services.db.uow,
        {"email": EmailMessenger(config)},
        {"email": RateLimits(100.0, 100.0, 2)},
        clock=clock,
    )


async def test_the_form_goes_by_email_with_a_personal_link_in_both_parts(
    world: WebWorld, inbox: Inbox
) -> None:
    await outbox(world).drain()
    assert sorted(m["To"] for m in inbox.messages) == [
        "asha@example.org",
        "mark@example.org",
        "sarah@example.org",
        "yusuf@example.org",
    ]
    [mail] = inbox.to("yusuf@example.org")
    assert mail["Subject"] == "SWP tension return for December 2026"
    assert mail["From"] == "Community tension return <tensions@example.gov.uk>"
    assert re.fullmatch(r"<[0-9a-f]{40}@example\.gov\.uk>", mail["Message-ID"])
    assert mail["List-Unsubscribe"] is None  # a service message
    plain, html = text_of(mail, "plain"), text_of(mail, "html")
    link, report_link = LINK.findall(plain)  # the return's form; a report at any time
    assert link != report_link
    assert f'<a href="{link}">' in html and f'<a href="{report_link}">' in html
    assert "Nothing to report this time" not in plain  # the chat buttons are not in an email
    assert "please do not forward it" in plain
    # Each person's own link: four different links.
    links = {LINK.findall(text_of(m, "plain"))[0] for m in inbox.messages}
    assert len(links) == 4
    assert await world.delivery("yusuf@example.org") == "sent"


async def test_a_server_that_asks_to_try_later_gets_the_same_message_id_again(
    world: WebWorld, inbox: Inbox
) -> None:
    inbox.try_later = 1
    wall = FakeClock(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    dispatcher = outbox(world, wall)
    await dispatcher.drain()  # one refused with 451 (retried later), three delivered
    assert len(inbox.deferred) == 1 and len(inbox.messages) == 3
    first = inbox.deferred[0]
    wall.advance(timedelta(minutes=10))  # past the backoff
    await dispatcher.drain()
    [again] = inbox.to(first["To"])
    assert again["Message-ID"] == first["Message-ID"]
    assert again["Subject"] == first["Subject"]


async def test_a_refused_mailbox_fails_for_good_and_the_person_is_unreachable(
    world: WebWorld, inbox: Inbox
) -> None:
    inbox.refused.add("mark@example.org")
    await outbox(world).drain()
    assert inbox.to("mark@example.org") == []
    assert len(inbox.messages) == 3
    assert await world.delivery("mark@example.org") == "unreachable"


async def test_starttls_is_never_skipped_for_a_server_that_does_not_offer_it(
    db_url: str, clock: FakeClock, inbox: Inbox
) -> None:
    email = {"host": "127.0.0.1", "port": inbox.port, "security": "starttls"}
    async with web_world(db_url, clock, email=email) as w:
        await outbox(w).drain()
        assert inbox.messages == []  # nothing went out in the clear
        assert await w.delivery("yusuf@example.org") == "queued"  # to be retried


def test_a_login_without_tls_is_refused_by_the_configuration(db_url: str) -> None:
    with pytest.raises(ConfigError, match=r"email\.username needs security"):
        make_config(db_url, email={"host": "mail.example", "security": "none", "username": "bot"})


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (CI installs it)")
async def test_a_community_leader_without_telegram_answers_from_the_email_in_a_browser(
    world: WebWorld, inbox: Inbox
) -> None:
    from playwright.async_api import async_playwright

    await outbox(world).drain()
    [mail] = inbox.to("yusuf@example.org")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            # The email as a webmail shows it; the person clicks the link in it.
            await page.set_content(text_of(mail, "html"))
            async with page.expect_navigation(url="**/return/form"):
                await page.click("a[href*='/return/t/']")
            await page.select_option("#f-ward", "Park")
            await page.check("input[name='category'][value='event']")
            await page.fill("#f-description", "Tension after the match, groups gathering")
            await page.check("input[name='basis'][value='potential']")
            await page.check("input[name='level'][value='2']")
            await page.check("input[name='media'][value='unknown']")
            await page.check("input[name='already_reported'][value='police']")
            await page.fill("#f-external_ref", "WMP-123")
            await page.check("input[name='consent_contact'][value='no']")
            await page.check("input[name='consent_share'][value='no']")
            await page.click("form[action$='/review'] button")
            await page.click("form[action$='/submit'] button")
            await page.wait_for_selector(".reference")
            assert await page.inner_text(".reference") == "TR-2026-12-0001"
            await assert_accessible(page)
        finally:
            await browser.close()
    [report] = await world.reports()
    assert (report.ward, report.category, report.answers["external_ref"]) == (
        "Park",
        "event",
        "WMP-123",
    )
    assert await world.delivery("yusuf@example.org") == "responded"


async def test_the_running_bot_emails_the_form_and_serves_the_web_form(
    db_url: str, clock: FakeClock, inbox: Inbox, fake_telegram: Any
) -> None:
    """`tensionbot run` as deployed: its own outbox sends the email (Telegram for whoever
    linked), its own HTTP server serves the link in it."""
    import aiohttp

    from sim.scripts import until
    from sim.world import SimWorld, free_port
    from tests.helpers import PEOPLE_CSV
    from tests.web_helpers import WEB_SECRET

    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        env={"TENSIONBOT_WEB_SECRET": WEB_SECRET},
        server={"port": port, "listen": "127.0.0.1"},
        web={"base_url": f"http://127.0.0.1:{port}", "secure_cookies": False},
        email={"host": "127.0.0.1", "port": inbox.port, "security": "none"},
    )
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        asha = await world.link("asha@example.org", 501, "Asha")
        await world.services.campaigns.tick()
        await asha.wait_for("December 2026")  # Asha linked Telegram: the form comes there
        await until(lambda: len(inbox.messages) == 3)
        assert inbox.to("asha@example.org") == []
        link = LINK.findall(text_of(inbox.to("sarah@example.org")[0], "plain"))[0]
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            async with client.get(link) as r:
                assert r.status == 200
            async with client.get(f"http://127.0.0.1:{port}/return/form") as r:
                assert "Hello Rev Sarah Jones" in await r.text()
    finally:
        await world.stop()


async def test_erasing_a_person_removes_the_emails_to_them_and_their_links(
    world: WebWorld, inbox: Inbox
) -> None:
    """An email in the outbox holds the address and a personal link: `people erase` deletes it
    like a chat message to them, and `people export` lists it."""
    await outbox(world).drain()
    services = world.services
    exported = await services.privacy.export("yusuf@example.org", actor="test")
    assert [m["channel"] for m in exported["messages_to_them"]] == ["email"]
    await services.privacy.erase("yusuf@example.org", actor="test")
    async with services.db.uow() as uow:
        left = await uow.privacy.messages_to([("email", "yusuf@example.org")])
    assert list(left) == []


async def test_a_reporter_without_a_chat_app_hears_about_their_report_by_email(
    db_url: str, clock: FakeClock, inbox: Inbox, fake_telegram: Any
) -> None:
    """Asha has no chat app: the form comes by email, she answers on the web, and the
    "delivered" and "acknowledged" notices (with the reference) come by email too."""
    from sim.fake_slack import SlackUser
    from sim.scripts import until
    from tests.helpers import PEOPLE_CSV
    from tests.web_helpers import answer_return_by_email, email_bot

    async with email_bot(db_url, clock, inbox, fake_telegram, PEOPLE_CSV) as bot:
        slack, base = bot.slack, bot.base
        done = await answer_return_by_email(inbox, base, "asha@example.org")
        assert "TR-2026-12-0001" in done

        def subjects() -> list[str]:
            return [str(m["Subject"]) for m in inbox.to("asha@example.org")]

        await until(lambda: any("Delivered to" in s for s in subjects()))
        [post] = await until(lambda: slack.top_level("C0COHESION"))
        jane = SlackUser(slack, "U0JANE", f"{base}/slack/events")
        assert await jane.click(post, "tb_ack") == 200
        await until(lambda: any("Acknowledged" in s for s in subjects()))
        assert all(s.startswith("TR-2026-12-0001") for s in subjects()[1:]), subjects()


async def test_a_pact_invitation_goes_by_email_with_its_calendar_file(
    db_url: str, clock: FakeClock, inbox: Inbox
) -> None:
    """Yusuf, a partner of the Heath Town PACT without a chat app, gets the invitation by
    email with the .ics attached (text/calendar), as chat users get it as a document."""
    from icalendar import Calendar

    from tests.helpers import PACT_NEIGHBOURHOODS

    email = {"host": "127.0.0.1", "port": inbox.port, "security": "none"}
    async with web_world(db_url, clock, email=email, pact=PACT_NEIGHBOURHOODS) as world:
        await world.services.people.import_csv(
            "name,role,wards,organisation,email\n"
            "Chris Chair,community_leader,Heath Town,Residents,chris@example.org\n"
            "PC Dan Lee,officer,all,Police,dan@example.org\n",
            source="more.csv",
            actor="t",
        )
        await world.services.pact.schedule(
            neighbourhood="heath-town", on="2026-12-10", at="18:30", venue="Heath Town Library",
            format="in_person", chair_email=None, actor="t",
        )  # fmt: skip
        clock.set(datetime(2026, 12, 7, 19, 0, tzinfo=UTC))
        assert (await world.services.pact.tick())["reminders"] == 1
        await outbox(world).drain()
        [invitation] = [m for m in inbox.to("dan@example.org") if "PACT" in str(m["Subject"])]
        [ics] = [p for p in invitation.iter_attachments()]
        assert ics.get_content_type() == "text/calendar"
        assert ics.get_filename() == "pact-heath-town-20261210.ics"
        event = Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
        assert str(event.get("location")) == "Heath Town Library"


async def test_the_report_link_in_an_email_reports_a_tension_at_any_time(
    world: WebWorld, inbox: Inbox, clock: FakeClock
) -> None:
    """The web's /report: the second link of every form email still works after the return
    has closed, makes an urgent report with its reference, offers no nil return, and expires
    after web.report_link_days."""
    from tests.web_helpers import TENSION, browser_session, hidden_field

    await outbox(world).drain()
    report_link = LINK.findall(text_of(inbox.to("mark@example.org")[0], "plain"))[1]
    clock.set(datetime(2026, 12, 20, 10, 0, tzinfo=UTC))  # the December return has closed
    await world.services.campaigns.tick()
    async with browser_session() as client:
        await (await client.get(report_link)).text()
        page = await (await client.get(world.form_url)).text()
        assert "<h1>Report a tension</h1>" in page
        assert "/return/nil" not in page
        fields = {
            **TENSION,
            "_csrf": hidden_field(page, "_csrf"),
            "_once": hidden_field(page, "_once", "review"),
        }
        async with client.post(f"{world.base}/return/submit", data=fields) as r:
            done = await r.text()
            assert "Your reference is" in done and "TR-2026-12-0001" in done
        async with client.post(
            f"{world.base}/return/nil", data={"_csrf": fields["_csrf"], "_once": "x"}
        ) as r:
            assert r.status == 400
        async with client.post(f"{world.base}/return/submit", data=fields) as r:
            assert r.status == 409  # replayed: still one report
    async with world.services.db.uow() as uow:
        mark = await uow.people.by_email("mark@example.org")
        assert mark is not None and mark.id is not None
        reports = await uow.reports.for_person(mark.id)
    assert [(r.reference, r.source, r.campaign_id) for r in reports] == [
        ("TR-2026-12-0001", "adhoc", None)
    ]
    clock.set(datetime(2027, 1, 6, 10, 0, tzinfo=UTC))  # 36 days after the email
    async with browser_session() as client, client.get(report_link) as r:
        assert r.status == 410
