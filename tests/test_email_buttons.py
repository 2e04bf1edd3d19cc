"""A message's buttons by email: the four-weekly "Is this still a problem?" reaches a reporter
whose channel is email, received by a real SMTP server (aiosmtpd) on 127.0.0.1; each button is a
personal link to a page on the bot's own web server. A link scanner's GET changes nothing; the
reporter opens the link in a real browser (Chromium) and presses "Still a problem", and the
action is reopened and the team told in the (fake) Slack. A replayed POST, someone else's token,
a tampered or expired link change nothing and get a clear page; a PACT chair's "It was
cancelled" works the same way, and "Record the meeting" says plainly where to do it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.actions.service import Officer
from bot.buttons import ButtonAction, Kind
from bot.clock import FakeClock
from sim.fake_slack import FakeSlack, SlackMessage, SlackUser
from sim.scripts import until
from sim.world import SimWorld
from tests.conftest import make_config
from tests.email_helpers import Inbox, smtp_server, text_of
from tests.test_web_browser import ARGS, CHROMIUM, assert_accessible
from tests.web_helpers import answer_return_by_email, browser_session, email_bot, hidden_field

BUTTON_LINK = re.compile(r"(Still a problem|Sorted now, thanks) <(http://[^\s<>]+/b/t/[^\s<>]+)>")
# Asha has no chat app and says so: her channel is email.
PEOPLE = """name,role,wards,organisation,email,slack_user_id,channel
Cllr Asha Patel,councillor,Heath Town,Council,asha@example.org,,email
Imam Yusuf Khan,community_leader,Park;Heath Town,Mosque,yusuf@example.org,,email
Jane Smith,officer,all,Police,jane@example.org,U0JANE,
"""


@dataclass
class CheckWorld:
    """The running bot (Telegram, Slack, email, web) with Asha's report acknowledged and four
    weeks gone by: the check has been emailed to her."""

    world: SimWorld
    slack: FakeSlack
    inbox: Inbox
    clock: FakeClock
    base: str
    post: SlackMessage  # the team's message about her report
    action_id: int
    links: dict[str, str]  # button label -> the link in the email

    async def kinds(self) -> list[str]:
        """The action's timeline, by kind."""
        return [e.kind for e in await self.world.services.actions.timeline(self.action_id)]

    async def state(self) -> str:
        async with self.world.services.db.uow() as uow:
            action = await uow.actions.get(self.action_id)
            assert action is not None
            return str(action.state)

    async def person_id(self, email: str) -> int:
        async with self.world.services.db.uow() as uow:
            person = await uow.people.by_email(email)
            assert person is not None and person.id is not None
            return person.id


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as server:
        yield server


@pytest.fixture
async def checked(
    db_url: str, clock: FakeClock, inbox: Inbox, fake_telegram: Any
) -> AsyncIterator[CheckWorld]:
    async with email_bot(db_url, clock, inbox, fake_telegram, PEOPLE) as bot:
        world, slack, base = bot.world, bot.slack, bot.base
        # Asha answers the return on the web: her report goes to the Cohesion Team.
        done = await answer_return_by_email(inbox, base, "asha@example.org")
        assert "TR-2026-12-0001" in done
        [post] = await until(lambda: slack.top_level("C0COHESION"))
        action_id = ButtonAction.decode(post.element("tb_ack")[1]["value"]).target
        jane = SlackUser(slack, "U0JANE", f"{base}/slack/events")
        assert await jane.click(post, "tb_ack") == 200
        await until(lambda: any("Acknowledged" in s for s in subjects(inbox)))

        clock.advance(timedelta(weeks=4))
        assert await world.services.actions.tick() == {"reporter-check": 1}
        [mail] = await until(
            lambda: [m for m in inbox.to("asha@example.org") if "still a problem" in m["Subject"]]
        )
        links = dict(BUTTON_LINK.findall(text_of(mail, "plain")))
        yield CheckWorld(world, slack, inbox, clock, base, post, action_id, links)


def subjects(inbox: Inbox) -> list[str]:
    return [str(m["Subject"]) for m in inbox.to("asha@example.org")]


async def page_fields(client: aiohttp.ClientSession, base: str, link: str) -> tuple[str, str]:
    """Open a button's link as a browser does (the link, then the page it moves on to); the
    page's CSRF token and one-time key."""
    async with client.get(link) as r:
        assert r.status == 200, await r.text()
    async with client.get(f"{base}/return/b") as r:
        page = await r.text()
        assert r.status == 200, page
    return hidden_field(page, "_csrf"), hidden_field(page, "_once")


