"""A PACT meeting moved or cancelled after its invitations went out: each person already sent the
invitation gets one update on their own channel with an updated .ics (same UID, SEQUENCE one
higher; METHOD:REQUEST for a move, METHOD:CANCEL and STATUS:CANCELLED for a cancellation), so
their calendar changes the entry it has instead of adding a second one. Nothing to people not yet
invited, nothing twice (an identical move, a restart), nothing for a past meeting.

The bot runs against the fake Telegram Bot API (and a real SMTP server for email) on the fake
clock; the .ics files are parsed with icalendar as a calendar app would read them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import text

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
    uid = str(first.walk("VEVENT")[0]["uid"])

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
        assert str(update["method"]) == "REQUEST"
        event = update.walk("VEVENT")[0]
        assert str(event["uid"]) == uid
        assert event.decoded("sequence") == 1
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
        assert str(update["method"]) == "CANCEL"
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
    with METHOD:REQUEST (so mail clients offer to update the entry)."""
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
            # Outlook reads the method from the Content-Type to update the entry it holds.
            assert ics.get_param("method") == "REQUEST"
            update = Calendar.from_ical(ics.get_content())
            assert str(update["method"]) == "REQUEST"
            event = update.walk("VEVENT")[0]
            assert str(event["uid"]) == f"pact-{m.id}@tensionbot"
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
        assert str(calendars[1][1]["method"]) == "CANCEL"
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
        assert str(update["method"]) == "CANCEL"
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
