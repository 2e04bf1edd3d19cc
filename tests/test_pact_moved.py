"""A PACT meeting moved or cancelled after its invitations went out: each person already sent the
invitation gets one update on their own channel with an updated .ics (same UID, SEQUENCE one
higher, METHOD:PUBLISH as the invitation was; a cancellation is STATUS:CANCELLED), so their
calendar changes the entry it has instead of adding a second one. Each file carries the
VTIMEZONE its times name, and the UID names this install, so two partnerships' (or a rebuilt
database's) meeting 1 are not one meeting to a calendar. Nothing to people not yet
invited, nothing twice (an identical move, a restart), nothing for a past meeting.

The bot runs against the fake Telegram Bot API (and a real SMTP server for email) on the fake
clock; the .ics files are parsed with icalendar as a calendar app would read them."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.clock import FakeClock
from bot.domain import Who
from bot.pact.updates import SentRecordRaced
from sim.fake_telegram import SimUser
from sim.world import SimWorld
from tests.conftest import backend, make_config
from tests.email_helpers import Inbox, smtp_server
from tests.helpers import PEOPLE_CSV, services_for
from tests.test_email import outbox
from tests.test_pact import PACT, TEAMS, _local
from tests.web_helpers import web_world


@pytest.fixture
async def world(db_url: str, fake_telegram: Any, clock: FakeClock) -> AsyncIterator[SimWorld]:
    config = make_config(db_url, fake_telegram.base_url, teams=TEAMS, pact=PACT)
    w = await SimWorld.start(config, fake_telegram, clock)
    await w.import_people(PEOPLE_CSV)
    yield w
    await w.stop()


def _assert_publishable(calendar: Calendar) -> None:
    """The publish model throughout (RFC 5546 3.2.1): METHOD:PUBLISH, no ATTENDEE, an ORGANIZER
    only as a mailto: address, and a VTIMEZONE for each TZID the times name (RFC 5545 3.2.19)."""
    assert str(calendar["method"]) == "PUBLISH"
    event = calendar.walk("VEVENT")[0]
    assert "ATTENDEE" not in event
    if "ORGANIZER" in event:
        assert str(event["organizer"]).startswith("mailto:")
    tzids = {str(event[p].params["TZID"]) for p in ("DTSTART", "DTEND")}
    assert tzids == {"Europe/London"}
    assert tzids <= {str(tz["tzid"]) for tz in calendar.walk("VTIMEZONE")}


def _calendars(world: SimWorld, user: SimUser) -> list[tuple[str, Calendar]]:
    """Each .ics document the user received: its caption and the parsed calendar."""
    out = []
    for m in world.fake.messages(user.chat_id):
        if m.kind == "document" and m.file_data is not None:
            out.append((m.caption or "", Calendar.from_ical(m.file_data)))
    return out


async def _invited(world: SimWorld, clock: FakeClock) -> tuple[SimUser, SimUser, int]:
    """Asha (chair) and Yusuf (partner) get the Heath Town invitation for 10 December."""
    asha = await world.link("asha@example.org", 501, "Asha")
    yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
    meeting = await world.services.pact.schedule(
        neighbourhood="heath-town", on="2026-12-10", at="18:30", venue="Heath Town Library",
        format="in_person", chair_email=None, actor="t",
    )  # fmt: skip
    clock.set(_local("2026-12-07", "19:00"))
    await world.tick()
    for user in (asha, yusuf):
        assert len(_calendars(world, user)) == 1
    assert meeting.id is not None
    return asha, yusuf, meeting.id


async def test_a_moved_meeting_updates_each_invitation_once(
    world: SimWorld, clock: FakeClock
) -> None:
    asha, yusuf, meeting_id = await _invited(world, clock)
    mark = await world.link("mark@example.org", 503, "Mark")  # Penn: never invited
    [(_, first)] = _calendars(world, yusuf)
    _assert_publishable(first)
    uid = str(first.walk("VEVENT")[0]["uid"])
    assert uid.startswith(f"pact-{meeting_id}-") and uid.endswith("@tensionbot")

    await world.services.pact.move(
        meeting_id, on="2026-12-11", at="19:00", venue="Heath Town Baths", actor="t"
    )
    await world.settle()
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        assert len(calendars) == 2, user.first_name
        caption, update = calendars[1]
        assert "moved" in caption.lower()
        assert "Fri 11 Dec" in caption and "Heath Town Baths" in caption
        assert "Thu 10 Dec" in caption  # what it was
        _assert_publishable(update)
        assert "ORGANIZER" not in update.walk("VEVENT")[0]  # no email: no address to name
        event = update.walk("VEVENT")[0]
        assert str(event["uid"]) == uid
        assert event.decoded("sequence") == 1
        assert "STATUS" not in event or str(event["status"]) == "CONFIRMED"
        assert event.decoded("dtstart") == _local("2026-12-11", "19:00")
        assert event.decoded("dtend") == _local("2026-12-11", "20:30")
        assert str(event["location"]) == "Heath Town Baths"
    assert not _calendars(world, mark)

    # The same move again changes nothing and sends nothing; a tick sends no new invitation.
    await world.services.pact.move(
        meeting_id, on="2026-12-11", at="19:00", venue="Heath Town Baths", actor="t"
    )
    await world.tick()
    for user in (asha, yusuf):
        assert len(_calendars(world, user)) == 2

    # A second move: SEQUENCE 2, still the same UID.
    await world.services.pact.move(meeting_id, format="online", actor="t")
    await world.settle()
    caption, update = _calendars(world, yusuf)[2]
    assert "online" in caption.lower()
    event = update.walk("VEVENT")[0]
    assert (str(event["uid"]), event.decoded("sequence")) == (uid, 2)


async def test_a_cancelled_meeting_cancels_each_invitation(
    world: SimWorld, clock: FakeClock
) -> None:
    asha, yusuf, meeting_id = await _invited(world, clock)
    uid = str(_calendars(world, yusuf)[0][1].walk("VEVENT")[0]["uid"])
    await world.services.pact.cancel(meeting_id, actor="t")
    await world.settle()
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        assert len(calendars) == 2, user.first_name
        caption, update = calendars[1]
        assert "cancelled" in caption.lower() and "Thu 10 Dec" in caption
        _assert_publishable(update)  # a cancellation is published too, the event CANCELLED
        event = update.walk("VEVENT")[0]
        assert str(event["uid"]) == uid
        assert event.decoded("sequence") == 1
        assert str(event["status"]) == "CANCELLED"
    await world.tick()
    assert len(_calendars(world, yusuf)) == 2


async def test_a_meeting_moved_before_its_invitations_sends_only_the_invitation(
    world: SimWorld, clock: FakeClock
) -> None:
    """Moved while nobody has the invitation yet: no update; the invitation, when it goes out,
    has the new details. Someone who could not be reached then is not sent an update later."""
    asha = await world.link("asha@example.org", 501, "Asha")
    yusuf = await world.link("yusuf@example.org", 502, "Yusuf")
    meeting = await world.services.pact.schedule(
        neighbourhood="heath-town", on="2026-12-10", at="18:30", venue="Heath Town Library",
        format="in_person", chair_email=None, actor="t",
    )  # fmt: skip
    assert meeting.id is not None
    await world.services.pact.move(meeting.id, on="2026-12-17", venue="Heath Town Baths", actor="t")
    await world.tick()
    assert not _calendars(world, yusuf)
    clock.set(_local("2026-12-14", "19:00"))
    await world.tick()
    for user in (asha, yusuf):
        [(caption, invitation)] = _calendars(world, user)
        assert "moved" not in caption.lower()
        event = invitation.walk("VEVENT")[0]
        assert event.decoded("dtstart") == _local("2026-12-17", "18:30")
        assert str(event["location"]) == "Heath Town Baths"

    # Mark, of another neighbourhood, and nobody else, hear of a later move.
    mark = await world.link("mark@example.org", 503, "Mark")
    await world.services.pact.move(meeting.id, venue="Heath Town Library", actor="t")
    await world.settle()
    assert [len(_calendars(world, u)) for u in (asha, yusuf, mark)] == [2, 2, 0]


async def test_a_past_meeting_changed_by_a_reimport_sends_nothing(
    world: SimWorld, clock: FakeClock
) -> None:
    asha, yusuf, _meeting_id = await _invited(world, clock)
    clock.set(_local("2026-12-11", "09:00"))  # the meeting is over
    await world.services.pact.import_csv(
        "neighbourhood,date,time,venue,format,chair_email\n"
        "heath-town,2026-12-10,18:30,Heath Town Baths,in_person,asha@example.org\n",
        source="season.csv",
        actor="t",
    )
    await world.tick()
    assert [len(_calendars(world, u)) for u in (asha, yusuf)] == [1, 1]


async def test_a_restart_between_the_move_and_the_send_sends_once(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    config = make_config(db_url, fake_telegram.base_url, teams=TEAMS, pact=PACT)
    world = await SimWorld.start(config, fake_telegram, clock)
    try:
        await world.import_people(PEOPLE_CSV)
        asha, yusuf, meeting_id = await _invited(world, clock)
    finally:
        await world.stop()
    # Moved by an admin on the command line while the bot is down.
    async with services_for(db_url, clock, teams=TEAMS, pact=PACT) as admin:
        await admin.pact.move(meeting_id, at="19:30", actor="t")
    for _ in range(2):
        again = await SimWorld.start(config, fake_telegram, clock)
        try:
            await again.tick()
        finally:
            await again.stop()
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        assert len(calendars) == 2, user.first_name
        event = calendars[1][1].walk("VEVENT")[0]
        assert event.decoded("dtstart") == _local("2026-12-10", "19:30")


async def test_a_moved_meeting_updates_an_emailed_invitation(db_url: str, clock: FakeClock) -> None:
    """Dan, without a chat app, gets the update by email, the .ics attached as text/calendar
    with METHOD:PUBLISH in the file and its Content-Type, the same UID as the public feed's, and
    the partnership's from-address as the ORGANIZER (so mail clients update the entry)."""
    from tests.helpers import PACT_NEIGHBOURHOODS

    async with smtp_server() as inbox:
        email = {"host": "127.0.0.1", "port": inbox.port, "security": "none"}
        async with web_world(db_url, clock, email=email, pact=PACT_NEIGHBOURHOODS) as world:
            await world.services.people.import_csv(
                "name,role,wards,organisation,email\n"
                "Chris Chair,community_leader,Heath Town,Residents,chris@example.org\n"
                "PC Dan Lee,officer,all,Police,dan@example.org\n",
                source="more.csv",
                actor="t",
            )
            m = await world.services.pact.schedule(
                neighbourhood="heath-town", on="2026-12-10", at="18:30",
                venue="Heath Town Library", format="in_person", chair_email=None, actor="t",
            )  # fmt: skip
            assert m.id is not None
            clock.set(datetime(2026, 12, 7, 19, 0, tzinfo=UTC))
            assert (await world.services.pact.tick())["reminders"] == 1
            await outbox(world).drain()
            await world.services.pact.move(m.id, venue="Heath Town Baths", actor="t")
            await outbox(world).drain()
            await world.services.pact.move(m.id, venue="Heath Town Baths", actor="t")
            await outbox(world).drain()
            mails = _pact_mails(inbox, "dan@example.org")
            assert len(mails) == 2
            [ics] = list(mails[1].iter_attachments())
            assert ics.get_content_type() == "text/calendar"
            # Outlook reads the method from the Content-Type: it follows the file.
            assert ics.get_param("method") == "PUBLISH"
            update = Calendar.from_ical(ics.get_content())
            _assert_publishable(update)
            event = update.walk("VEVENT")[0]
            assert str(event["organizer"]) == "mailto:tensions@example.gov.uk"
            assert event["organizer"].params["CN"] == "Safer Wolverhampton Partnership"
            [first] = list(mails[0].iter_attachments())
            uid = str(Calendar.from_ical(first.get_content()).walk("VEVENT")[0]["uid"])
            assert str(event["uid"]) == uid
            async with aiohttp.ClientSession() as client:
                async with client.get(f"{world.base}/pact/heath-town.ics") as r:
                    feed = Calendar.from_ical(await r.read())
            assert [str(e["uid"]) for e in feed.walk("VEVENT")] == [uid]
            assert event.decoded("sequence") == 1
            assert str(event["location"]) == "Heath Town Baths"