async def test_the_check_email_carries_a_personal_link_for_each_button(checked: CheckWorld) -> None:
    [mail] = [m for m in checked.inbox.to("asha@example.org") if "still a problem" in m["Subject"]]
    assert mail["Subject"] == "TR-2026-12-0001 Is this still a problem?"
    assert set(checked.links) == {"Still a problem", "Sorted now, thanks"}
    html = text_of(mail, "html")
    for label, link in checked.links.items():
        assert f'<a href="{link}">{label}</a>' in html
    assert "please do not forward them" in text_of(mail, "plain")


async def test_a_link_scanner_changes_nothing(checked: CheckWorld) -> None:
    before = await checked.kinds()
    async with aiohttp.ClientSession() as scanner:  # no cookies kept, as a mail filter
        for link in checked.links.values():
            async with scanner.get(link) as r:
                assert r.status == 200
                assert r.headers["Cache-Control"] == "no-store"
                assert r.headers["Referrer-Policy"] == "no-referrer"
            async with scanner.get(f"{checked.base}/return/b") as r:
                assert r.status == 401  # no session: nothing to show, nothing changed
    # A scanner that keeps cookies sees the page, and the page changes nothing either.
    async with browser_session() as client:
        await page_fields(client, checked.base, checked.links["Still a problem"])
    assert await checked.kinds() == before
    assert await checked.state() == "acknowledged"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (CI installs it)")
async def test_the_reporter_presses_still_a_problem_in_a_browser_and_the_team_is_told(
    checked: CheckWorld,
) -> None:
    from playwright.async_api import async_playwright

    [mail] = [m for m in checked.inbox.to("asha@example.org") if "still a problem" in m["Subject"]]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.set_content(text_of(mail, "html"))  # the email as a webmail shows it
            async with page.expect_navigation(url="**/return/b"):
                await page.click("a:has-text('Still a problem')")
            assert "/t/" not in page.url  # the token is out of the address bar
            assert await page.inner_text("h1") == "Is TR-2026-12-0001 still a problem?"
            await assert_accessible(page)
            assert "reopened" not in await checked.kinds()  # opening the page changed nothing
            await page.click("button:has-text('Still a problem')")
            await page.wait_for_selector(".answer")
            assert "still a problem" in await page.inner_text(".answer")
            await assert_accessible(page)
        finally:
            await browser.close()
    assert (await checked.kinds()).count("reopened") == 1
    assert await checked.state() == "open"  # to be acknowledged again

    def told() -> bool:
        thread = checked.slack.thread("C0COHESION", checked.post.ts)
        return any("still a problem" in m.text for m in thread)

    await until(told)


async def test_a_replayed_post_changes_nothing_and_says_it_was_already_recorded(
    checked: CheckWorld,
) -> None:
    sorted_ = ButtonAction(Kind.SORTED, checked.action_id).encode()
    async with browser_session() as client:
        csrf, once = await page_fields(client, checked.base, checked.links["Sorted now, thanks"])
        fields = {"_csrf": csrf, "_once": once, "choice": sorted_}
        async with client.post(f"{checked.base}/return/b", data=fields) as r:
            assert r.status == 200
            assert "sorted" in await r.text()
        async with client.post(f"{checked.base}/return/b", data=fields) as r:
            assert r.status == 409
            assert "Your answer was already recorded" in await r.text()
        # Without the CSRF token, or with a button the page did not offer: refused.
        async with client.post(f"{checked.base}/return/b", data={**fields, "_csrf": "x"}) as r:
            assert r.status == 403
        other = ButtonAction(Kind.PACT_CANCELLED, 1).encode()
        async with client.post(
            f"{checked.base}/return/b", data={**fields, "_once": "new", "choice": other}
        ) as r:
            assert r.status == 400
    assert (await checked.kinds()).count("reporter_sorted") == 1


async def test_someone_elses_token_is_refused_and_changes_nothing(checked: CheckWorld) -> None:
    """Yusuf's own (signed) token for the button of Asha's check: not his report."""
    web_buttons = checked.world.services.web_buttons
    assert web_buttons is not None
    yusuf = await checked.person_id("yusuf@example.org")
    still = ButtonAction(Kind.STILL, checked.action_id).encode()
    link = web_buttons.url(yusuf, still, checked.clock.now() + timedelta(days=1))
    before = await checked.kinds()
    async with browser_session() as client, client.get(link) as r:
        assert r.status == 403
        assert "This link is not valid" in await r.text()
    assert await checked.kinds() == before


async def test_a_browser_signed_in_for_someone_else_is_refused_the_link(
    checked: CheckWorld,
) -> None:
    from bot.returns.web import WebRefused

    web_buttons = checked.world.services.web_buttons
    assert web_buttons is not None
    yusuf = await checked.person_id("yusuf@example.org")
    token = checked.links["Still a problem"].rsplit("/", 1)[1]
    with pytest.raises(WebRefused) as refused:
        await web_buttons.open_link(token, {yusuf})
    assert refused.value.title == "This link is for someone else"


