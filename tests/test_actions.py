"""Actions in the core: routing on submit, the team's message, officer steps, reporter updates.

The Slack and Telegram messengers are the fake ports here; the Slack adapter is tested over HTTP
separately.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.actions.service import ActionError, Officer
from bot.buttons import ButtonAction, Kind
from bot.clock import FakeClock
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for
from tests.test_conversation import Chat

TEAMS = [
    {
        "key": "cohesion",
        "name": "Cohesion Team",
        "organisation": "council",
        "slack_channel": "C0COHESION",
        "members": ["U0JANE"],
    },
    {
        "key": "npt",
        "name": "Neighbourhood Police",
        "organisation": "police",
        "slack_channel": "C0NPT",
        "members": ["U0PC"],
    },
    {
        "key": "prevent",
        "name": "Prevent",
        "organisation": "council",
        "slack_channel": "G0PREVENT",
        "members": ["U0SAM"],
        "restricted": True,
    },
]
ROUTING = {
    "default_team": "cohesion",
    "rules": [
        {"categories": ["crime_asb"], "teams": ["npt", "cohesion"]},
        {"categories": ["protest_extremism"], "teams": ["prevent"]},
    ],
}


@pytest.fixture
async def world(db_url: str) -> Any:
    # Wednesday 23 December 2026, 15:00: two working days later is Tuesday 29 (bank holidays).
    clock = FakeClock(datetime(2026, 12, 23, 15, 0, tzinfo=UTC))
    telegram, slack = FakeMessenger(), FakeMessenger()
    async with services_for(db_url, clock, teams=TEAMS, routing=ROUTING) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, telegram, slack)
        await outbox.drain()
        yield s, telegram, slack, outbox, chats, clock


async def _report(chat: Chat, category: str, consent_share: str = "No") -> None:
    await chat.command("report")
    await chat.press("Heath Town")
    await chat.press(category)
    await chat.say("Graffiti <!channel> on the <b>community centre</b> & shop shutters.")
    await chat.press("Skip")
    await chat.press("Skip")
    await chat.press("Experienced")
    await chat.press("2 Tension")
    await chat.press("No")
    await chat.press("Skip")
    await chat.press("No")
    await chat.press("Yes")
    await chat.press(consent_share)
    await chat.press("Submit")


def _buttons(message: Any) -> dict[str, str]:
    return {b.label: b.data for row in message.buttons for b in row}


async def test_submit_routes_posts_and_tells_the_reporter(world: Any) -> None:
    s, telegram, slack, outbox, chats, _ = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Crime or anti-social")
    await outbox.drain()
    posts = {r: m for r, m, edit in slack.sent if edit is None}
    assert set(posts) == {"C0NPT", "C0COHESION"}
    text = posts["C0NPT"].plain_text()
    assert "TR-2026-12-0001 · Heath Town · Crime or anti-social behaviour" in text
    assert "<!channel>" in text  # kept as text here; the Slack renderer escapes it
    assert "Reporter: anonymous to partners" in text and "Asha" not in text
    assert "Tue 29 Dec 2026, 15:00" in text  # two working days, skipping Christmas
    assert list(_buttons(posts["C0NPT"])) == [
        "Acknowledge",
        "Add update",
        "Resolve",
        "Reassign",
        "Change category",
    ]
    told = [t for t in telegram.texts_to(asha.chat_id) if "TR-2026-12-0001" in t]
    delivered = [t for t in told if "Delivered" in t]  # once both teams have it, in one message
    assert delivered == ["TR-2026-12-0001 Delivered to Neighbourhood Police and Cohesion Team"]


async def test_officer_lifecycle(world: Any) -> None:
    s, telegram, slack, outbox, chats, _ = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Religion or faith", consent_share="Yes, share my name")
    await outbox.drain()
    (post,) = [m for r, m, e in slack.sent if r == "C0COHESION" and e is None]
    assert "Reported by: Cllr Asha Patel (Council) · may be contacted" in post.plain_text()
    ack = ButtonAction.decode(_buttons(post)["Acknowledge"])

    with pytest.raises(ActionError, match="Only members of Cohesion Team"):
        await s.actions.acknowledge(Officer("U0PC"), ack.target, ack.seq)
    assert await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq) == "Acknowledged."
    with pytest.raises(ActionError, match="Someone else has just changed"):
        await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)  # a double click
    v = ack.seq + 1  # each change moves the version on
    await s.actions.add_update(Officer("U0JANE"), ack.target, v, "Visited; cleaning booked.", True)
    await s.actions.add_update(Officer("U0JANE"), ack.target, v + 1, "Internal: CCTV asked", False)
    with pytest.raises(ActionError, match="say who is responsible"):
        await s.actions.close(Officer("U0JANE"), ack.target, v + 2, "not_our_responsibility", "")
    await s.actions.close(Officer("U0JANE"), ack.target, v + 2, "resolved", "Graffiti removed.")
    with pytest.raises(ActionError, match="already closed"):
        await s.actions.close(Officer("U0JANE"), ack.target, v + 3, "duplicate", "")
    with pytest.raises(ActionError, match="no longer exists"):
        await s.actions.acknowledge(Officer("U0JANE"), 999, 0)
    await outbox.drain()

    edits = [m.plain_text() for r, m, e in slack.sent if r == "C0COHESION" and e is not None]
    assert "Status: Acknowledged" in edits[0]
    assert "Status: Resolved: Graffiti removed." in edits[-1]
    assert _buttons([m for r, m, e in slack.sent if e is not None][-1]) == {}
    threads = [slack.sent[i][1].plain_text() for i in slack.threads]
    assert threads[0] == "Acknowledged by Jane Smith, Cohesion Team" and any(
        "CCTV" in t for t in threads
    )

    told = [t for t in telegram.texts_to(asha.chat_id) if "TR-2026-12-0001" in t]
    assert any("Acknowledged by Jane Smith, Cohesion Team" in t for t in told)
    assert any("Visited; cleaning booked." in t for t in told)
    assert not any("CCTV" in t for t in told)  # not marked for the reporter
    assert any(
        "Closed by Jane Smith, Cohesion Team" in t and "Graffiti removed." in t for t in told
    )
    kinds = [e.kind for e in await s.actions.timeline(ack.target)]
    assert kinds == ["created", "delivered", "acknowledged", "update", "update", "closed"]


async def test_reassign_and_need_to_know(world: Any) -> None:
    s, telegram, slack, outbox, chats, _ = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Protest or extremist")
    await outbox.drain()
    posts = [(r, m) for r, m, e in slack.sent if e is None and not r.startswith("U")]
    assert [r for r, _ in posts] == ["G0PREVENT"]  # private: the restricted team only
    action = ButtonAction.decode(_buttons(posts[0][1])["Reassign"])
    with pytest.raises(ActionError, match="not a need-to-know team"):
        await s.actions.reassign(Officer("U0SAM"), action.target, action.seq, "cohesion")

    await _report(asha, "Race or ethnicity")
    await outbox.drain()
    post = [m for r, m, e in slack.sent if r == "C0COHESION" and e is None][-1]
    action = ButtonAction.decode(_buttons(post)["Reassign"])
    assert await s.actions.reassign(Officer("U0JANE"), action.target, action.seq, "npt") == (
        "Reassigned to Neighbourhood Police."
    )
    await outbox.drain()
    assert any(
        r == "C0NPT" and "TR-2026-12-0002" in m.plain_text() for r, m, e in slack.sent if e is None
    )
    assert any("Passed to Neighbourhood Police by" in t for t in telegram.texts_to(asha.chat_id))


async def test_unrouted_report_is_flagged(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    telegram = FakeMessenger()
    async with services_for(
        db_url,
        clock,
        teams=TEAMS[:1],
        routing={"rules": [{"categories": ["race"], "teams": ["cohesion"]}]},
    ) as s:
        admin = "Ada Admin,admin,all,SWP,ada@example.org,U0ADA\n"
        await s.people.import_csv(PEOPLE_CSV + admin, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, telegram, FakeMessenger())
        asha = Chat(s, telegram, outbox, chats["asha@example.org"])
        await _report(asha, "Disability")
        async with s.db.uow() as uow:
            reports = await uow.reports.for_person(1)
            assert reports[0].status == "unrouted"
        await outbox.drain()
        alerts = [t for t in telegram.texts_to(chats["ada@example.org"]) if "alert" in t]
        assert len(alerts) == 1
        assert "TR-2026-12-0001" in alerts[0] and "reaches no team" in alerts[0]


async def test_two_officers_acknowledging_at_once_one_wins(world: Any) -> None:
    """Both read the same version; the database lets only one update through."""
    import asyncio

    s, telegram, slack, outbox, chats, _ = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Crime or anti-social")
    await outbox.drain()
    post = next(m for r, m, e in slack.sent if r == "C0COHESION" and e is None)
    ack = ButtonAction.decode(_buttons(post)["Acknowledge"])
    results = await asyncio.gather(
        s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq),
        s.actions.add_update(Officer("U0JANE"), ack.target, ack.seq, "On it", True),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ActionError) for r in results) == 1, results
    kinds = [e.kind for e in await s.actions.timeline(ack.target)]
    assert kinds.count("acknowledged") + kinds.count("update") == 1


async def test_unacknowledged_actions_climb_the_ladder_once_per_rung(db_url: str) -> None:
    from datetime import timedelta

    clock = FakeClock(datetime(2026, 12, 23, 15, 0, tzinfo=UTC))  # due Tue 29 Dec 15:00
    telegram, slack = FakeMessenger(), FakeMessenger()
    ladder = {
        "rungs": [
            {"after_hours": 0, "target": "team"},
            {"after_hours": 4, "target": "C0DUTY"},
            {"after_hours": 24, "target": "U0SAM"},
        ]
    }
    async with services_for(db_url, clock, teams=TEAMS, routing=ROUTING, escalation=ladder) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, telegram, slack)
        asha = Chat(s, telegram, outbox, chats["asha@example.org"])
        await _report(asha, "Religion or faith")
        await outbox.drain()

        assert await s.actions.tick() == {}  # not due yet
        clock.set(datetime(2026, 12, 29, 15, 0, tzinfo=UTC))
        assert await s.actions.tick() == {"team": 1}
        assert await s.actions.tick() == {}  # once per rung
        clock.advance(timedelta(hours=3))
        assert await s.actions.tick() == {}
        clock.advance(timedelta(hours=1))
        assert await s.actions.tick() == {"C0DUTY": 1}
        # Down for two days: one rung per tick, never several at once.
        clock.advance(timedelta(days=2))
        assert await s.actions.tick() == {"U0SAM": 1}
        assert await s.actions.tick() == {}
        await outbox.drain()
        duty = [m.plain_text() for r, m, _ in slack.sent if r == "C0DUTY"]
        assert len(duty) == 1 and "TR-2026-12-0001" in duty[0] and "Cohesion Team" in duty[0]
        assert any(r == "U0SAM" for r, _, _ in slack.sent)
        threads = [slack.sent[i][1].plain_text() for i in slack.threads]
        assert any(t.startswith("Reminder: not acknowledged yet") for t in threads)
        kinds = [e.kind for e in await s.actions.timeline(1)]
        assert kinds == ["created", "delivered", "reminder", "escalated", "escalated"]


async def test_acknowledged_actions_do_not_escalate(world: Any) -> None:
    from datetime import timedelta

    s, telegram, slack, outbox, chats, clock = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Religion or faith")
    await outbox.drain()
    post = next(m for r, m, e in slack.sent if r == "C0COHESION" and e is None)
    ack = ButtonAction.decode(_buttons(post)["Acknowledge"])
    await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)
    clock.advance(timedelta(days=30))
    assert await s.actions.tick() == {"reporter-check": 1}  # no reminder, no escalation


async def test_reporter_is_asked_every_four_weeks_and_can_reopen(world: Any) -> None:
    from datetime import timedelta

    s, telegram, slack, outbox, chats, clock = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Religion or faith")
    await outbox.drain()
    post = next(m for r, m, e in slack.sent if r == "C0COHESION" and e is None)
    ack = ButtonAction.decode(_buttons(post)["Acknowledge"])
    await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)
    clock.advance(timedelta(weeks=4) - timedelta(minutes=1))
    assert await s.actions.tick() == {}
    clock.advance(timedelta(minutes=1))
    assert await s.actions.tick() == {"reporter-check": 1}
    assert await s.actions.tick() == {}  # not again for four weeks
    await outbox.drain()
    assert "Is this still a problem?" in asha.last

    await asha.press("Still a problem")
    assert "still a problem" in asha.last and "TR-2026-12-0001" in asha.last
    latest = [m for r, m, e in slack.sent if r == "C0COHESION" and e is not None][-1]
    assert "Acknowledge" in _buttons(latest)  # to be acknowledged again, with a new deadline
    threads = [slack.sent[i][1].plain_text() for i in slack.threads]
    assert any("still a problem" in t for t in threads)
    check = next(i for i, m in enumerate(asha.messages()) if "still a problem?" in m.plain_text())
    await asha.press("Still a problem", index=check)  # the old check again: a reopen once only
    kinds = [e.kind for e in await s.actions.timeline(ack.target)]
    assert kinds.count("reopened") == 1

    # Someone else cannot answer for her.
    yusuf = Chat(s, telegram, outbox, chats["yusuf@example.org"])
    sorted_ = ButtonAction(Kind.SORTED, ack.target).encode()
    await s.conversation.button(yusuf.sender(), sorted_, "1")
    await outbox.drain()
    assert "not valid" in yusuf.last
    assert "reporter_sorted" not in [e.kind for e in await s.actions.timeline(ack.target)]

    await asha.command("status")
    assert "Cohesion Team: waiting to be acknowledged" in asha.last


async def test_changing_the_category_reroutes_and_tells_the_reporter(world: Any) -> None:
    s, telegram, slack, outbox, chats, _ = world
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Religion or faith")
    await outbox.drain()
    post = next(m for r, m, e in slack.sent if r == "C0COHESION" and e is None)
    ack = ButtonAction.decode(_buttons(post)["Change category"])
    with pytest.raises(ActionError, match="already its category"):
        await s.actions.recategorise(Officer("U0JANE"), ack.target, ack.seq, "religion")
    reply = await s.actions.recategorise(Officer("U0JANE"), ack.target, ack.seq, "crime_asb")
    assert reply == (
        "Category changed to Crime or anti-social behaviour; routed to "
        "Neighbourhood Police, Cohesion Team."
    )
    await outbox.drain()
    assert any(
        r == "C0NPT" and "Crime or anti-social behaviour" in m.plain_text()
        for r, m, e in slack.sent
        if e is None
    )
    told = " ".join(telegram.texts_to(asha.chat_id))
    assert "category changed from Religion or faith to Crime or anti-social behaviour" in told

    # Now it turns out to be extremism: only the need-to-know team keeps it.
    latest = [m for r, m, e in slack.sent if r == "C0COHESION" and e is not None][-1]
    again = ButtonAction.decode(_buttons(latest)["Change category"])
    await s.actions.recategorise(Officer("U0JANE"), again.target, again.seq, "protest_extremism")
    await outbox.drain()
    async with s.db.uow() as uow:
        actions = {a.team_key: a for a in await uow.actions.for_report(1)}
        report = await uow.reports.get(1)
    assert report is not None and report.category == "protest_extremism"
    assert actions["prevent"].state == "open"
    assert actions["cohesion"].state == actions["npt"].state == "closed"
    assert actions["npt"].outcome_note.startswith("re-routed")
    assert any(r == "G0PREVENT" for r, m, e in slack.sent if e is None)


async def test_log_only_routing_sends_no_team_anything_and_status_says_so(db_url: str) -> None:
    """Slack off, routing.deliver = "log_only": the report is recorded and routed on paper, no
    team is sent anything, and /status never says "waiting to be acknowledged"."""
    clock = FakeClock(datetime(2026, 12, 23, 15, 0, tzinfo=UTC))
    telegram, slack = FakeMessenger(), FakeMessenger()
    routing = {**ROUTING, "deliver": "log_only"}
    async with services_for(db_url, clock, teams=TEAMS, routing=routing) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, telegram, slack)
        asha = Chat(s, telegram, outbox, chats["asha@example.org"])
        await _report(asha, "Crime or anti-social")
        await outbox.drain()
        assert slack.sent == []
        async with s.db.uow() as uow:
            person = await uow.people.by_email("asha@example.org")
            assert person is not None and person.id is not None
            (report,) = await uow.reports.for_person(person.id)
            assert report.id is not None
            assert list(await uow.actions.for_report(report.id)) == []
        await asha.command("status")
        assert "waiting to be acknowledged" not in asha.last.lower()
        assert "not sent to a team" in asha.last


async def test_team_members_by_email_resolve_through_the_people_import(db_url: str) -> None:
    """A team's members given as emails: the Slack user whose imported person has that email
    may act; anyone else may not."""
    clock = FakeClock(datetime(2026, 12, 23, 15, 0, tzinfo=UTC))
    telegram, slack = FakeMessenger(), FakeMessenger()
    teams = [dict(TEAMS[0], members=["Jane@Example.org"]), *TEAMS[1:]]
    async with services_for(db_url, clock, teams=teams, routing=ROUTING) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")  # Jane is U0JANE
        chats = await link_all(s)
        outbox = dispatcher_for(s, telegram, slack)
        asha = Chat(s, telegram, outbox, chats["asha@example.org"])
        await _report(asha, "Religion or faith")
        await outbox.drain()
        post = next(m for r, m, e in slack.sent if r == "C0COHESION" and e is None)
        ack = ButtonAction.decode(_buttons(post)["Acknowledge"])
        with pytest.raises(ActionError, match="Only members of Cohesion Team"):
            await s.actions.acknowledge(Officer("U0PC"), ack.target, ack.seq)
        await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)
        kinds = [e.kind for e in await s.actions.timeline(ack.target)]
        assert "acknowledged" in kinds


async def test_status_says_not_delivered_until_the_team_has_the_post(world: Any) -> None:
    """Slack keeps the team's post waiting: /status must not claim the team has it."""
    s, telegram, slack, outbox, chats, _ = world
    slack.retry_after["C0COHESION"] = 3600.0  # Slack says: retry in an hour
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await _report(asha, "Religion or faith")
    await outbox.drain()
    assert not [r for r, _, _ in slack.sent if r == "C0COHESION"]
    await asha.command("status")
    assert "Cohesion Team: not delivered to the team yet" in asha.last
    assert "waiting to be acknowledged" not in asha.last


