"""The web form in a real headless browser (the system's Chromium driven by Playwright), as a
person uses it: the link clicked in a (webmail) page of another site, the form filled by
keyboard, the errors summarised and linked to their fields, the review, the reference; another
person's nil return by its button; and axe-core run in every page with no serious or critical
violation. Skipped, with the reason, where /usr/bin/chromium is missing (CI installs it)."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from tests.web_helpers import WebWorld, web_world

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: apt-get install -y chromium (CI's .ci/run installs it)",
)


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[WebWorld]:
    async with web_world(db_url, clock) as w:
        yield w


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page (WCAG 2.0-2.2 A and AA rules).

    Evaluated through the DevTools protocol, which the page's Content-Security-Policy (no
    scripts at all) does not govern; the page itself runs no script.

    Only once the page has loaded, stylesheet included: before that the buttons are unstyled
    (small) and axe rightly finds them too small to tap (a busy machine showed it)."""
    await page.wait_for_load_state("load")
    await page.evaluate("() => document.fonts.ready.then(() => true)")
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values:
                ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact,
                nodes: v.nodes.map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def assert_accessible(page: Any) -> None:
    violations = await axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)


async def assert_url_accessible(url: str) -> None:
    """:func:`assert_accessible` on the page at ``url``, in a fresh headless Chromium."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            await assert_accessible(page)
        finally:
            await browser.close()


async def open_from_mail(browser: Any, link: str) -> Any:
    """A new browser profile; the person clicks the link in a page of another site (their
    webmail), so the SameSite=Strict cookie must still reach the form."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.set_content(
        f'<html lang="en"><title>Inbox</title><main><a href="{html.escape(link)}">'
        "Open your form</a></main></html>"
    )
    async with page.expect_navigation(url="**/return/form"):
        await page.click("text=Open your form")
    return page


async def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        if await page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reachable with the Tab key")


async def test_a_community_leader_completes_the_return_by_keyboard_and_sees_the_reference(
    world: WebWorld, browser: Any
) -> None:
    page = await open_from_mail(browser, await world.link("yusuf@example.org"))
    assert "/t/" not in page.url  # the token is out of the address bar (and any history)
    assert not (await page.title()).startswith("Error")
    await assert_accessible(page)

    # Straight to "Continue" with nothing filled in: the errors, summarised and linked.
    await tab_to(page, "form[action$='/review'] button")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".error-summary")
    assert (await page.title()).startswith("Error: ")
    await assert_accessible(page)

    # Follow the summary's link to the ward by keyboard: it focuses the field.
    await tab_to(page, ".error-summary a[href='#f-ward']")
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "f-ward"
    await page.keyboard.type("Heath")  # a closed <select> picks the option typed
    assert await page.input_value("#f-ward") == "Heath Town"

    async def choose(question: str, value: str) -> None:
        # Radios by keyboard: Tab into the group, then Space on the wanted one.
        radio = f"input[name='{question}'][value='{value}']"
        await page.focus(f"input[name='{question}']:first-of-type")
        await page.focus(radio)
        await page.keyboard.press("Space")
        assert await page.is_checked(radio)

    await choose("category", "religion")
    await tab_to(page, "#f-description")
    await page.keyboard.type("Leaflets against the mosque pushed through doors")
    await choose("basis", "evidenced")
    await choose("level", "2")
    await choose("media", "social")
    await choose("already_reported", "no")
    await choose("consent_contact", "yes")
    await choose("consent_share", "no")
    await tab_to(page, "form[action$='/review'] button")
    await page.keyboard.press("Enter")

    await page.wait_for_selector("h1:has-text('Check your answers')")
    await assert_accessible(page)
    summary = await page.inner_text(".summary")
    assert "Religion or faith" in summary and "Leaflets against the mosque" in summary
    # A link scanner or a reload changes nothing: still no report.
    assert await world.reports() == []
    await tab_to(page, "form[action$='/submit'] button")
    await page.keyboard.press("Enter")

    await page.wait_for_selector(".reference")
    assert await page.inner_text(".reference") == "TR-2026-12-0001"
    await assert_accessible(page)
    reports = await world.reports()
    assert [(r.reference, r.ward, r.category) for r in reports] == [
        ("TR-2026-12-0001", "Heath Town", "religion")
    ]
    assert await world.delivery("yusuf@example.org") == "responded"


async def test_another_person_sends_a_nil_return_with_one_click(
    world: WebWorld, browser: Any
) -> None:
    page = await open_from_mail(browser, await world.link("mark@example.org"))
    await page.click("button:has-text('Nothing to report this time')")
    await page.wait_for_selector("h1:has-text('Your nil return is recorded')")
    await assert_accessible(page)
    assert await world.delivery("mark@example.org") == "nil"
    # Opening the link again shows what was recorded; the form is not offered again.
    page = await open_from_mail(browser, await world.link("mark@example.org"))
    assert "Your nil return is recorded" in await page.inner_text("h1")


async def test_refusal_pages_are_accessible(world: WebWorld, browser: Any) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(f"{world.base}/return/t/not-a-real-token")
    assert response.status == 400
    assert await page.inner_text("h1") == "This link is not valid"
    await assert_accessible(page)


async def test_the_form_reads_at_200_percent_zoom_on_a_phone(world: WebWorld, browser: Any) -> None:
    """A 320 CSS-pixel-wide viewport (a phone, or a desktop at 400%): nothing scrolls sideways."""
    context = await browser.new_context(viewport={"width": 320, "height": 640})
    page = await context.new_page()
    await page.goto(await world.link("sarah@example.org"))
    await page.wait_for_url("**/return/form")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