async def test_a_tampered_or_expired_link_gets_a_clear_page(checked: CheckWorld) -> None:
    link = checked.links["Still a problem"]
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    async with browser_session() as client, client.get(tampered) as r:
        assert r.status == 400
        assert "This link is not valid" in await r.text()
    checked.clock.advance(timedelta(days=28, minutes=1))  # web.button_link_days
    async with browser_session() as client, client.get(link) as r:
        assert r.status == 410
        assert "This link has expired" in await r.text()
    assert "reopened" not in await checked.kinds()


async def test_a_check_for_an_action_closed_meanwhile_says_so_and_changes_nothing(
    checked: CheckWorld,
) -> None:
    services = checked.world.services
    still = ButtonAction(Kind.STILL, checked.action_id).encode()
    async with browser_session() as client:
        csrf, once = await page_fields(client, checked.base, checked.links["Still a problem"])
        async with services.db.uow() as uow:
            action = await uow.actions.get(checked.action_id)
            assert action is not None
            version = action.version
        await services.actions.close(
            Officer("U0JANE"), checked.action_id, version, "resolved", "Painted over"
        )
        # The page loaded before the close: the core's answer says it is closed.
        fields = {"_csrf": csrf, "_once": once, "choice": still}
        async with client.post(f"{checked.base}/return/b", data=fields) as r:
            assert "TR-2026-12-0001 is already closed" in await r.text()
        # The link opened now: no buttons, just the news.
        async with client.get(checked.links["Still a problem"]) as r:
            assert r.status == 200
        async with client.get(f"{checked.base}/return/b") as r:
            page = await r.text()
            assert "TR-2026-12-0001 is closed" in page and 'name="choice"' not in page
    assert "reopened" not in await checked.kinds()
    assert await checked.state() == "closed"


@dataclass
class ChairWorld:
    """Chris chairs the Heath Town PACT meeting of 10 December and has no chat app: the
    meeting has ended and the prompt ("How did it go?") has been emailed to him."""

    world: Any  # tests.web_helpers.WebWorld
    meeting_id: int
    links: dict[str, str]  # button label -> the link in the email
    plain: str  # the email's plain text

    async def meeting(self) -> Any:
        async with self.world.services.db.uow() as uow:
            return await uow.pact.get_meeting(self.meeting_id)


@asynccontextmanager
async def chair_prompted(
    db_url: str, clock: FakeClock, inbox: Inbox, **config: Any
) -> AsyncIterator[ChairWorld]:
    from bot.delivery.outbox import OutboxDispatcher, RateLimits
    from handlers.email import EmailMessenger
    from tests.helpers import PACT_NEIGHBOURHOODS
    from tests.web_helpers import web_world

    email = {"host": "127.0.0.1", "port": inbox.port, "security": "none"}
    async with web_world(db_url, clock, email=email, pact=PACT_NEIGHBOURHOODS, **config) as world:
        services = world.services
        await services.people.import_csv(
            "name,role,wards,organisation,email,channel\n"
            "Chris Chair,community_leader,Heath Town,Residents,chris@example.org,email\n"
            "Dan Partner,officer,Heath Town,Police,dan@example.org,email\n",
            source="more.csv",
            actor="t",
        )
        meeting = await services.pact.schedule(
            neighbourhood="heath-town", on="2026-12-10", at="18:30", venue="Heath Town Library",
            format="in_person", chair_email="chris@example.org", actor="t",
        )  # fmt: skip
        clock.set(datetime(2026, 12, 10, 21, 0, tzinfo=UTC))  # the meeting has ended
        await services.pact.tick()
        outbox = OutboxDispatcher(
            services.db.uow,
            {"email": EmailMessenger(services.config, services.web_buttons)},
            {"email": RateLimits(100.0, 100.0, 2)},
        )
        await outbox.drain()
        [prompt] = [m for m in inbox.to("chris@example.org") if "How did" in str(m["Subject"])]
        plain = text_of(prompt, "plain")
        links = dict(
            re.findall(r"(It was cancelled|Record the meeting) <(http://\S+/b/t/[^\s<>]+)>", plain)
        )
        assert meeting.id is not None
        yield ChairWorld(world, meeting.id, links, plain)


