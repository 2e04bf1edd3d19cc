"""Who gets what: each person's preferred channel (people CSV column ``channel``; default: the
platform they linked, else email) and ``email.fallback``: someone unreachable on their own
platform gets the form by email instead, once, and ``campaign status`` says so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.app import Services
from bot.clock import FakeClock
from bot.common import Sender
from bot.domain import Address, Person
from bot.people.importing import ImportError_
from tests.conftest import make_config
from tests.helpers import FakeMessenger, services_for
from tests.web_helpers import WebWorld, web_world

PEOPLE = """name,role,wards,organisation,email,channel
Cllr Asha Patel,councillor,Heath Town,Council,asha@example.org,telegram
Imam Yusuf Khan,community_leader,Park,Mosque,yusuf@example.org,
Rev Sarah Jones,community_leader,Blakenhall,Church,sarah@example.org,email
Cllr Mark Evans,councillor,Penn,Council,mark@example.org,
Cllr Tom Reed,councillor,Park,Council,tom@example.org,Telegram
"""
EMAIL = {"host": "127.0.0.1", "port": 9, "security": "none"}


async def _link(services: Services, email: str, chat: int) -> None:
    for link in await services.people.issue_invites(actor="t", email=email):
        token = link.url.split("start=")[1]
        await services.people.link(Sender("telegram", chat, chat, None), token)


async def _link_sarah_tom_and_block_mark(services: Services) -> None:
    """Sarah and Tom linked Telegram; Mark linked and then blocked the bot."""
    await _link(services, "sarah@example.org", 301)
    await _link(services, "tom@example.org", 302)
    await _link(services, "mark@example.org", 303)
    async with services.db.uow() as uow:
        mark = await uow.people.by_email("mark@example.org")
        assert mark is not None
        mark.blocked_at = datetime(2026, 11, 20, tzinfo=UTC)
        await uow.commit()


async def _channels(world: WebWorld) -> dict[str, list[tuple[str, str]]]:
    """Each person's queued messages of the return: [(channel, purpose)]."""
    found: dict[str, list[tuple[str, str]]] = {}
    async with world.services.db.uow() as uow:
        for person in await uow.people.all():
            addresses = [("email", person.email)]
            addresses += [(a.platform, a.chat) for a in person.addresses if a.chat is not None]
            rows = await uow.privacy.messages_to(addresses)
            found[person.email] = sorted(
                (r.channel, r.purpose) for r in rows if r.purpose in ("form", "reminder")
            )
    return found


async def _send_everything(world: WebWorld) -> None:
    """Send the outbox through recording messengers (the real email path: test_email.py)."""
    from bot.delivery.outbox import OutboxDispatcher, RateLimits

    limits = RateLimits(1000.0, 1000.0, 8)
    await OutboxDispatcher(
        world.services.db.uow,
        {"telegram": FakeMessenger(), "email": FakeMessenger()},
        {"telegram": limits, "email": limits},
    ).drain()


async def _status(world: WebWorld) -> dict[str, tuple[str, str]]:
    campaign = await world.services.campaigns.resolve(key=world.campaign_key)
    status = await world.services.campaigns.status(campaign.id or 0, actor="test")
    return {p.name: (p.outcome, p.detail) for p in status.people}


async def test_each_person_gets_the_form_on_their_channel_and_the_unreachable_by_email_once(
    db_url: str, clock: FakeClock
) -> None:
    async with web_world(
        db_url,
        clock,
        people=PEOPLE,
        before_open=_link_sarah_tom_and_block_mark,
        email={**EMAIL, "fallback": True},
    ) as world:
        await _send_everything(world)  # reminders go only to forms that were sent
        clock.set(datetime(2026, 12, 8, 9, 30, tzinfo=UTC))  # past the first reminder time
        await world.services.campaigns.tick()
        channels = await _channels(world)
        assert channels == {
            # Asha prefers Telegram but never linked: the form by email, once, no reminder.
            "asha@example.org": [("email", "form")],
            # Yusuf has no preference and no platform: email is his default, reminders too.
            "yusuf@example.org": [("email", "form"), ("email", "reminder")],
            # Sarah linked Telegram but asked for email.
            "sarah@example.org": [("email", "form"), ("email", "reminder")],
            # Mark blocked the bot on Telegram, his platform: the form by email, once.
            "mark@example.org": [("email", "form")],
            # Tom prefers Telegram ("Telegram" in the file) and linked it.
            "tom@example.org": [("telegram", "form"), ("telegram", "reminder")],
        }
        status = await _status(world)
        assert status["Cllr Asha Patel"][1] == "form sent by email instead (never linked)"
        assert status["Cllr Mark Evans"][1] == "form sent by email instead (blocked the bot)"
        assert "by email" not in status["Imam Yusuf Khan"][1]


async def test_without_the_fallback_someone_unreachable_on_their_platform_stays_unreachable(
    db_url: str, clock: FakeClock
) -> None:
    async with web_world(
        db_url, clock, people=PEOPLE, before_open=_link_sarah_tom_and_block_mark, email=EMAIL
    ) as world:
        channels = await _channels(world)
        assert channels["asha@example.org"] == []
        assert channels["mark@example.org"] == []
        assert channels["yusuf@example.org"] == [("email", "form")]
        status = await _status(world)
        assert status["Cllr Asha Patel"] == ("unreachable", "never linked")
        assert status["Cllr Mark Evans"] == ("unreachable", "blocked the bot")


