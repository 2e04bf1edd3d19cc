"""The web form's safety over plain HTTP: signed personal links exchanged for a session cookie, a
GET that never changes anything, CSRF on every POST, replays, someone else's link, expired and
tampered links, and a submission after the close. Each refusal is a clear page and changes
nothing. (The same pages in a real browser, with the accessibility check: test_web_browser.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.clock import FakeClock
from tests.web_helpers import TENSION, WEB_SECRET, WebWorld, web_world
from tests.web_helpers import browser_session as _browser
from tests.web_helpers import hidden_field as _hidden


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[WebWorld]:
    async with web_world(db_url, clock) as w:
        yield w


async def _signed_in(client: aiohttp.ClientSession, world: WebWorld, email: str) -> str:
    """Open the person's link and then the form; the form's HTML."""
    async with client.get(await world.link(email)) as r:
        assert r.status == 200
    async with client.get(world.form_url) as r:
        assert r.status == 200
        return await r.text()


async def test_opening_a_link_as_a_mail_scanner_does_changes_nothing(world: WebWorld) -> None:
    """Council mail filters fetch every link: the GET sets a session cookie and nothing else,
    and the token leaves the address bar (the page moves on to the form)."""
    link = await world.link("asha@example.org")
    before = await world.delivery("asha@example.org")
    async with aiohttp.ClientSession() as scanner, scanner.get(link) as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert "script-src" not in r.headers["Content-Security-Policy"]
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/return" in cookie
        body = await r.text()
        assert 'http-equiv="refresh" content="0; url=/return/form"' in body
    assert await world.delivery("asha@example.org") == before == "unreachable"
    assert await world.reports() == []


async def test_cookies_are_secure_unless_configured_off_for_a_local_test(
    db_url: str, clock: FakeClock
) -> None:
    async with (
        web_world(db_url, clock, secure_cookies=True) as w,
        aiohttp.ClientSession() as c,
        c.get(await w.link("asha@example.org")) as r,
    ):
        assert "Secure" in r.headers["Set-Cookie"]


async def test_a_tampered_token_gets_a_clear_page_and_no_session(world: WebWorld) -> None:
    link = await world.link("asha@example.org")
    person_part = link.rsplit("/", 1)[1]
    # Someone edits the person's id in the payload: the signature no longer matches.
    forged = link.replace(person_part, "WzIsMSwxNzk4MDAwMDAwXQ" + person_part[22:])
    async with _browser() as client:
        for url in (forged, link[:-3] + "xyz", f"{world.base}/return/t/nonsense"):
            async with client.get(url) as r:
                assert r.status == 400
                assert "This link is not valid" in await r.text()
                assert "Set-Cookie" not in r.headers
        async with client.get(world.form_url) as r:
            assert r.status == 401
            assert "Your session has ended" in await r.text()


async def test_an_expired_link_gets_a_clear_page(world: WebWorld, clock: FakeClock) -> None:
    link = await world.link("asha@example.org")
    clock.advance(timedelta(days=15))  # past 15 December 17:00, when the return closes
    async with _browser() as client, client.get(link) as r:
        assert r.status == 410
        assert "This link has expired" in await r.text()
        assert "Set-Cookie" not in r.headers


async def test_someone_elses_link_does_not_switch_who_is_answering(world: WebWorld) -> None:
    async with _browser() as client:
        await _signed_in(client, world, "asha@example.org")
        async with client.get(await world.link("yusuf@example.org")) as r:
            assert r.status == 403
            assert "This link is for someone else" in await r.text()
            assert "Set-Cookie" not in r.headers
        async with client.get(world.form_url) as r:
            assert "Hello Cllr Asha Patel" in await r.text()


async def test_a_post_without_the_sessions_csrf_token_changes_nothing(world: WebWorld) -> None:
    async with _browser() as asha, _browser() as yusuf:
        yusufs_form = await _signed_in(yusuf, world, "yusuf@example.org")
        await _signed_in(asha, world, "asha@example.org")
        for token in ("", "forged", _hidden(yusufs_form, "_csrf")):
            async with asha.post(
                f"{world.base}/return/nil", data={"_csrf": token, "_once": "x"}
            ) as r:
                assert r.status == 403
                assert "This page has expired" in await r.text()
    async with _browser() as stranger:
        async with stranger.post(
            f"{world.base}/return/nil", data={"_csrf": "x", "_once": "x"}
        ) as r:
            assert r.status == 401
    assert await world.delivery("asha@example.org") == "unreachable"
    assert await world.delivery("yusuf@example.org") == "unreachable"


async def test_a_replayed_submission_makes_one_report(world: WebWorld) -> None:
    async with _browser() as client:
        html = await _signed_in(client, world, "asha@example.org")
        fields = {
            **TENSION,
            "_csrf": _hidden(html, "_csrf"),
            "_once": _hidden(html, "_once", "review"),
        }
        async with client.post(f"{world.base}/return/review", data=fields) as r:
            assert r.status == 200
            assert "Check your answers" in await r.text()
        async with client.post(f"{world.base}/return/submit", data=fields) as r:
            assert r.status == 200  # after the redirect to the form
            assert "Your reference is" in await r.text()
        async with client.post(f"{world.base}/return/submit", data=fields) as r:
            assert r.status == 409
            assert "nothing was changed" in await r.text()
    reports = await world.reports()
    assert [r.reference for r in reports] == ["TR-2026-12-0001"]
    assert await world.delivery("asha@example.org") == "responded"


async def test_a_replayed_nil_post_is_refused(world: WebWorld) -> None:
    async with _browser() as client:
        html = await _signed_in(client, world, "mark@example.org")
        fields = {"_csrf": _hidden(html, "_csrf"), "_once": _hidden(html, "_once", "nil")}
        async with client.post(f"{world.base}/return/nil", data=fields) as r:
            assert "Your nil return is recorded" in await r.text()
        async with client.post(f"{world.base}/return/nil", data=fields) as r:
            assert r.status == 409
            assert "This form was already sent" in await r.text()
    assert await world.delivery("mark@example.org") == "nil"


async def test_a_submission_after_the_close_changes_nothing(
    world: WebWorld, clock: FakeClock
) -> None:
    async with _browser() as client:
        html = await _signed_in(client, world, "sarah@example.org")
        fields = {
            **TENSION,
            "_csrf": _hidden(html, "_csrf"),
            "_once": _hidden(html, "_once", "review"),
        }
        # The session outlives neither its half hour nor the return: keep it alive until just
        # before the close by opening the link again, then post after the close.
        clock.set(clock.now().replace(day=15, hour=16, minute=50))
        async with client.get(await world.link("sarah@example.org")) as r:
            assert r.status == 200
        html = await (await client.get(world.form_url)).text()
        fields["_csrf"] = _hidden(html, "_csrf")
        clock.advance(timedelta(minutes=11))
        await world.services.campaigns.tick()  # closes the return
        async with client.post(f"{world.base}/return/submit", data=fields) as r:
            assert r.status in (401, 410)
            assert "nothing was changed" in (await r.text()).casefold()
    assert await world.reports() == []
    assert await world.delivery("sarah@example.org") == "unreachable"


async def test_a_session_open_at_the_close_is_refused_with_the_closed_page(
    world: WebWorld, clock: FakeClock
) -> None:
    """The session cookie is still live (the clock is the only thing that moved), but the
    return was closed early by the scheduler's tick: the closed page, nothing changed."""
    async with _browser() as client:
        html = await _signed_in(client, world, "sarah@example.org")
        async with world.services.db.uow() as uow:
            campaign = await uow.campaigns.by_key(world.campaign_key)
            assert campaign is not None
            campaign.status = "closed"
            await uow.commit()
        fields = {"_csrf": _hidden(html, "_csrf"), "_once": _hidden(html, "_once", "nil")}
        async with client.post(f"{world.base}/return/nil", data=fields) as r:
            assert r.status == 410
            assert "This return has closed" in await r.text()
    assert await world.delivery("sarah@example.org") == "unreachable"


