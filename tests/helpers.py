"""Test helpers: the core services on a test database, a fake Slack with the teams' channels,
and the people and PACT set-up the Slack and security suites share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from bot.app import Services, build_services
from bot.clock import FakeClock
from bot.config import Config
from bot.domain import Person
from handlers.slack.who import who
from sim.fake_slack import FakeSlack
from sim.world import SimWorld, free_port
from tests.conftest import SLACK_ENV, make_config

PEOPLE_CSV = """name,role,wards,organisation,email,slack_user_id
Cllr Asha Patel,councillor,Heath Town,Council,asha@example.org,
Imam Yusuf Khan,community_leader,Park;Heath Town,Mosque,yusuf@example.org,
Rev Sarah Jones,community_leader,Blakenhall,Church,sarah@example.org,
Cllr Mark Evans,councillor,Penn,Council,mark@example.org,
Jane Smith,officer,all,Police,jane@example.org,U0JANE
"""


# Everyone the Slack and security suites need: a PACT chair, a councillor in Telegram only, the
# officers of the three teams in test_actions.TEAMS, the Prevent officer, and a councillor
# elsewhere.
SLACK_PEOPLE_CSV = """name,role,wards,organisation,email,slack_user_id
Chris Chair,community_leader,Heath Town,Residents' Association,chris@example.org,U0CHRIS
Cllr Asha Patel,councillor,Heath Town,Council,asha@example.org,
PC Dan Lee,officer,all,Police,dan@example.org,U0PC
Jane Smith,officer,all,Council,jane@example.org,U0JANE
Sam Clarke,prevent_officer,all,Council,sam@example.org,U0SAM
Cllr Mark Evans,councillor,Penn,Council,mark@example.org,U0MARK
"""
# Two PACT neighbourhoods: Heath Town (chaired by Chris, Dan invited as a partner) and Penn.
PACT_NEIGHBOURHOODS: dict[str, Any] = {
    "neighbourhoods": [
        {
            "key": "heath-town",
            "name": "Heath Town",
            "wards": ["Heath Town"],
            "partners": ["dan@example.org"],
            "chair": "chris@example.org",
        },
        {"key": "penn", "name": "Penn", "wards": ["Penn"]},
    ]
}


def slack_config(
    db_url: str, telegram_url: str, slack: FakeSlack, port: int, **sections: Any
) -> Config:
    """A test configuration with Slack on: the fake's Web API, Bolt on ``port`` (its events at
    ``http://127.0.0.1:PORT/slack/events``), and test_actions' teams and routing unless
    ``sections`` give others."""
    from tests.test_actions import ROUTING, TEAMS

    sections.setdefault("teams", TEAMS)
    sections.setdefault("routing", ROUTING)
    slack_section = {"api_base_url": slack.base_url, "port": port}
    return make_config(db_url, telegram_url, env=SLACK_ENV, slack=slack_section, **sections)


async def start_slack_world(
    db_url: str,
    fake_telegram: Any,
    slack: FakeSlack,
    clock: FakeClock,
    *,
    people: str | None = None,
    **sections: Any,
) -> tuple[SimWorld, int]:
    """The running bot with Slack on (:func:`slack_config` with ``sections``) on a free port of
    127.0.0.1, ``people`` imported if given; and that port (Slack's events at
    ``http://127.0.0.1:PORT/slack/events``). The caller stops the world."""
    port = free_port()
    config = slack_config(db_url, fake_telegram.base_url, slack, port, **sections)
    w = await SimWorld.start(config, fake_telegram, clock)
    if people is not None:
        try:
            await w.import_people(people)
        except BaseException:
            await w.stop()
            raise
    return w, port


@asynccontextmanager
async def team_slack(*extra: tuple[str, str, list[str]]) -> AsyncIterator[FakeSlack]:
    """A running fake Slack with the channels of the three teams in test_actions.TEAMS
    (cohesion, npt, prevent) and ``extra`` channels, each (id, name, members)."""
    fake = FakeSlack()
    await fake.start()
    for channel, name, members in (
        ("C0COHESION", "cohesion", ["U0JANE"]),
        ("C0NPT", "npt", ["U0PC"]),
        ("G0PREVENT", "prevent", ["U0SAM"]),
        *extra,
    ):
        fake.add_channel(channel, name, members)
    try:
        yield fake
    finally:
        await fake.stop()


@asynccontextmanager
async def services_for(db_url: str, clock: FakeClock, **config: Any) -> AsyncIterator[Services]:
    """Core services on the test database (no Telegram)."""
    services = await build_services(make_config(db_url, **config), clock=clock, migrate=False)
    try:
        yield services
    finally:
        await services.close()


class FakeMessenger:
    """A Messenger for core tests: records messages, can refuse some chats as blocked."""

    channel = "telegram"

    def __init__(self) -> None:
        from bot.messages import OutgoingMessage

        self.sent: list[tuple[str, OutgoingMessage, str | None]] = []
        self.threads: dict[int, str] = {}  # index in sent -> thread it was posted in
        self.blocked: set[str] = set()
        self.retry_after: dict[str, float] = {}
        self._next = 100

    async def send(
        self,
        recipient: str,
        message: Any,
        edit_ref: str | None = None,
        thread_ref: str | None = None,
    ) -> Any:
        from bot.ports import SendResult

        if recipient in self.blocked:
            return SendResult(ok=False, permanent=True, blocked=True, error="403 blocked")
        if recipient in self.retry_after:
            return SendResult(ok=False, retry_after=self.retry_after.pop(recipient), error="429")
        if thread_ref is not None:
            self.threads[len(self.sent)] = thread_ref
        self.sent.append((recipient, message, edit_ref))
        self._next += 1
        return SendResult(ok=True, message_ref=edit_ref or str(self._next))

    def texts_to(self, recipient: str | int) -> list[str]:
        return [m.plain_text() for r, m, _ in self.sent if r == str(recipient)]


def dispatcher_for(
    services: Services, messenger: FakeMessenger, slack: FakeMessenger | None = None
) -> Any:
    """A real outbox dispatcher sending through ``messenger`` (and ``slack`` for Slack)."""
    from bot.delivery.limits import RateLimits
    from bot.delivery.outbox import OutboxDispatcher

    messengers: dict[str, Any] = {"telegram": messenger}
    limits = {"telegram": RateLimits(1000.0, 1000.0, 8)}
    if slack is not None:
        slack.channel = "slack"
        messengers["slack"] = slack
        limits["slack"] = RateLimits(1000.0, 1000.0, 8)
    return OutboxDispatcher(
        services.db.uow,
        messengers,
        limits,
        hooks=[services.actions.on_sent],
        news_hold=timedelta(seconds=services.config.outbox.news_hold_seconds),
        business_clock=services.clock,
    )


async def link_all(services: Services, base_user_id: int = 100) -> dict[str, int]:
    """Link every imported person to a chat id; returns email -> chat id."""
    from bot.common import Sender

    chats: dict[str, int] = {}
    for i, link in enumerate(await services.people.issue_invites(actor="t")):
        chat = base_user_id + i
        token = link.url.split("start=")[1]
        await services.people.link(Sender("telegram", chat, chat, None), token)
        chats[link.person.email] = chat
    return chats


async def heath_town_meetings(
    services: Services, *, second_venue: str, second_priority: str
) -> tuple[Any, Any]:
    """Two Heath Town PACT meetings, on 10 and 30 November 2026 at 18:30. The first was
    recorded (by Chris, in Slack) with 12 people, 3 of them new, and two new priorities:
    speeding (owner npt) and ``second_priority`` (owner cohesion)."""
    from bot.pact.service import MeetingRecord

    meetings = [
        await services.pact.schedule(
            neighbourhood="heath-town",
            on=day,
            at="18:30",
            venue=venue,
            format="in_person",
            chair_email=None,
            actor="t",
            allow_past=True,
        )
        for day, venue in (("2026-11-10", "Heath Town Library"), ("2026-11-30", second_venue))
    ]
    a, b = meetings
    assert a.id is not None and b.id is not None
    record = MeetingRecord(
        public=12,
        new=3,
        partners=[],
        reviews=[],
        new_priorities=[("Speeding on Wolverhampton Road", "npt"), (second_priority, "cohesion")],
    )
    assert await services.pact.record_for(who("U0CHRIS"), a.id, record) == {}
    return a, b


def telegram_chat(person: Person) -> int | None:
    """The person's Telegram chat (where the bot writes to them there), if any."""
    address = person.address_on("telegram")
    return int(address.chat) if address is not None and address.chat is not None else None


def slack_id(person: Person) -> str | None:
    """The person's Slack user id, if any."""
    address = person.address_on("slack")
    return address.address if address is not None else None


def webhook_section(port: int) -> dict[str, Any]:
    """The ``[telegram]`` section of a bot taking its updates by webhook on 127.0.0.1:``port``."""
    return {
        "mode": "webhook",
        "webhook_url": f"http://127.0.0.1:{port}/telegram",
        "webhook_port": port,
        "webhook_listen": "127.0.0.1",
    }
