"""PACT meetings advertised in public channels: each meeting scheduled, moved or cancelled is
announced once in the public Telegram channel and the public Slack channel (through the outbox,
the real python-telegram-bot and slack_sdk against the fake servers), a re-import that changes
nothing announces nothing, and a recorded meeting's "you said, we did" is posted once and shown on
the public page, never naming anyone. A channel the bot cannot post in is reported to the
admins, as the platforms refuse it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.config import ConfigError, delivery_problem
from bot.domain import PactMeeting
from bot.pact.service import MeetingRecord, PactError
from handlers.slack.who import who
from sim.fake_slack import FakeSlack, SlackMessage
from sim.fake_telegram import SentMessage
from sim.scripts import until
from sim.world import SimWorld
from tests.conftest import SLACK_ENV, make_config
from tests.helpers import (
    PACT_NEIGHBOURHOODS,
    SLACK_PEOPLE_CSV,
    heath_town_meetings,
    start_slack_world,
    team_slack,
)
from tests.test_web_browser import CHROMIUM, assert_url_accessible

CHANNEL = "@swp_pact"
PUBLIC = "C0PUBLIC"
PEOPLE = SLACK_PEOPLE_CSV + "Ada Admin,admin,all,Council,ada@example.org,U0ADA\n"
# Everyone named in the set-up: none of it may reach a public channel or page.
NAMES = ("Chris", "chris@", "Asha", "Dan Lee", "U0CHRIS", "U0PC", "Jane", "Sam Clarke")
SEASON = (
    "neighbourhood,date,time,venue,format,chair_email\n"
    "heath-town,2026-12-10,18:30,{venue},in_person,\n"
    "heath-town,2026-11-05,18:30,Heath Town Library,in_person,\n"  # already held: not announced
    "heath-town,2027-06-10,18:30,Heath Town Library,in_person,\n"  # summer time: UTC+1
)
EVIL_VENUE = "Hall <b>x</b> <!channel> <@U0PC> <https://evil.example|click> & *loud* _it_"


@dataclass
class Public:
    """The running bot with public channels in fake Telegram and fake Slack."""

    w: SimWorld
    slack: FakeSlack
    telegram: Any
    port: int

    def telegram_posts(self) -> list[SentMessage]:
        return self.telegram.channel_messages(CHANNEL)  # type: ignore[no-any-return]

    def slack_posts(self, channel: str = PUBLIC) -> list[SlackMessage]:
        return self.slack.top_level(channel)

    async def posts(self, n: int) -> tuple[list[str], list[str]]:
        """Wait until each channel has ``n`` posts (and the outbox is quiet); their texts."""
        await self.w.settle()
        await until(lambda: len(self.telegram_posts()) >= n and len(self.slack_posts()) >= n)
        return (
            [m.text or "" for m in self.telegram_posts()],
            [json.dumps(m.blocks) + m.text for m in self.slack_posts()],
        )

    async def schedule(self, on: str, venue: str = "Heath Town Library") -> PactMeeting:
        return await self.w.services.pact.schedule(
            neighbourhood="heath-town", on=on, at="18:30", venue=venue,
            format="in_person", chair_email=None, actor="t",
        )  # fmt: skip

    async def page(self, path: str) -> str:
        async with aiohttp.ClientSession() as client:
            for _ in range(600):  # until the server listens (it starts in the background)
                try:
                    async with client.get(f"http://127.0.0.1:{self.port}{path}") as r:
                        assert r.status == 200
                        return await r.text()
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        raise AssertionError("the server never answered")


async def _start(
    db_url: str,
    fake_telegram: Any,
    slack: FakeSlack,
    clock: FakeClock,
    *,
    telegram_channel: str = CHANNEL,
    slack_channel: str = PUBLIC,
) -> Public:
    w, port = await start_slack_world(
        db_url,
        fake_telegram,
        slack,
        clock,
        people=PEOPLE,
        pact={
            **PACT_NEIGHBOURHOODS,
            "public": {"telegram_channel": telegram_channel, "slack_channel": slack_channel},
        },
        web={"public_pact": True, "base_url": "https://swp.example.org"},
    )
    return Public(w, slack, fake_telegram, port)  # one HTTP server: Slack's and the pages


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack((PUBLIC, "pact-public", [])) as fake:
        fake.add_channel("C0NOTIN", "elsewhere", [], bot_is_member=False)
        yield fake


@pytest.fixture
async def public(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[Public]:
    # The clock: Tuesday 1 December 2026, 09:30.
    fake_telegram.channel(CHANNEL, title="SWP PACT meetings")
    p = await _start(db_url, fake_telegram, slack, clock)
    try:
        yield p
    finally:
        await p.w.stop()


def _no_names(*texts: str) -> None:
    for text in texts:
        for name in NAMES:
            assert name not in text, name


# --------------------------------------------------------------------- announcements


async def test_a_scheduled_meeting_is_announced_once_in_each_public_channel(
    public: Public,
) -> None:
    await public.schedule("2026-12-10")
    [telegram], [slack] = await public.posts(1)
    for text in (telegram, slack):
        assert "Heath Town PACT meeting" in text
        assert "Thu 10 Dec 2026, 18:30 at Heath Town Library (in person)" in text
        assert "https://swp.example.org/pact/heath-town" in text
    _no_names(telegram, slack)
    await public.w.services.pact.tick()
    await public.w.settle()
    assert (len(public.telegram_posts()), len(public.slack_posts())) == (1, 1)


async def test_a_chair_scheduling_in_chat_is_announced(public: Public) -> None:
    chris = await public.w.link("chris@example.org", 2001, "Chris")
    await chris.send_command("/schedule", "2026-12-10 18:30 online Heath Town Library")
    await chris.wait_for("Scheduled: Heath Town PACT meeting")
    telegram, slack = await public.posts(1)
    for text in (telegram[0], slack[0]):
        assert "Thu 10 Dec 2026, 18:30 at Heath Town Library (online)" in text
    _no_names(*telegram, *slack)


async def test_a_moved_meeting_is_announced_once_and_an_unchanged_reimport_not_at_all(
    public: Public,
) -> None:
    pact = public.w.services.pact
    first = await pact.import_csv(SEASON.format(venue="Heath Town Library"), source="s", actor="t")
    assert (first.created, first.updated) == (3, 0)
    telegram, _ = await public.posts(2)  # December's and June's: November's is over
    assert "Thu 10 Jun 2027, 18:30" in telegram[1]
    again = await pact.import_csv(SEASON.format(venue="Heath Town Library"), source="s", actor="t")
    assert again.unchanged == 3
    await public.w.settle()
    assert (len(public.telegram_posts()), len(public.slack_posts())) == (2, 2)
    moved = await pact.import_csv(SEASON.format(venue="Old Fallings Hall"), source="s", actor="t")
    assert moved.updated == 1
    telegram, slack = await public.posts(3)
    for text in (telegram[2], slack[2]):
        assert "Changed: Heath Town PACT meeting" in text
        assert "Now Thu 10 Dec 2026, 18:30 at Old Fallings Hall (in person)" in text
        assert "It was Thu 10 Dec 2026, 18:30 at Heath Town Library" in text
    await pact.import_csv(SEASON.format(venue="Old Fallings Hall"), source="s", actor="t")
    # Only the length of June's meeting changes: nothing public, nothing announced.
    longer = await pact.import_csv(
        "neighbourhood,date,time,venue,format,chair_email,duration_minutes\n"
        "heath-town,2027-06-10,18:30,Heath Town Library,in_person,,120\n",
        source="s",
        actor="t",
    )
    assert longer.updated == 1
    await public.w.settle()
    assert (len(public.telegram_posts()), len(public.slack_posts())) == (3, 3)


async def test_a_cancelled_meeting_is_announced(public: Public) -> None:
    m = await public.schedule("2026-12-10")
    await public.posts(1)
    assert m.id is not None
    await public.w.services.pact.cancelled_by(who("U0CHRIS"), m.id)
    await public.w.services.pact.cancelled_by(who("U0CHRIS"), m.id)  # a second tap: nothing new
    telegram, slack = await public.posts(2)
    for text in (telegram[1], slack[1]):
        assert "Cancelled: Heath Town PACT meeting" in text
        assert "Thu 10 Dec 2026, 18:30 at Heath Town Library" in text
    await public.w.settle()
    assert (len(public.telegram_posts()), len(public.slack_posts())) == (2, 2)
    page = await public.page("/pact/heath-town")
    assert "<strong>Cancelled:</strong> <del>Thu 10 Dec 2026, 18:30" in page


async def test_a_cancelled_meeting_reimported_is_not_announced_again(public: Public) -> None:
    """A season re-imported with a cancelled meeting's venue corrected: no second "Cancelled"
    post (the meeting stays cancelled, and the re-import leaves it alone)."""
    pact = public.w.services.pact
    m = await public.schedule("2026-12-10")
    assert m.id is not None
    await public.posts(1)
    await pact.cancel(m.id, actor="admin")
    await public.posts(2)
    result = await pact.import_csv(
        SEASON.format(venue="Heath Town Library Room 2"), source="s", actor="t"
    )
    await public.w.settle()
    telegram = [m.text or "" for m in public.telegram_posts()]
    slack = [json.dumps(m.blocks) + m.text for m in public.slack_posts()]
    assert sum("Cancelled" in t for t in telegram) == 1
    assert sum("Cancelled" in t for t in slack) == 1
    assert not any("Room 2" in t for t in telegram + slack)
    assert result.unchanged == 1  # the cancelled meeting (the other two are new)


async def test_a_meeting_moved_or_called_off_by_an_admin_is_announced(public: Public) -> None:
    """``tensionbot pact move`` and ``pact cancel`` (the service calls behind them)."""
    pact = public.w.services.pact
    m = await public.schedule("2026-12-10")
    assert m.id is not None
    await public.posts(1)
    await pact.move(m.id, at="19:00", format="online", actor="admin")
    telegram, slack = await public.posts(2)
    for text in (telegram[1], slack[1]):
        assert "Now Thu 10 Dec 2026, 19:00 at Heath Town Library (online)" in text
        assert "It was Thu 10 Dec 2026, 18:30 at Heath Town Library (in person)" in text
    await pact.cancel(m.id, actor="admin")
    telegram, slack = await public.posts(3)
    assert "Cancelled: Heath Town PACT meeting" in telegram[2]
    assert "Cancelled: Heath Town PACT meeting" in slack[2]
    with pytest.raises(PactError, match="is cancelled"):
        await pact.move(m.id, venue="Old Fallings Hall", actor="admin")
    past = await pact.schedule(
        neighbourhood="penn", on="2026-11-20", at="18:30", venue="Penn Library",
        format="in_person", chair_email="mark@example.org", actor="t", allow_past=True,
    )  # fmt: skip
    assert past.id is not None
    with pytest.raises(PactError, match="has already started"):
        await pact.cancel(past.id, actor="admin")
    await public.w.settle()
    assert (len(public.telegram_posts()), len(public.slack_posts())) == (3, 3)
    page = await public.page("/pact/heath-town")
    assert "<strong>Cancelled:</strong> <del>Thu 10 Dec 2026, 19:00" in page


async def test_venue_text_cannot_inject_markup_or_mentions(public: Public) -> None:
    await public.schedule("2026-12-10", venue=EVIL_VENUE)
    await public.posts(1)
    [telegram] = public.telegram_posts()
    assert telegram.parse_mode == "HTML"
    assert "<b>x</b>" not in (telegram.text or "")
    assert "&lt;b&gt;x&lt;/b&gt; &lt;!channel&gt; &lt;@U0PC&gt;" in (telegram.text or "")
    [slack] = public.slack_posts()
    rendered = json.dumps(slack.blocks) + slack.text
    assert "<!channel>" not in rendered and "<@U0PC>" not in rendered
    assert "<https://evil.example|click>" not in rendered
    assert "&lt;!channel&gt;" in rendered


# --------------------------------------------------------------------- you said, we did


async def test_a_recorded_meeting_says_what_was_done_in_public_and_names_no_one(
    public: Public,
) -> None:
    w = public.w
    _, b = await heath_town_meetings(
        w.services, second_venue="Heath Town Library", second_priority="Litter behind the shops"
    )
    assert b.id is not None
    # Meeting A (recorded by Chris in the set-up) set two priorities: its post says so.
    telegram, slack = await public.posts(1)
    for text in (telegram[0], slack[0]):
        assert "Heath Town PACT meeting, Tue 10 Nov 2026: you said, we did" in text
        assert "Speeding on Wolverhampton Road" in text
    async with w.services.db.uow() as uow:
        speeding, litter = await uow.pact.open_priorities("heath-town")
    assert speeding.id is not None and litter.id is not None
    record = MeetingRecord(
        public=14,
        new=2,
        partners=[],
        reviews=[
            (speeding.id, "closed", "Speed checks on six evenings; 41 drivers stopped."),
            (litter.id, "carried", "Alley cleared once; it came back."),
        ],
        new_priorities=[("Street lights out on Tudor Road", "cohesion")],
    )
    assert await w.services.pact.record_for(who("U0CHRIS"), b.id, record) == {}
    telegram, slack = await public.posts(2)
    for text in (telegram[1], slack[1]):
        assert "Heath Town PACT meeting, Mon 30 Nov 2026: you said, we did" in text
        assert "Speeding on Wolverhampton Road" in text
        assert "Speed checks on six evenings; 41 drivers stopped. (done)" in text
        assert "Alley cleared once; it came back. (carried to the next meeting)" in text
        assert "Street lights out on Tudor Road" in text
        assert "14" not in text  # no attendance
    _no_names(*telegram, *slack)
    # Recorded again (a second submission, a correction): refused, and nothing posted twice.
    assert await w.services.pact.record_for(who("U0CHRIS"), b.id, record) != {}
    await w.settle()
    assert (len(public.telegram_posts()), len(public.slack_posts())) == (2, 2)
    page = await public.page("/pact/heath-town")
    assert "You said, we did" in page
    assert "The meeting of Mon 30 Nov 2026, 18:30" in page
    assert "Speed checks on six evenings; 41 drivers stopped. (done)" in page
    assert "Alley cleared once; it came back. (carried to the next meeting)" in page
    assert "<strong>New priority:</strong> Street lights out on Tudor Road" in page
    _no_names(page)


async def test_a_long_you_said_we_did_is_posted_whole_in_several_posts(public: Public) -> None:
    """Four priorities reviewed with what was done at full length (1,000 characters each) do not
    fit one Telegram message (4,096): the "you said, we did" is split into several posts, each
    its own outbox row, so no priority is cut off and the page link still goes out."""
    w = public.w
    _, b = await heath_town_meetings(
        w.services, second_venue="Heath Town Library", second_priority="Litter behind the shops"
    )
    middle = await w.services.pact.schedule(
        neighbourhood="heath-town", on="2026-11-20", at="18:30", venue="Heath Town Library",
        format="in_person", chair_email=None, actor="t", allow_past=True,
    )  # fmt: skip
    assert b.id is not None and middle.id is not None
    async with w.services.db.uow() as uow:
        first_two = await uow.pact.open_priorities("heath-town")
    carried = MeetingRecord(
        public=9,
        new=1,
        partners=[],
        reviews=[(p.id or 0, "carried", "Started.") for p in first_two],
        new_priorities=[("Parking on the verge", "npt"), ("Graffiti on the underpass", "cohesion")],
    )
    assert await w.services.pact.record_for(who("U0CHRIS"), middle.id, carried) == {}
    await public.posts(2)
    async with w.services.db.uow() as uow:
        four = await uow.pact.open_priorities("heath-town")
    assert len(four) == 4

    def done(n: int) -> str:
        end = f" Outcome {n} ends here."
        return ("Patrols and letters " * 60)[: 1000 - len(end)] + end

    record = MeetingRecord(
        public=14,
        new=2,
        partners=[],
        reviews=[(p.id or 0, "closed", done(n)) for n, p in enumerate(four)],
        new_priorities=[],
    )
    assert await w.services.pact.record_for(who("U0CHRIS"), b.id, record) == {}
    await w.settle()
    telegram = [m.text or "" for m in public.telegram_posts()][2:]
    slack = [json.dumps(m.blocks) + m.text for m in public.slack_posts()][2:]
    for posts in (telegram, slack):
        assert len(posts) >= 2
        text = "\n".join(posts)
        for n, p in enumerate(four):
            assert p.title in text
            assert f"Outcome {n} ends here. (done)" in text  # each outcome whole
        assert "https://swp.example.org" in posts[-1]
        assert all("Mon 30 Nov 2026: you said, we did" in post for post in posts)
    assert all(len(t) <= 4096 and not t.endswith("…") for t in telegram)
    # Exactly once: recorded again is refused, and nothing more is posted.
    assert await w.services.pact.record_for(who("U0CHRIS"), b.id, record) != {}
    await w.settle()
    assert len(public.telegram_posts()) == 2 + len(telegram)


# --------------------------------------------------------------------- refusals


async def test_channels_the_bot_cannot_post_in_are_reported_to_the_admins(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> None:
    """Telegram refuses a channel the bot is not in (403), Slack one it has not joined
    (not_in_channel): the admins are told, and the announcement is kept (Slack's is retried)."""
    fake_telegram.channel(CHANNEL, bot_status="left")
    p = await _start(db_url, fake_telegram, slack, clock, slack_channel="C0NOTIN")
    try:
        await p.schedule("2026-12-10")
        alerts = await until(
            lambda: (
                [
                    m.text
                    for m in p.slack.dm("U0ADA")
                    if "PACT announcement" in m.text and "@swp_pact" in m.text
                ]
                and [m.text for m in p.slack.dm("U0ADA") if "C0NOTIN" in m.text]
                and [m.text for m in p.slack.dm("U0ADA") if "PACT announcement" in m.text]
            )
        )
        text = "\n".join(alerts)
        # Each alert says what to do in that platform's own words (from its handler), and only
        # that platform's.
        [tg] = [m.text for m in p.slack.dm("U0ADA") if "@swp_pact" in m.text]
        assert "as an administrator allowed to post" in tg and "/invite" not in tg
        [sl] = [m.text for m in p.slack.dm("U0ADA") if "C0NOTIN" in m.text]
        assert "/invite" in sl and "administrator" not in sl
        assert "403 Forbidden: bot is not a member of the channel chat" in text
        assert "given up" in text
        assert "not_in_channel" in text and "retried" in text
        assert p.telegram_posts() == [] and p.slack_posts("C0NOTIN") == []
        async with p.w.services.db.engine.connect() as conn:
            from sqlalchemy import text as sql

            rows = (
                await conn.execute(
                    sql("SELECT channel, status FROM outbox WHERE purpose = 'pact_public'")
                )
            ).all()
        assert sorted((str(c), str(s)) for c, s in rows) == [
            ("slack", "pending"),
            ("telegram", "failed"),
        ]
    finally:
        await p.w.stop()


async def test_an_unknown_telegram_channel_is_chat_not_found(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> None:
    p = await _start(db_url, fake_telegram, slack, clock, telegram_channel="@nobody_here")
    try:
        await p.schedule("2026-12-10")
        [alert] = await until(
            lambda: [m.text for m in p.slack.dm("U0ADA") if "@nobody_here" in m.text]
        )
        assert "400 Chat not found" in alert  # PTB drops "Bad Request: "
    finally:
        await p.w.stop()


async def test_the_fake_refuses_a_member_who_is_not_an_administrator(fake_telegram: Any) -> None:
    from telegram import Bot
    from telegram.error import BadRequest, Forbidden

    from tests.conftest import TOKEN

    fake_telegram.channel("@members_only", bot_status="member")
    fake_telegram.channel("@was_kicked", bot_status="kicked")
    async with Bot(TOKEN, base_url=f"{fake_telegram.base_url}/bot") as bot:
        with pytest.raises(BadRequest, match="Need administrator rights in the channel chat"):
            await bot.send_message("@members_only", "hello")
        with pytest.raises(Forbidden, match="bot was kicked from the channel chat"):
            await bot.send_message("@was_kicked", "hello")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(-1009999999999, "hello")
        fake_telegram.channel("@members_only", bot_status="administrator")
        sent = await bot.send_message("@members_only", "hello")
        assert sent.chat.type == "channel" and sent.chat.username == "members_only"
    assert [m.text for m in fake_telegram.channel_messages("@members_only")] == ["hello"]


def test_public_channels_are_checked_naming_the_key(db_url: str) -> None:
    with pytest.raises(ConfigError) as bad:
        make_config(db_url, pact={"public": {"telegram_channel": "swp", "slack_channel": "#pact"}})
    message = str(bad.value)
    assert "pact.public.telegram_channel: not a Telegram channel" in message
    assert "pact.public.slack_channel: not a Slack channel id" in message
    good_public = {"public": {"telegram_channel": "@swp_pact", "slack_channel": "C0PUBLIC"}}
    good = make_config(db_url, pact=good_public)
    assert good.pact.public.channels() == (("telegram", "@swp_pact"), ("slack", "C0PUBLIC"))
    assert make_config(db_url).pact.public.channels() == ()
    # A Slack channel with Slack off could never be posted to: `run` and `check-config` say so.
    problem = delivery_problem(good)
    assert problem is not None and "pact.public.slack_channel is set but Slack is off" in problem
    assert delivery_problem(make_config(db_url, env=SLACK_ENV, pact=good_public)) is None


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (CI installs it)")
async def test_the_page_with_you_said_we_did_is_accessible(public: Public) -> None:
    await heath_town_meetings(
        public.w.services, second_venue="Heath Town Library", second_priority="Litter"
    )
    await public.schedule("2026-12-10")
    assert "You said, we did" in await public.page("/pact/heath-town")
    await assert_url_accessible(f"http://127.0.0.1:{public.port}/pact/heath-town")