def _pact_mails(inbox: Inbox, address: str) -> list[Any]:
    return [m for m in inbox.to(address) if "PACT" in str(m["Subject"])]


async def test_an_erased_invitee_is_not_sent_the_update(world: SimWorld, clock: FakeClock) -> None:
    """Who was sent the invitation is kept as person ids, never as addresses: an erased person
    (no addresses left) is not sent the update."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    await world.services.privacy.erase("yusuf@example.org", actor="t")
    await world.services.pact.move(meeting_id, venue="Heath Town Baths", actor="t")
    await world.settle()
    assert len(_calendars(world, asha)) == 2
    assert len(_calendars(world, yusuf)) == 1


async def test_a_change_the_invitations_raced_is_caught_by_the_next_tick(
    world: SimWorld, clock: FakeClock
) -> None:
    """A move committed by another process while the tick was writing the invitations (with
    the details it had read) found nothing sent yet; the next tick sees that what was sent is
    not what the meeting says, and sends the update, once."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    async with world.services.db.uow() as uow:  # the meeting as the racing move left it
        m = await uow.pact.get_meeting(meeting_id)
        assert m is not None
        m.venue = "Heath Town Baths"
        await uow.commit()
    await world.tick()
    await world.tick()
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        assert len(calendars) == 2, user.first_name
        assert str(calendars[1][1].walk("VEVENT")[0]["location"]) == "Heath Town Baths"