async def test_an_invalid_answer_shows_the_error_summary_linked_to_its_field(
    world: WebWorld,
) -> None:
    async with _browser() as client:
        html = await _signed_in(client, world, "asha@example.org")
        fields = {**TENSION, "description": "short", "category": "not-a-category"}
        fields["_csrf"] = _hidden(html, "_csrf")
        async with client.post(f"{world.base}/return/review", data=fields) as r:
            assert r.status == 400
            page = await r.text()
    assert "<title>Error: " in page
    assert 'href="#f-description"' in page and 'href="#f-category-0"' in page
    assert 'id="f-description"' in page and 'id="f-category-0"' in page
    assert 'aria-invalid="true"' in page
    # What was typed is kept (escaped), so nothing has to be typed again.
    assert ">short</textarea>" in page
    assert await world.reports() == []


async def test_an_admin_prints_a_persons_link_and_it_opens_their_form(
    world: WebWorld, tmp_path: Path, db_url: str
) -> None:
    """`tensionbot campaign web-link EMAIL` gives the same personal link the email carries."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[telegram]\nbot_username = "swp_bot"\n'
        f'[web]\nbase_url = "{world.base}"\nsecure_cookies = false\n'
    )
    env = {"TENSIONBOT_WEB_SECRET": WEB_SECRET}
    args = ["--config", str(config), "campaign", "web-link"]
    # The CLI runs its own event loop: give it a thread of its own.
    result = await asyncio.to_thread(
        CliRunner().invoke, main, [*args, "asha@example.org", "--period", "2026-12"], env=env
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith(f"{world.base}/return/t/")
    async with _browser() as client:
        async with client.get(link) as r:
            assert r.status == 200
        async with client.get(world.form_url) as r:
            assert "Hello Cllr Asha Patel" in await r.text()
    off = await asyncio.to_thread(CliRunner().invoke, main, [*args, "asha@example.org"])
    assert off.exit_code == 2 and "TENSIONBOT_WEB_SECRET" in off.output
    nobody = await asyncio.to_thread(
        CliRunner().invoke, main, [*args, "nobody@example.org"], env=env
    )
    assert nobody.exit_code == 2 and "no person" in nobody.output