async def test_a_pact_chair_without_a_chat_app_says_it_was_cancelled_from_the_email(
    db_url: str, clock: FakeClock, inbox: Inbox
) -> None:
    """The chair's prompt by email: "It was cancelled" is a link (the same core call as the
    chat button); so is "Record the meeting", in words true whichever chat app he uses."""
    async with chair_prompted(db_url, clock, inbox) as chair:
        assert set(chair.links) == {"It was cancelled", "Record the meeting"}
        assert "Telegram" not in chair.plain and "Slack" not in chair.plain
        base = chair.world.base
        async with browser_session() as client:
            async with client.get(chair.links["It was cancelled"]) as r:
                assert r.status == 200
            async with client.get(f"{base}/return/b") as r:
                page = await r.text()
            assert "Was the Heath Town PACT meeting of" in page
            fields = {
                "_csrf": hidden_field(page, "_csrf"),
                "_once": hidden_field(page, "_once"),
                "choice": ButtonAction(Kind.PACT_CANCELLED, chair.meeting_id).encode(),
            }
            async with client.post(f"{base}/return/b", data=fields) as r:
                assert "was cancelled" in await r.text()
        stored = await chair.meeting()
        assert stored is not None and stored.status == "cancelled"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (CI installs it)")
async def test_a_pact_chair_records_the_meeting_on_the_web(
    db_url: str, clock: FakeClock, inbox: Inbox
) -> None:
    """ "Record the meeting" from the email opens the record as one form in the browser: wrong
    numbers are shown by field and store nothing; the corrected record is stored once (the
    same checks as chat and Slack), a replayed POST changes nothing, and the form cannot be
    used again."""
    from playwright.async_api import async_playwright

    from tests.test_actions import ROUTING, TEAMS

    async with chair_prompted(db_url, clock, inbox, teams=TEAMS, routing=ROUTING) as chair:
        base = chair.world.base
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = await (await browser.new_context()).new_page()
                async with page.expect_navigation(url="**/return/b"):
                    await page.goto(chair.links["Record the meeting"])
                assert await page.inner_text("h1") == "Record the Heath Town PACT meeting"
                await assert_accessible(page)
                await page.fill("#f-public", "12")
                await page.fill("#f-new", "3")
                await page.check("label:has-text('Dan Partner')")
                await page.fill("#f-priority_1", "Street lighting on Wednesfield Road")
                await page.click("button:has-text('Record the meeting')")  # no owner chosen
                await page.wait_for_selector(".error-summary")
                summary = await page.inner_text(".error-summary")
                assert "Choose the team that owns this priority" in summary
                # What was typed and ticked is kept.
                assert await page.input_value("#f-public") == "12"
                assert await page.get_by_label("Dan Partner").is_checked()
                await assert_accessible(page)
                await page.select_option("#f-owner_1", "cohesion")
                await page.fill("#f-new", "15")  # more new attendees than attendees
                await page.click("button:has-text('Record the meeting')")
                await page.wait_for_selector(".error-summary")
                summary = await page.inner_text(".error-summary")
                assert "cannot be more than the members of the public" in summary
                assert await page.get_attribute("#f-new", "aria-invalid") == "true"
                assert (await chair.meeting()).status == "scheduled"  # nothing stored
                await page.fill("#f-new", "3")
                form = await page.content()
                await page.click("button:has-text('Record the meeting')")
                await page.wait_for_selector(".answer")
                done = await page.inner_text(".answer")
                assert re.search(r"12 members of the public \(3 new\), 1 of \d+ partners", done)
                await assert_accessible(page)
                cookies = await page.context.cookies()
            finally:
                await browser.close()
        stored = await chair.meeting()
        assert (stored.status, stored.public_attendees, stored.new_attendees) == ("recorded", 12, 3)
        async with chair.world.services.db.uow() as uow:
            [priority] = await uow.pact.open_priorities("heath-town")
            assert (priority.title, priority.owner_team) == (
                "Street lighting on Wednesfield Road",
                "cohesion",
            )
        # The same POST again (the form's one-time key, the session's cookie): nothing changes.
        fields = {
            "_csrf": hidden_field(form, "_csrf"),
            "_once": hidden_field(form, "_once"),
            "_record": "1",
            "public": "99",
            "new": "0",
        }
        jar = {c["name"]: c["value"] for c in cookies}
        async with aiohttp.ClientSession(cookies=jar) as client:
            async with client.post(f"{base}/return/b", data=fields) as r:
                page_text = await r.text()
        assert "already recorded" in page_text
        assert (await chair.meeting()).public_attendees == 12


def test_without_the_web_an_email_says_plainly_how_to_answer(db_url: str) -> None:
    from bot.messages import Button, MessageBuilder
    from bot.returns.web_buttons import without_web
    from handlers.email.render import plain

    config = make_config(db_url)
    message = (
        MessageBuilder()
        .line("TR-2026-12-0001 Is this still a problem?")
        .row(Button(label="Still a problem", data=ButtonAction(Kind.STILL, 7).encode()))
        .build()
    )
    text = plain(without_web(config, message))
    assert "cannot be answered by email (“Still a problem”)" in text
    assert config.partnership.contact in text