async def test_states_are_stored_as_the_same_text_and_read_back_typed(world: Any) -> None:
    """``ActionState`` is typed in the core and plain text in the table, as it always was."""
    from sqlalchemy import text

    from bot.domain import ActionState, IllegalMove

    s, telegram, slack, outbox, chats, _ = world
    await _report(Chat(s, telegram, outbox, chats["asha@example.org"]), "Religion or faith")
    await outbox.drain()
    (post,) = [m for r, m, e in slack.sent if r == "C0COHESION" and e is None]
    ack = ButtonAction.decode(_buttons(post)["Acknowledge"])

    async def stored() -> str:
        async with s.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT state FROM actions WHERE id = :i"), {"i": ack.target}
                )
            ).one()
        return str(row[0])

    async with s.db.uow() as uow:
        action = await uow.actions.get(ack.target)
        assert action is not None and action.state is ActionState.OPEN
    assert await stored() == "open"
    await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)
    await s.actions.close(Officer("U0JANE"), ack.target, ack.seq + 1, "resolved", "")
    assert await stored() == "closed"
    async with s.db.uow() as uow:
        action = await uow.actions.get(ack.target)
        assert action is not None and action.state is ActionState.CLOSED
        with pytest.raises(IllegalMove):
            action.move_to(ActionState.ACKNOWLEDGED)  # a closed action cannot be acknowledged