async def test_with_email_off_a_preference_for_email_falls_back_to_the_linked_platform(
    db_url: str, clock: FakeClock
) -> None:
    async with web_world(
        db_url, clock, people=PEOPLE, before_open=_link_sarah_tom_and_block_mark
    ) as world:
        channels = await _channels(world)
        assert channels["sarah@example.org"] == [("telegram", "form")]
        assert channels["yusuf@example.org"] == []


async def test_the_channel_column_is_checked_and_stored(db_url: str, clock: FakeClock) -> None:
    async with services_for(db_url, clock) as services:
        with pytest.raises(ImportError_) as refused:
            await services.people.import_csv(
                "name,role,wards,email,channel\nA,councillor,Park,a@example.org,fax\n",
                source="people.csv",
                actor="t",
            )
        assert refused.value.problems == [
            "people.csv: line 2: channel must be one of telegram, slack, email (or empty)"
        ]
        await services.people.import_csv(PEOPLE, source="people.csv", actor="t")
        async with services.db.uow() as uow:
            stored = {d.email: d.channel for d in await uow.people.details()}
        assert stored == {
            "asha@example.org": "telegram",
            "yusuf@example.org": None,
            "sarah@example.org": "email",
            "mark@example.org": None,
            "tom@example.org": "telegram",
        }
        # A change of preference is an update; the same file again changes nothing.
        again = await services.people.import_csv(
            PEOPLE.replace("Church,sarah@example.org,email", "Church,sarah@example.org,"),
            source="people.csv",
            actor="t",
        )
        assert (again.updated, again.unchanged) == (1, 4)


async def test_a_form_refused_because_the_person_blocked_the_bot_goes_by_email_once(
    db_url: str, clock: FakeClock
) -> None:
    """The bot finds out about a block only when the form is refused (403): the next tick sends
    it by email instead, once; reminders do not follow."""
    async with web_world(
        db_url,
        clock,
        people=PEOPLE,
        before_open=_link_sarah_tom_and_block_mark,
        email={**EMAIL, "fallback": True},
    ) as world:
        from bot.delivery.outbox import OutboxDispatcher, RateLimits

        telegram = FakeMessenger()
        telegram.blocked.add("302")  # Tom blocked the bot after linking; the bot does not know
        limits = RateLimits(1000.0, 1000.0, 8)
        dispatcher = OutboxDispatcher(
            world.services.db.uow,
            {"telegram": telegram, "email": FakeMessenger()},
            {"telegram": limits, "email": limits},
        )
        await dispatcher.drain()
        assert (await _status(world))["Cllr Tom Reed"] == ("unreachable", "blocked the bot")
        report = await world.services.campaigns.tick()
        assert report.emailed_instead == {"monthly:2026-12": 1}
        assert (await world.services.campaigns.tick()).emailed_instead == {}  # once
        await dispatcher.drain()
        assert (await _channels(world))["tom@example.org"] == [
            ("email", "form"),
            ("telegram", "form"),
        ]
        status = await _status(world)
        assert status["Cllr Tom Reed"] == (
            "awaiting",
            "form sent by email instead (blocked the bot)",
        )
        clock.set(datetime(2026, 12, 8, 9, 30, tzinfo=UTC))
        await world.services.campaigns.tick()
        assert (await _channels(world))["tom@example.org"] == [
            ("email", "form"),
            ("telegram", "form"),
        ]


def test_people_channel_orders_reach_and_email_is_the_last_resort() -> None:
    """``Person.reach``: the preferred channel first, then a chat they connected, then one from
    the import, then ``people.email`` when the bot sends email; never email when it does not."""
    linked = datetime(2026, 11, 20, tzinfo=UTC)
    person = Person(
        name="A",
        role="councillor",
        email="a@example.org",
        addresses=[
            Address("slack", "U0A", "U0A", id=1),
            Address("telegram", "11", "11", linked_at=linked, id=2),
        ],
    )
    every = frozenset({"telegram", "slack", "email"})
    chat = frozenset({"telegram", "slack"})
    assert person.reach(every) == ("telegram", "11")  # the chat they connected first
    person.channel = "slack"
    assert person.reach(every) == ("slack", "U0A")
    person.channel = "email"
    assert person.reach(every) == ("email", "a@example.org")
    assert person.reach(chat) == ("telegram", "11")  # email off: the usual order
    assert person.own_platform(every) == "email"
    assert person.own_platform(chat) == "telegram"  # a preference the bot cannot serve
    person.channel = None
    person.blocked_at = linked
    assert person.reach(every, skip_blocked=True) == ("slack", "U0A")
    person.addresses = person.addresses[1:]
    assert person.reach(every, skip_blocked=True) == ("email", "a@example.org")
    assert person.own_platform(every) == "telegram"  # so a form would not go by email
    person.addresses = []
    assert person.reach(every) == ("email", "a@example.org")
    assert person.reach(chat) is None
    assert person.own_platform(every) is None


def test_email_is_a_platform_when_its_host_is_set(db_url: str) -> None:
    assert make_config(db_url).platforms == {"telegram"}
    assert make_config(db_url, email=EMAIL).platforms == {"telegram", "email"}
