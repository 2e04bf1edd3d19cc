"""Data protection: erasure (verified by scanning every table), subject-access export, retention
that keeps the statistics, the append-only audit log, encryption at rest, and logs without report
text or names. On SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from bot.app import Services
from bot.clock import FakeClock
from bot.config import ConfigError, config_from_mapping
from bot.domain import Action, ActionEvent, PactPriority, PactRecording
from bot.people.personal_data import REDACTED
from storage import tables
from storage.database import Database
from storage.encryption import EncryptionError
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for
from tests.test_conversation import Chat, _answer_all

ASHA = "Cllr Asha Patel"
ASHA_EMAIL = "asha@example.org"
ASHA_SLACK = "U0ASHA"
BASE_CHAT = 987_650_000  # distinctive Telegram ids, so a substring scan cannot hit by chance
LEAFLETS = "Hostile leaflets about the mosque extension"
YUSUF_TEXT = "Stickers on the bus shelter"


async def _report(
    s: Services, messenger: FakeMessenger, outbox: Any, chat_id: int, what: str = LEAFLETS
) -> None:
    chat = Chat(s, messenger, outbox, chat_id)
    await chat.press("Report a tension")
    await chat.press("Heath Town")
    await chat.press("Religion or faith")
    await chat.say(f"{what} on two streets.")
    await chat.press("Skip")  # where
    await chat.say("Since Saturday")
    await chat.press("Evidenced")
    await chat.press("2 Tension")
    await chat.press("Social media")
    await chat.press("Skip")  # impact
    await chat.press("No")  # already reported
    await chat.press("No")  # contact
    await chat.press("No, keep me anonymous")
    await chat.press("Submit")


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> Any:
    """Asha has linked Telegram and Slack, reported a tension (with an action and an officer's
    update naming her), chairs and attended a PACT meeting, owns a report-back, and has a
    recording and a message in flight."""
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s, base_user_id=BASE_CHAT)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        await _report(s, messenger, outbox, chats[ASHA_EMAIL])
        await _report(s, messenger, outbox, chats["yusuf@example.org"], YUSUF_TEXT)
        meeting = await s.pact.schedule(
            neighbourhood="heath-town",
            on="2026-12-10",
            at="18:30",
            venue="Heath Town Community Centre",
            format="in_person",
            chair_email=ASHA_EMAIL,
            actor="t",
        )
        now = clock.now()
        async with s.db.uow() as uow:
            asha = await uow.people.by_email(ASHA_EMAIL)
            assert asha is not None and asha.id is not None and meeting.id is not None
            asha.set_address("slack", ASHA_SLACK, ASHA_SLACK)
            report = (await uow.reports.for_person(asha.id))[0]
            assert report.id is not None
            action = Action(report_id=report.id, team_key="council", created_at=now)
            await uow.actions.add(action)
            assert action.id is not None
            for who, note, mine in (
                ("router", "Sent to the council team", True),
                ("U0JANE", f"Spoke to {ASHA} about it", True),
                (ASHA_SLACK, "Checked the streets", False),
            ):
                event = ActionEvent(action.id, now, "update", who, note, for_reporter=mine)
                await uow.actions.add_event(event)
            await uow.pact.set_attendance(meeting.id, [asha.id])
            priority = PactPriority(
                neighbourhood="heath-town",
                meeting_id=meeting.id,
                title="Parking outside the school",
                owner_team="council",
                created_at=now,
                report_back=f"Met {ASHA} on site",
                report_back_by=ASHA_SLACK,
            )
            await uow.pact.add_priority(priority)
            await uow.pact.add_recording(
                PactRecording(meeting.id, asha.id, now, now, draft={"note": "Thirty people came"})
            )
            await uow.outbox.add(
                tables_outbox_message(
                    "slack", "C0TEAM", {"text": f"Reported by {ASHA}"}, action.id, now
                )
            )
            await uow.commit()
        yield s, messenger, outbox, chats


def tables_outbox_message(
    channel: str, recipient: str, payload: dict[str, Any], action_id: int, now: datetime
) -> Any:
    """A sent Slack post about an action."""
    from bot.domain import OutboxMessage

    return OutboxMessage(
        channel=channel,
        recipient=recipient,
        payload=payload,
        idempotency_key=f"test:{action_id}:{recipient}",
        created_at=now,
        next_attempt_at=None,
        action_id=action_id,
        status="sent",
    )


async def _scan(db: Database, needles: list[str]) -> list[str]:
    """Every value of every column of every table (walked from the metadata), searched for
    ``needles``; returns where each was found."""
    found: list[str] = []
    async with db.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    blob = (
                        json.dumps(value, ensure_ascii=False)
                        if isinstance(value, dict | list)
                        else str(value)
                    ).casefold()
                    for needle in needles:
                        if needle.casefold() in blob:
                            found.append(f"{table.name}.{column}: {needle}")
    return found


async def test_erase_leaves_nothing_about_the_person_in_any_table(world: Any) -> None:
    s, _, _, chats = world
    chat_id = str(chats[ASHA_EMAIL])
    needles = [ASHA, ASHA_EMAIL, ASHA_SLACK, chat_id, "Asha", LEAFLETS, "Thirty people"]
    before = await _scan(s.db, needles)
    # The scan finds her everywhere before, so it can fail after.
    for where in (
        "people.name",
        "people.email",
        "addresses.address",
        "addresses.chat",
        "reports.answers",
        "action_events.text",
        "action_events.actor",
        "outbox.payload",
        "outbox.recipient",
        "pact_priorities.report_back",
        "pact_recordings.draft",
    ):
        assert any(f.startswith(where) for f in before), where
    async with s.db.uow() as uow:
        asha = await uow.people.by_email(ASHA_EMAIL)
        assert asha is not None and asha.id is not None
        pid = asha.id
        reports_before = [
            (r.reference, r.ward, r.category, r.level, r.basis, r.period)
            for r in await uow.privacy.reports_of(pid)
        ]
    service = s.privacy
    plan = await service.plan(ASHA_EMAIL)
    assert plan.reports == 1 and plan.pact_meetings_chaired == 1 and plan.invites >= 1
    assert await _scan(s.db, needles) == before  # planning changes nothing

    await service.erase(ASHA_EMAIL, actor="cli")

    assert await _scan(s.db, needles) == []
    async with s.db.uow() as uow:
        erased = await uow.people.get(pid)
        assert erased is not None and not erased.active and erased.wards == []
        assert [
            (r.reference, r.ward, r.category, r.level, r.basis, r.period)
            for r in await uow.privacy.reports_of(pid)
        ] == reports_before  # the statistics survive
        chaired = await uow.pact.for_chair(pid)
        assert len(chaired) == 1 and chaired[0].venue == "Heath Town Community Centre"
        assert await uow.privacy.meetings_attended(pid) == []
        assert await uow.privacy.invites_of(pid) == []
        assert all(c.status != "active" for c in await uow.privacy.conversations_of(pid))
        assert all(r.status != "active" for r in await uow.privacy.recordings_of(pid))
        # Yusuf's report and the router's neutral note are untouched.
        yusuf = await uow.people.by_email("yusuf@example.org")
        assert yusuf is not None and yusuf.id is not None
        theirs = (await uow.privacy.reports_of(yusuf.id))[0]
        assert theirs.answers["description"].startswith(YUSUF_TEXT)
        entries = await uow.privacy.audit_about([f"person:{pid}"])
        assert any(e.action == "person.erase" and e.actor == "cli" for e in entries)
    # Twice is harmless.
    await service.erase(f"person:{pid}", actor="cli")
    assert await _scan(s.db, needles) == []


async def test_export_holds_everything_about_the_person(world: Any) -> None:
    s, _, _, chats = world
    service = s.privacy
    data = await service.export(ASHA_EMAIL, actor="cli")
    json.dumps(data)  # serialisable as it is
    assert data["profile"]["name"] == ASHA and data["profile"]["email"] == ASHA_EMAIL
    on = {a["platform"]: a for a in data["profile"]["addresses"]}
    assert on["telegram"]["chat"] == str(chats[ASHA_EMAIL]) and on["slack"]["address"] == ASHA_SLACK
    assert [d["return"] for d in data["deliveries"]] == ["monthly:2026-12"]
    (report,) = data["reports"]
    assert report["reference"].startswith("TR-2026-12-")
    assert report["answers"]["description"].startswith(LEAFLETS)
    (action,) = report["actions"]
    # The timeline as the reporter saw it: not the officers' internal notes.
    assert [e["text"] for e in action["timeline"]] == [
        "Sent to the council team",
        f"Spoke to {ASHA} about it",
    ]
    assert [m["venue"] for m in data["pact_meetings_chaired"]] == ["Heath Town Community Centre"]
    assert len(data["pact_meetings_attended"]) == 1
    assert data["pact_recordings"][0]["draft"] == {"note": "Thirty people came"}
    assert any("December 2026" in m["text"] for m in data["messages_to_them"])
    actions = {e["action"] for e in data["audit"]}
    assert {"telegram.link", "report.submit"} <= actions
    assert data["invitations"] and data["conversations"]
    again = await service.export(ASHA_EMAIL, actor="cli")
    assert any(e["action"] == "person.export" for e in again["audit"])  # exports are audited


async def _totals(s: Services) -> list[Any]:
    result = await s.summaries.build("2026-12", actor="t")
    return [
        result.total,
        result.matrix,
        result.tension_by_ward,
        result.trend,
        [(b.by, b.rows) for b in result.breakdowns],
        result.returns_by_role,
        result.returns_by_ward,
    ]


async def test_retention_redacts_old_free_text_and_keeps_the_statistics(
    world: Any, clock: FakeClock
) -> None:
    s, _, _, _ = world
    service = s.privacy
    before = await _totals(s)
    assert before[0] == 2
    nothing = await service.tick()  # nothing is old yet
    assert nothing.total == 0 and nothing.anonymised == 0

    clock.advance(timedelta(days=31 * 15))
    done = await service.tick()
    assert done.redacted["reports"] == 2
    assert done.redacted["action_events"] == 3
    assert done.redacted["pact_priorities"] == 1
    assert done.redacted["outbox"] > 0 and done.redacted["pact_recordings"] == 1
    assert await _totals(s) == before
    async with s.db.uow() as uow:
        for person in await uow.people.all():
            assert person.id is not None
            for report in await uow.privacy.reports_of(person.id):
                assert report.answers["description"] == REDACTED
                assert report.answers["since"] == REDACTED
                assert report.answers["level"] == "2" and report.answers["basis"]
                assert report.ward == "Heath Town" and report.level == 2
    assert await _scan(s.db, [LEAFLETS, YUSUF_TEXT, "Since Saturday", "Spoke to", "Thirty"]) == []
    # Idempotent: a second run (or a second process) finds nothing left to do.
    again = await service.tick()
    assert again.total == 0
    full = await service.tick(full=True)
    assert full.total == 0
    async with s.db.uow() as uow:
        runs = [e for e in await uow.privacy.audit_about(["retention"]) if e.action]
        assert len(runs) == 4
        assert all(LEAFLETS not in json.dumps(e.details) for e in runs)


async def test_inactive_people_are_anonymised_after_personal_data_months(
    world: Any, clock: FakeClock
) -> None:
    s, _, _, _ = world
    # Mark leaves office (`tensionbot people deactivate`); the change is audited.
    mark = await s.people.set_active("mark@example.org", False, actor="admin")
    assert mark is not None and not mark.active
    assert await s.people.set_active("nobody@example.org", False, actor="admin") is None
    async with s.db.uow() as uow:
        logged = await uow.privacy.audit_about([f"person:{mark.id}"])
    assert "people.deactivate" in {e.action for e in logged}
    service = s.privacy
    assert (await service.tick()).anonymised == 0
    clock.advance(timedelta(days=31 * 15))
    assert (await service.tick()).anonymised == 1
    assert await _scan(s.db, ["Cllr Mark Evans", "mark@example.org"]) == []
    assert (await service.tick()).anonymised == 0
    assert await _scan(s.db, ["Rev Sarah Jones"])  # active people stay


async def test_the_audit_log_refuses_update_and_delete(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, subject, details) "
                    "VALUES (:at, 'cli', 'test', 'person:1', '{}')"
                ),
                {"at": datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
        for sql in (
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.engine.begin() as conn:
                    await conn.execute(text(sql))
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT actor FROM audit_log"))).all()
        assert [r[0] for r in rows] == ["cli"]
    finally:
        await db.dispose()


async def test_encryption_at_rest(db_url: str, clock: FakeClock) -> None:
    """With TENSIONBOT_ENCRYPTION_KEY the stored free text is ciphertext and the app reads it."""
    key = Fernet.generate_key().decode()
    messenger = FakeMessenger()
    env = {"TENSIONBOT_ENCRYPTION_KEY": key}
    async with services_for(db_url, clock, env=env) as s:
        assert s.config.secrets.encryption_key is not None
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s, base_user_id=BASE_CHAT)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        chat = Chat(s, messenger, outbox, chats[ASHA_EMAIL])
        await chat.press("Report a tension")
        await _answer_all(chat)
        await chat.press("No")
        await chat.press("No, keep me anonymous")
        await chat.press("Submit")
        assert "TR-2026-12-0001" in chat.last
        await chat.command("status")
        assert "TR-2026-12-0001" in chat.last
        async with s.db.uow() as uow:
            (report,) = await uow.privacy.reports_of(1)
            assert report.answers["description"].startswith(LEAFLETS)  # decrypted on read
            assert report.id is not None
            action = Action(report_id=report.id, team_key="council", created_at=clock.now())
            await uow.actions.add(action)
            assert action.id is not None
            await uow.actions.add_event(
                ActionEvent(action.id, clock.now(), "update", "U0JANE", "Visited the mosque")
            )
            await uow.commit()
        async with s.db.engine.connect() as conn:
            raw = [
                str(v)
                for sql in (
                    "SELECT CAST(answers AS TEXT) FROM reports",
                    "SELECT CAST(text AS TEXT) FROM action_events",
                    "SELECT CAST(payload AS TEXT) FROM outbox",
                    "SELECT CAST(tensions AS TEXT) FROM conversations",
                )
                for v in (await conn.execute(text(sql))).scalars()
            ]
        assert raw and all("fernet:gAAAAA" in v for v in raw if v not in ('""', "[]", "{}"))
        assert not [v for v in raw if "Hostile" in v or "mosque" in v or "Saturday" in v]
        export = await s.privacy.export(ASHA_EMAIL, actor="t")
        assert export["reports"][0]["answers"]["since"] == "Since Saturday"
        clock.advance(timedelta(days=31 * 15))
        done = await s.privacy.tick()
        assert done.redacted["reports"] == 1
    # Without the key the data cannot be read, and says why.
    plain = Database(db_url)
    try:
        async with plain.uow() as uow:
            with pytest.raises(EncryptionError, match="TENSIONBOT_ENCRYPTION_KEY"):
                await uow.actions.events(1)
    finally:
        await plain.dispose()


def test_a_bad_encryption_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="TENSIONBOT_ENCRYPTION_KEY"):
        config_from_mapping({}, source="x", env={"TENSIONBOT_ENCRYPTION_KEY": "not-a-key"})
    good = Fernet.generate_key().decode()
    config = config_from_mapping(
        {}, source="x", env={"TENSIONBOT_ENCRYPTION_KEY": f"{good}, {good}"}
    )
    assert config.secrets.encryption_key is not None
    assert good not in repr(config)


async def test_a_report_flow_logs_no_report_text_and_no_names(
    db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s, base_user_id=BASE_CHAT)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        await _report(s, messenger, outbox, chats[ASHA_EMAIL])
        chat = Chat(s, messenger, outbox, chats["yusuf@example.org"])
        await chat.command("report")
        await chat.press("Heath Town")
        await chat.press("Religion or faith")
        await chat.say("Graffiti naming Imam Yusuf Khan near the mosque")
        await chat.command("cancel")
        await chat.command("status")
        service = s.privacy
        await service.export(ASHA_EMAIL, actor="cli")
        await service.erase(ASHA_EMAIL, actor="cli")
        clock.advance(timedelta(days=31 * 15))
        await service.tick()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert any(r.name.startswith("bot.") for r in caplog.records)  # logging was captured
    for secret in (LEAFLETS, "Since Saturday", "Graffiti", "Asha", "Yusuf", "Patel", "@"):
        assert secret not in logged, secret