REIMPORT = "neighbourhood,date,time,venue,format,chair_email\nheath-town,2026-12-10,18:30,{venue},in_person,\n"


async def test_reimporting_a_cancelled_meeting_sends_no_second_cancellation(
    world: SimWorld, clock: FakeClock
) -> None:
    """A season re-imported with a cancelled meeting's venue corrected leaves the meeting as it
    is (cancelled): nobody is told "Cancelled" a second time, now or at the next tick."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    pact = world.services.pact
    await pact.cancel(meeting_id, actor="t")
    await world.settle()
    result = await pact.import_csv(
        REIMPORT.format(venue="Heath Town Library Room 2"), source="s", actor="t"
    )
    await world.settle()
    await world.tick()
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        assert len(calendars) == 2, user.first_name  # the invitation and one CANCEL
        cancel = calendars[1][1]
        _assert_publishable(cancel)
        assert str(cancel.walk("VEVENT")[0]["status"]) == "CANCELLED"
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)  # left alone


async def test_a_meeting_the_chair_marks_cancelled_cancels_each_invitation_at_once(
    world: SimWorld, clock: FakeClock
) -> None:
    """The chair's "It was cancelled" on a meeting not yet started: each invitee gets the
    CANCEL in the same transaction, not at the next tick."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    await world.services.pact.cancelled_by(Who("telegram", str(asha.user_id)), meeting_id)
    await world.settle()  # no tick
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        assert len(calendars) == 2, user.first_name
        caption, update = calendars[1]
        assert "cancelled" in caption.lower()
        _assert_publishable(update)
        assert str(update.walk("VEVENT")[0]["status"]) == "CANCELLED"
        assert update.walk("VEVENT")[0].decoded("sequence") == 1
    await world.tick()
    assert len(_calendars(world, yusuf)) == 2