async def test_an_admin_alert_reads_only_the_admins(db_url: str) -> None:
    """An alert (one for every unrouted report) goes to the active admins: it reads those, not
    every person with their addresses (a partnership has thousands of reporters)."""
    from sqlalchemy import event, text

    from bot.common import alert_admins

    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        admins = (
            "Ada Admin,admin,all,SWP,ada@example.org,U0ADA\n"
            "Ed Admin,admin,all,SWP,ed@example.org,U0ED\n"
        )
        await s.people.import_csv(PEOPLE_CSV + admins, source="p.csv", actor="t")
        await link_all(s)
        async with s.db.uow() as uow:
            ed = await uow.people.by_email("ed@example.org")
            assert ed is not None
            ed.active = False
            await uow.commit()
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split()).lower())

        engine = s.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            async with s.db.uow() as uow:
                await alert_admins(
                    uow, clock.now(), "check", key="k", platforms=frozenset({"telegram"})
                )
                await uow.commit()
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        reads = [q for q in statements if q.startswith("select") and "from people" in q]
        assert reads and all("people.role =" in q for q in reads), reads
        async with s.db.uow() as uow:
            ada = await uow.people.by_email("ada@example.org")
            assert ada is not None
        async with s.db.engine.connect() as conn:
            keys = await conn.scalars(
                text("SELECT idempotency_key FROM outbox WHERE idempotency_key LIKE 'alert:k:%'")
            )
            assert keys.all() == [f"alert:k:{ada.id}"]  # Ada's; Ed is not active
