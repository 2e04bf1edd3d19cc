"""PACT meetings advertised in public: each neighbourhood's upcoming meetings as a page and a
calendar feed, with no personal data (never the chair, invitees or attendance)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar

from bot.clock import FakeClock
from bot.domain import MeetingStatus
from tests.helpers import PACT_NEIGHBOURHOODS
from tests.test_web_browser import CHROMIUM, assert_url_accessible
from tests.web_helpers import WebWorld, web_world


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[WebWorld]:
    async with web_world(db_url, clock, pact=PACT_NEIGHBOURHOODS) as w:
        await w.services.people.import_csv(
            "name,role,wards,organisation,email\n"
            "Chris Chair,community_leader,Heath Town,Residents,chris@example.org\n"
            "PC Dan Lee,officer,all,Police,dan@example.org\n",
            source="more.csv",
            actor="t",
        )
        for on, venue in (
            ("2026-12-10", "Heath Town Library"),
            ("2027-01-14", "Old Fallings Hall"),
        ):
            await w.services.pact.schedule(
                neighbourhood="heath-town", on=on, at="18:30", venue=venue,
                format="in_person", chair_email=None, actor="t",
            )  # fmt: skip
        async with w.services.db.uow() as uow:
            meetings = await uow.pact.for_neighbourhood("heath-town")
            [january] = [m for m in meetings if m.venue == "Old Fallings Hall"]
            january.status = MeetingStatus.CANCELLED.value
            await uow.commit()
        yield w


async def test_a_neighbourhoods_page_lists_its_meetings_and_no_one_by_name(
    world: WebWorld,
) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{world.base}/pact/") as r:
            assert r.status == 200
            assert 'href="/pact/heath-town"' in await r.text()
        async with client.get(f"{world.base}/pact/heath-town") as r:
            assert r.status == 200
            page = await r.text()
            assert "Set-Cookie" not in r.headers
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "Thu 10 Dec 2026, 18:30</strong>, Heath Town Library (in person)" in page
    assert "<strong>Cancelled:</strong> <del>Thu 14 Jan 2027, 18:30, Old Fallings Hall" in page
    assert 'href="/pact/heath-town.ics"' in page
    for personal in ("Chris", "chris@", "Dan Lee", "Asha"):
        assert personal not in page


async def test_the_calendar_feed_has_every_meeting_and_marks_the_cancelled(
    world: WebWorld,
) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{world.base}/pact/heath-town.ics") as r:
            assert r.status == 200
            assert r.content_type == "text/calendar"
            body = await r.read()
        async with client.get(f"{world.base}/pact/nowhere.ics") as r:
            assert r.status == 404
        async with client.get(f"{world.base}/pact/nowhere") as r:
            assert r.status == 404
            assert "No such neighbourhood" in await r.text()
    events = Calendar.from_ical(body).walk("VEVENT")
    assert [(str(e["location"]), str(e["status"])) for e in events] == [
        ("Heath Town Library", "CONFIRMED"),
        ("Old Fallings Hall", "CANCELLED"),
    ]
    assert b"Chris" not in body and b"ORGANIZER" not in body and b"ATTENDEE" not in body
    # The TZID the times name has its VTIMEZONE (RFC 5545 3.2.19).
    feed = Calendar.from_ical(body)
    assert {str(e["dtstart"].params["TZID"]) for e in events} == {"Europe/London"}
    assert [str(tz["tzid"]) for tz in feed.walk("VTIMEZONE")] == ["Europe/London"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (CI installs it)")
async def test_the_public_page_is_accessible(world: WebWorld) -> None:
    await assert_url_accessible(f"{world.base}/pact/heath-town")


async def test_the_running_bot_serves_the_public_pages_when_configured(
    db_url: str, clock: FakeClock, fake_telegram: Any
) -> None:
    from sim.world import SimWorld, free_port
    from tests.conftest import make_config

    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        server={"port": port, "listen": "127.0.0.1"},
        web={"public_pact": True},
        pact=PACT_NEIGHBOURHOODS,
    )
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(600):  # until the server listens (it starts in the background)
                try:
                    async with client.get(f"http://127.0.0.1:{port}/pact/") as r:
                        assert r.status == 200
                        assert "Heath Town" in await r.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the server never answered")
            async with client.get(f"http://127.0.0.1:{port}/return/form") as r:
                assert r.status == 404  # no web form without TENSIONBOT_WEB_SECRET
    finally:
        await world.stop()