async def test_a_record_the_tick_read_before_a_move_does_not_overwrite_it(
    world: SimWorld, clock: FakeClock
) -> None:
    """The tick's unit of work reads what was sent, a move commits in between (another process),
    then the tick writes back what it read: that stale record must not replace the move's, or a
    second move reuses the first one's sequence and its updates are dropped as duplicates."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    pact = world.services.pact
    async with world.services.db.uow() as uow:  # the tick's unit of work, by hand
        m = await uow.pact.get_meeting(meeting_id)
        assert m is not None
        record, read = await pact.sent_record(uow, m)
        await pact.move(meeting_id, venue="Heath Town Baths", actor="t")  # commits meanwhile
        with pytest.raises(SentRecordRaced):  # the tick's unit of work is rolled back
            await pact.keep_sent(uow, m, record, read=read)
    await world.settle()
    await world.tick()  # the tick again, reading the move
    await pact.move(meeting_id, venue="Old Fallings Hall", actor="t")
    await world.settle()
    await world.tick()
    for user in (asha, yusuf):
        calendars = _calendars(world, user)
        locations = [str(c.walk("VEVENT")[0]["location"]) for _, c in calendars]
        assert locations[-1] == "Old Fallings Hall", user.first_name
        sequences = [c.walk("VEVENT")[0].decoded("sequence") for _, c in calendars]
        assert sequences == sorted(set(sequences)), user.first_name  # each change a new one


async def _until_waiting_or_done(world: SimWorld, task: asyncio.Task[Any]) -> None:
    """Until ``task`` waits for a row lock in PostgreSQL (or has finished without waiting)."""
    async with world.services.db.engine.connect() as admin:
        while not task.done():
            waiting = await admin.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return
            await admin.rollback()  # a fresh snapshot of pg_stat_activity
            await asyncio.sleep(0.02)


@pytest.mark.skipif(
    backend() != "postgresql",
    reason="SQLite serialises writers: the move reads what was sent inside its write transaction",
)
async def test_a_move_waits_for_the_invitations_the_tick_is_writing(
    world: SimWorld, clock: FakeClock
) -> None:
    """The tick's unit of work has invited someone new and written it down, not yet committed;
    a move in another process then reads what was sent after the tick commits (it waits for the
    row), so the newly invited person gets the update too."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    jane = await world.link("jane@example.org", 505, "Jane")  # a partner, linked late
    pact = world.services.pact
    async with world.services.db.uow() as uow:  # the tick's unit of work, by hand
        m = await uow.pact.get_meeting(meeting_id)
        assert m is not None
        await pact._remind(uow, m, clock.now())  # Jane's invitation, and the record
        move = asyncio.create_task(pact.move(meeting_id, venue="Heath Town Baths", actor="t"))
        await _until_waiting_or_done(world, move)
        await uow.commit()
    await move
    await world.settle()
    for user in (asha, yusuf, jane):
        calendars = _calendars(world, user)
        assert str(calendars[-1][1].walk("VEVENT")[0]["location"]) == "Heath Town Baths", (
            user.first_name
        )


async def test_the_tick_never_sends_a_move_back_to_the_details_it_read_before_it(
    world: SimWorld, clock: FakeClock
) -> None:
    """The tick read the meeting, then a move committed (another process): comparing the
    details it read with what the move recorded must not send "Moved" back to the old ones."""
    asha, yusuf, meeting_id = await _invited(world, clock)
    pact = world.services.pact
    async with world.services.db.uow() as uow:  # the tick's unit of work, by hand
        m = await uow.pact.get_meeting(meeting_id)  # as the tick reads its meetings
        assert m is not None
        await pact.move(meeting_id, venue="Heath Town Baths", actor="t")  # commits meanwhile
        assert await pact.update_invitations(uow, m, clock.now()) == 0
        await uow.commit()
    await world.settle()
    await world.tick()
    for user in (asha, yusuf):
        locations = [str(c.walk("VEVENT")[0]["location"]) for _, c in _calendars(world, user)]
        assert locations == ["Heath Town Library", "Heath Town Baths"], user.first_name


@pytest.fixture
async def other_db_url(template_db: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second fresh database: another partnership's, or this one's rebuilt."""
    from tests.conftest import PG_URL, _pg_admin

    if PG_URL:
        name = f"tb_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path / "other.sqlite3"
        shutil.copy(template_db, path)
        yield f"sqlite+aiosqlite:///{path}"


async def test_meeting_one_of_two_databases_has_two_uids(
    db_url: str, other_db_url: str, clock: FakeClock
) -> None:
    """Meeting ids start at 1 in every database: the UID also names the install (kept in the
    database, made on first use), so an inspector invited by two partnerships, or by one
    whose database was rebuilt, has two meetings in their calendar, not one overwritten; the
    public feed gives each meeting the UID its invitations carry."""
    from tests.helpers import PACT_NEIGHBOURHOODS

    uids = []
    for url in (db_url, other_db_url):
        async with web_world(url, clock, pact=PACT_NEIGHBOURHOODS) as world:
            await world.services.people.import_csv(
                "name,role,wards,organisation,email\n"
                "Chris Chair,community_leader,Heath Town,Residents,chris@example.org\n",
                source="more.csv",
                actor="t",
            )
            m = await world.services.pact.schedule(
                neighbourhood="heath-town", on="2026-12-10", at="18:30",
                venue="Heath Town Library", format="in_person", chair_email=None, actor="t",
            )  # fmt: skip
            assert m.id == 1
            async with aiohttp.ClientSession() as client:
                async with client.get(f"{world.base}/pact/heath-town.ics") as r:
                    feed = Calendar.from_ical(await r.read())
                [event] = feed.walk("VEVENT")
                uids.append(str(event["uid"]))
                # Read again (and after a move): the same UID.
                await world.services.pact.move(m.id, venue="Heath Town Baths", actor="t")
                async with client.get(f"{world.base}/pact/heath-town.ics") as r:
                    [again] = Calendar.from_ical(await r.read()).walk("VEVENT")
                assert str(again["uid"]) == uids[-1]
                assert str(again["location"]) == "Heath Town Baths"
    assert all(u.startswith("pact-1-") and u.endswith("@tensionbot") for u in uids)
    assert uids[0] != uids[1]
