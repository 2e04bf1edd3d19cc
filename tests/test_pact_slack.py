"""PACT meetings in Slack, end to end: the chair records a meeting from the button in their DM
(the modal, its errors, what is stored and what the owner teams are told), says it was
cancelled, owner teams report back from their channel, and ``/pact`` gives the Prevent officer
the attendance insight with its chart. Every request is signed and goes to the real Bolt app over
HTTP; Slack and Telegram are local fake servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bot.buttons import ButtonAction, Kind
from bot.clock import FakeClock
from bot.domain import PactMeeting, PactPriority
from bot.pact.rules import PUBLIC_WARNING
from bot.pact.service import MeetingRecord, RecordContext
from handlers.slack.ids import ActionId, ViewId
from handlers.slack.who import who
from sim.fake_slack import FakeSlack, SlackMessage, SlackUser
from sim.scripts import select_value, text_value, until
from sim.world import SimWorld
from tests.helpers import (
    PACT_NEIGHBOURHOODS,
    SLACK_PEOPLE_CSV,
    heath_town_meetings,
    start_slack_world,
    team_slack,
)

EVIL = "Litter <!channel> & fly-tipping <@U0PC> behind the shops"


@dataclass
class Pact:
    """The running bot, its fake Slack, and the set-up every test starts from: an earlier
    recorded meeting (A) that set two priorities, and yesterday's meeting (B) to record."""

    w: SimWorld
    slack: FakeSlack
    url: str
    a: PactMeeting
    b: PactMeeting
    speeding: PactPriority  # owned by Neighbourhood Police
    litter: PactPriority  # owned by the Cohesion Team, with a hostile title
    people: dict[str, int]  # email -> person id

    def user(self, user_id: str) -> SlackUser:
        return SlackUser(self.slack, user_id, self.url)

    async def meeting(self, meeting_id: int) -> PactMeeting:
        async with self.w.services.db.uow() as uow:
            m = await uow.pact.get_meeting(meeting_id)
        assert m is not None
        return m

    async def priority(self, priority_id: int) -> PactPriority:
        async with self.w.services.db.uow() as uow:
            p = await uow.pact.get_priority(priority_id)
        assert p is not None
        return p

    async def open_priorities(self) -> list[PactPriority]:
        async with self.w.services.db.uow() as uow:
            return list(await uow.pact.open_priorities("heath-town"))

    async def audit(self, prefix: str) -> list[tuple[str, str, str | None]]:
        async with self.w.services.db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT actor, action, subject FROM audit_log WHERE action LIKE :p ORDER BY id"
                ),
                {"p": f"{prefix}%"},
            )
            return [(str(a), str(b), c) for a, b, c in rows.all()]

    async def prompt(self) -> SlackMessage:
        """The chair's "How did it go?" DM for meeting B, with Record / It was cancelled."""
        return await until(
            lambda: next(
                (m for m in self.slack.dm("U0CHRIS") if ActionId.PACT_RECORD in m.action_ids()),
                None,
            )
        )


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack(
        ("C0SWP", "swp", ["U0SAM", "U0MARK"]),
        ("C0GENERAL", "general", ["U0SAM", "U0MARK", "U0PC"]),
    ) as fake:
        yield fake


@pytest.fixture
async def pact(
    db_url: str, fake_telegram: Any, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[Pact]:
    # The clock: Tuesday 1 December 2026, 09:30.
    w, port = await start_slack_world(
        db_url,
        fake_telegram,
        slack,
        clock,
        people=SLACK_PEOPLE_CSV,
        pact=PACT_NEIGHBOURHOODS,
        summaries={"channels": ["C0SWP"]},  # where /pact answers are posted for all to see
    )
    try:
        async with w.services.db.uow() as uow:
            people = {p.email: p.id for p in await uow.people.all() if p.id is not None}
        a, b = await heath_town_meetings(
            w.services, second_venue="Heath Town <b>Baptist</b> Church", second_priority=EVIL
        )
        # Meeting A was recorded earlier (in Slack, by Chris): it set two priorities.
        speeding, litter = await _open(w)  # the two new, open priorities
        assert speeding.title.startswith("Speeding") and litter.title == EVIL
        yield Pact(
            w, slack, f"http://127.0.0.1:{port}/slack/events", a, b, speeding, litter, people
        )
    finally:
        await w.stop()


async def _open(w: SimWorld) -> list[PactPriority]:
    async with w.services.db.uow() as uow:
        return list(await uow.pact.open_priorities("heath-town"))


async def _prompted(p: Pact) -> SlackMessage:
    """Run the PACT tick (meeting B has ended: its chair is asked to record it) and wait for the
    chair's DM."""
    fired = await p.w.services.pact.tick()
    assert fired["prompts"] == 1
    await p.w.settle()
    return await p.prompt()


def _count(block: str, value: str) -> dict[str, dict[str, Any]]:
    return {block: {block: {"type": "number_input", "value": value}}}


def _partners(*person_ids: int) -> dict[str, dict[str, Any]]:
    return {
        "partners": {
            "partners": {
                "type": "checkboxes",
                "selected_options": [{"value": str(i)} for i in person_ids],
            }
        }
    }


def _record_values(p: Pact, public: str, new: str, **more: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        **_count("public", public),
        **_count("new", new),
        **_partners(p.people["asha@example.org"]),
        **select_value(f"review_{p.speeding.id}", "closed"),
        **text_value(f"reviewnote_{p.speeding.id}", "Speed checks on six evenings; 41 stopped."),
        **select_value(f"review_{p.litter.id}", "carried"),
        **text_value(f"reviewnote_{p.litter.id}", "Alley cleared once; it came back."),
    }
    values.update(more)
    return values


async def _modal(slack: FakeSlack, callback_id: str, before: int) -> dict[str, Any]:
    views = await until(
        lambda: [v for v in slack.views_opened()[before:] if v["callback_id"] == callback_id]
    )
    return dict(views[-1])


# --------------------------------------------------------------------- a) recording


async def test_the_chair_records_the_meeting_in_a_modal(pact: Pact) -> None:
    p, slack = pact, pact.slack
    prompt = await _prompted(p)
    assert prompt.action_ids() == [ActionId.PACT_RECORD, ActionId.PACT_CANCELLED]
    chair = p.user("U0CHRIS")
    assert await chair.click(prompt, ActionId.PACT_RECORD) == 200
    modal = await _modal(slack, ViewId.PACT_RECORD, 0)
    assert modal["private_metadata"] == str(p.b.id)
    assert modal["title"]["text"] == "Record the PACT meeting"
    blocks = {b["block_id"]: b for b in modal["blocks"]}
    s, li = p.speeding.id, p.litter.id
    assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == [
        "public",
        "new",
        "partners",
        f"review_{s}",
        f"reviewnote_{s}",
        f"review_{li}",
        f"reviewnote_{li}",
        "priority_1",
        "owner_1",
        "priority_2",
        "owner_2",
        "priority_3",
        "owner_3",
    ]
    heading = modal["blocks"][0]["elements"][0]
    assert heading["type"] == "plain_text"
    # The chair is told, before the priorities, that what they write goes public.
    warning = PUBLIC_WARNING
    notes = [b for b in modal["blocks"] if b["type"] == "context"]
    assert any(e["text"] == warning for b in notes for e in b["elements"])
    first_review = [b["block_id"] for b in modal["blocks"]].index(f"review_{s}")
    assert any(
        e["text"] == warning for b in modal["blocks"][:first_review] for e in b.get("elements", [])
    )
    assert "Heath Town PACT meeting, Mon 30 Nov 2026, 18:30" in heading["text"]
    assert "Heath Town <b>Baptist</b> Church" in heading["text"]
    public = blocks["public"]["element"]
    assert public["type"] == "number_input" and public["is_decimal_allowed"] is False
    assert (public["min_value"], public["max_value"]) == ("0", "1000")
    partners = blocks["partners"]["element"]
    assert partners["type"] == "checkboxes" and blocks["partners"].get("optional") is True
    assert [(o["value"], o["text"]["text"]) for o in partners["options"]] == [
        (str(p.people["asha@example.org"]), "Cllr Asha Patel"),
        (str(p.people["dan@example.org"]), "PC Dan Lee"),
    ]
    # The hostile title is shown as plain text (never parsed as a mention), with its owner.
    label = blocks[f"review_{li}"]["label"]
    assert label == {"type": "plain_text", "text": f"Priority: {EVIL} (Cohesion Team)"}
    assert [o["value"] for o in blocks[f"review_{li}"]["element"]["options"]] == [
        "closed",
        "carried",
    ]
    assert "initial_value" not in blocks[f"reviewnote_{li}"]["element"]  # nobody reported back
    assert [o["value"] for o in blocks["owner_1"]["element"]["options"]] == [
        "cohesion",
        "npt",
        "prevent",
    ]
    assert '"mrkdwn"' not in json.dumps(modal)

    # More new attendees than people present: an error on "new", nothing stored.
    status, body = await chair.submit_view(modal, _record_values(p, "5", "9"))
    assert status == 200 and body is not None and body["response_action"] == "errors"
    assert set(body["errors"]) == {"new"} and "cannot be more than" in body["errors"]["new"]
    # A new priority without an owner, and an owner without a priority: errors on their blocks.
    status, body = await chair.submit_view(
        modal,
        _record_values(
            p,
            "14",
            "4",
            **text_value("priority_1", "Drug dealing near the park"),
            **select_value("owner_3", "npt"),
        ),
    )
    assert body is not None and set(body["errors"]) == {"priority_1", "priority_3"}
    assert "owns" in body["errors"]["priority_1"]
    # A review without what was done: the core's error lands on that priority's block.
    status, body = await chair.submit_view(
        modal, _record_values(p, "14", "4", **text_value(f"reviewnote_{s}", ""))
    )
    assert body is not None and set(body["errors"]) == {f"review_{s}"}
    # A title too short in the second slot (the first left empty) is named on its own block.
    status, body = await chair.submit_view(
        modal,
        _record_values(
            p, "14", "4", **text_value("priority_2", "ok"), **select_value("owner_2", "npt")
        ),
    )
    assert body is not None and set(body["errors"]) == {"priority_2"}
    m = await p.meeting(p.b.id or 0)
    assert m.status == "scheduled" and m.public_attendees is None
    assert len(await p.open_priorities()) == 2

    # The right answers.
    drugs = "Drug dealing near the park <@U0JANE> & the <https://x.example|underpass>"
    status, body = await chair.submit_view(
        modal,
        _record_values(
            p,
            "14",
            "4",
            **text_value("priority_2", drugs),
            **select_value("owner_2", "cohesion"),
        ),
    )
    assert status == 200 and body is None
    m = await p.meeting(p.b.id or 0)
    assert m.status == "recorded" and (m.public_attendees, m.new_attendees) == (14, 4)
    assert m.partners_invited == 2
    async with p.w.services.db.uow() as uow:
        assert await uow.pact.attendance(p.b.id or 0) == [p.people["asha@example.org"]]
    closed = await p.priority(p.speeding.id or 0)
    assert closed.status == "closed" and closed.outcome.startswith("Speed checks")
    carried = await p.priority(p.litter.id or 0)
    assert carried.status == "open" and carried.carried == 1
    assert [(x.title, x.owner_team) for x in await p.open_priorities()] == [
        (EVIL, "cohesion"),
        (drugs, "cohesion"),
    ]
    insight = await p.w.services.pact.insight("2026-11", "2026-11", "heath-town")
    assert sorted(row.public for row in insight.meetings) == [12, 14]

    # Once the outbox is dispatched, the owner team hears about its new priority (escaped).
    await p.w.settle()
    post = await until(
        lambda: next(
            (
                x
                for x in slack.top_level("C0COHESION")
                if "New PACT priority" in x.text and "Drug dealing" in x.text
            ),
            None,
        )
    )
    shown = json.dumps(post.blocks)
    assert "&lt;@U0JANE&gt;" in shown and "&lt;https://x.example|underpass&gt;" in shown
    assert "<@U0JANE>" not in shown and "<@U0JANE>" not in post.text

    # The same modal submitted again: refused, nothing recorded twice.
    status, body = await chair.submit_view(modal, _record_values(p, "99", "1"))
    assert body is not None and "already recorded" in body["errors"]["public"]
    assert (await p.meeting(p.b.id or 0)).public_attendees == 14
    assert [a for _, a, _ in await p.audit("pact.record")] == ["pact.record", "pact.record"]


# --------------------------------------------------------------------- b) c) refusals


async def test_only_the_chair_may_record(pact: Pact) -> None:
    p, slack = pact, pact.slack
    prompt = await _prompted(p)
    jane = p.user("U0JANE")
    assert await jane.click(prompt, ActionId.PACT_RECORD) == 200
    refusal = await until(lambda: slack.ephemerals("U0JANE"))
    assert "Only the chair of this meeting can record it" in refusal[0]["text"]
    assert refusal[0]["channel"] == slack._dms["U0JANE"]  # in her own DM with the bot
    assert slack.views_opened() == []

    # Even with the chair's modal in hand (forged), her submission is refused and stores nothing.
    chair = p.user("U0CHRIS")
    await chair.click(prompt, ActionId.PACT_RECORD)
    modal = await _modal(slack, ViewId.PACT_RECORD, 0)
    _, body = await jane.submit_view(modal, _record_values(p, "14", "4"))
    assert body is not None and "Only the chair" in body["errors"]["public"]
    # Someone Slack knows but we do not: refused too.
    _, body = await p.user("U0EVE").submit_view(modal, _record_values(p, "14", "4"))
    assert body is not None and "only for people invited" in body["errors"]["public"]
    m = await p.meeting(p.b.id or 0)
    assert m.status == "scheduled" and m.public_attendees is None
    chris = p.people["chris@example.org"]
    assert await p.audit("pact.record") == [
        (f"person:{chris}", "pact.record", f"pact-meeting:{p.a.id}")
    ]

    # Nor may she say it was cancelled.
    assert await jane.click(prompt, ActionId.PACT_CANCELLED) == 200
    await until(lambda: len(slack.ephemerals("U0JANE")) == 2)
    assert "Only the chair" in slack.ephemerals("U0JANE")[1]["text"]
    assert (await p.meeting(p.b.id or 0)).status == "scheduled"


async def test_a_meeting_in_the_future_cannot_be_recorded(pact: Pact) -> None:
    p, slack = pact, pact.slack
    prompt = await _prompted(p)
    future = await p.w.services.pact.schedule(
        neighbourhood="heath-town",
        on="2026-12-20",
        at="11:00",
        venue="Heath Town Library",
        format="street_briefing",
        chair_email=None,
        actor="t",
    )
    assert future.id is not None
    chair = p.user("U0CHRIS")
    value = ButtonAction(Kind.PACT_RECORD, future.id).encode()
    assert await chair.click(prompt, ActionId.PACT_RECORD, value) == 200
    refusal = await until(lambda: slack.ephemerals("U0CHRIS"))
    assert "has not happened yet" in refusal[0]["text"]
    assert slack.views_opened() == []
    # A modal for it (made by hand) is refused on submit as well.
    await chair.click(prompt, ActionId.PACT_RECORD)
    modal = await _modal(slack, ViewId.PACT_RECORD, 0)
    forged = {**modal, "id": None, "private_metadata": str(future.id)}
    _, body = await chair.submit_view(forged, _record_values(p, "14", "4"))
    assert body is not None and "has not happened yet" in body["errors"]["public"]
    assert (await p.meeting(future.id)).status == "scheduled"


# --------------------------------------------------------------------- d) cancelled


async def test_it_was_cancelled(pact: Pact) -> None:
    p, slack = pact, pact.slack
    prompt = await _prompted(p)
    assert await p.user("U0CHRIS").click(prompt, ActionId.PACT_CANCELLED) == 200
    told = await until(lambda: slack.ephemerals("U0CHRIS"))
    assert "was cancelled" in told[0]["text"] and "stay open" in told[0]["text"]
    m = await p.meeting(p.b.id or 0)
    assert m.status == "cancelled" and m.public_attendees is None
    assert len(await p.open_priorities()) == 2  # carried to the next meeting as they are
    assert [a for _, a, _ in await p.audit("pact.cancelled")] == ["pact.cancelled"]


# --------------------------------------------------------------------- e) report back


async def test_owner_team_reports_back(pact: Pact) -> None:
    p, slack = pact, pact.slack
    service = p.w.services.pact
    await service.cancelled_by(who("U0CHRIS"), p.b.id or 0)  # B did not happen; C is on Saturday
    c = await service.schedule(
        neighbourhood="heath-town",
        on="2026-12-05",
        at="10:30",
        venue="Heath Town Library",
        format="in_person",
        chair_email=None,
        actor="t",
    )
    assert (await service.tick())["owners"] == 1
    await p.w.settle()
    ask = await until(
        lambda: next(
            (
                m
                for m in slack.top_level("C0COHESION")
                if ActionId.PACT_REPORT_BACK in m.action_ids()
            ),
            None,
        )
    )
    assert "please report back" in ask.text
    assert PUBLIC_WARNING in ask.text  # owner teams know a report may be published
    assert "&lt;!channel&gt;" in json.dumps(ask.blocks) and "<!channel>" not in ask.text

    # Someone outside the owning team is refused, in the channel, only to them.
    assert await p.user("U0PC").click(ask, ActionId.PACT_REPORT_BACK) == 200
    refusal = await until(lambda: slack.ephemerals("U0PC"))
    assert refusal[0]["channel"] == "C0COHESION"
    assert "Only the owning team (cohesion)" in refusal[0]["text"]
    assert slack.views_opened() == []

    jane = p.user("U0JANE")
    assert await jane.click(ask, ActionId.PACT_REPORT_BACK) == 200
    modal = await _modal(slack, ViewId.PACT_REPORT_BACK, 0)
    assert modal["private_metadata"] == str(p.litter.id)
    assert PUBLIC_WARNING in json.dumps(modal["blocks"])
    element = modal["blocks"][-1]["element"]
    assert (element["type"], element["multiline"], element["max_length"]) == (
        "plain_text_input",
        True,
        1000,
    )
    assert modal["blocks"][0]["elements"][0] == {
        "type": "plain_text",
        "text": f"Heath Town: {EVIL}",
    }
    status, body = await jane.submit_view(modal, text_value("text", "ok"))
    assert body is not None and body["errors"].keys() == {"text"}
    # The modal, submitted by someone outside the team: refused on the same block.
    status, body = await p.user("U0PC").submit_view(modal, text_value("text", "Nothing to do."))
    assert body is not None and "Only the owning team" in body["errors"]["text"]
    assert (await p.priority(p.litter.id or 0)).report_back == ""

    said = "Veolia cleared the alley on 2 Dec <!here>; CCTV request made."
    status, body = await jane.submit_view(modal, text_value("text", said))
    assert status == 200 and body is not None and body["response_action"] == "update"
    assert "Thank you" in json.dumps(body["view"])
    stored = await p.priority(p.litter.id or 0)
    assert (stored.report_back, stored.report_back_by) == (said, "U0JANE")
    async with p.w.services.db.uow() as uow:
        sheet = (await service.briefing(uow, c)).plain_text()
    assert f"We did: {said}" in sheet and "has not reported back" in sheet  # speeding has not

    # The chair's next record modal starts from what the team said.
    p.w.clock.advance(timedelta(days=4, hours=3))  # C is over
    chair = p.user("U0CHRIS")
    assert (await service.tick())["prompts"] >= 1
    await p.w.settle()
    prompt = await until(
        lambda: next(
            (
                m
                for m in slack.dm("U0CHRIS")
                if ActionId.PACT_RECORD in m.action_ids()
                and m.element(ActionId.PACT_RECORD)[1]["value"]
                == ButtonAction(Kind.PACT_RECORD, c.id or 0).encode()
            ),
            None,
        )
    )
    before = len(slack.views_opened())
    await chair.click(prompt, ActionId.PACT_RECORD)
    record = await _modal(slack, ViewId.PACT_RECORD, before)
    note = next(b for b in record["blocks"] if b["block_id"] == f"reviewnote_{p.litter.id}")
    assert note["element"]["initial_value"] == said


# --------------------------------------------------------------------- f) /pact


async def test_pact_insight_command(pact: Pact) -> None:
    p, slack = pact, pact.slack
    sam = p.user("U0SAM")
    status, body = await sam.slash("/pact", "", channel_id="C0SWP")
    assert status == 200 and "Working on it" in body
    (upload,) = await until(lambda: slack.uploads())
    assert upload["channel_id"] == "C0SWP" and upload["filename"] == "pact_attendance.png"
    assert upload["content"][:4] == b"\x89PNG"
    assert "PACT meetings, 2026-01 to 2026-12" in upload["initial_comment"]

    # A neighbourhood with no recorded meeting: the text only, no chart.
    await sam.slash("/pact", "penn", channel_id="C0SWP")
    posted = await until(lambda: slack.top_level("C0SWP"))
    assert "PACT meetings, 2026-01 to 2026-12 (Penn)" in posted[0].text
    assert len(slack.uploads()) == 1
    # A neighbourhood that does not exist is named.
    await sam.slash("/pact", "Narnia", channel_id="C0SWP")
    error = await until(lambda: slack.ephemerals("U0SAM"))
    assert "'Narnia' is not known" in error[0]["text"]

    # A councillor is refused (and that is audited); a stranger is refused (and not).
    await p.user("U0MARK").slash("/pact", "", channel_id="C0SWP")
    refusal = await until(lambda: slack.ephemerals("U0MARK"))
    assert refusal[0]["text"] == (
        "PACT insight is for the Prevent and Cohesion Officer and admins."
    )
    await p.user("U0EVE").slash("/pact", "", channel_id="C0SWP")
    stranger = await until(lambda: slack.ephemerals("U0EVE"))
    assert "only for people invited" in stranger[0]["text"]
    assert len(slack.uploads()) == 1 and len(slack.top_level("C0SWP")) == 1
    sam_id, mark_id = p.people["sam@example.org"], p.people["mark@example.org"]
    assert [(a, b) for a, b, _ in await p.audit("pact.insight")] == [
        (f"person:{sam_id}", "pact.insight.view"),
        (f"person:{sam_id}", "pact.insight.view"),
        (f"person:{sam_id}", "pact.insight.view"),
        (f"person:{mark_id}", "pact.insight.refused"),
    ]


async def test_pact_outside_a_summary_channel_answers_only_the_asker(pact: Pact) -> None:
    """/pact typed in a channel that is not a summary channel: nothing is posted there; Sam
    alone sees the answer, and the chart comes to his direct messages with the bot."""
    p, slack = pact, pact.slack
    sam = p.user("U0SAM")
    status, body = await sam.slash("/pact", "", channel_id="C0GENERAL")
    assert status == 200 and "Working on it" in body
    (told,) = await until(lambda: slack.ephemerals("U0SAM"))
    assert told["channel"] == "C0GENERAL"
    assert "PACT meetings, 2026-01 to 2026-12" in told["text"]
    assert "direct messages" in told["text"]
    (upload,) = await until(lambda: slack.uploads())
    assert upload["channel_id"] == slack._dms["U0SAM"]
    assert upload["filename"] == "pact_attendance.png"
    # Without a chart (no meeting recorded in Penn): the ephemeral answer only.
    await sam.slash("/pact", "penn", channel_id="C0GENERAL")
    told = (await until(lambda: slack.ephemerals("U0SAM")[1:]))[0]
    assert "PACT meetings, 2026-01 to 2026-12 (Penn)" in told["text"]
    assert "direct messages" not in told["text"]
    assert slack.messages("C0GENERAL") == [] and len(slack.uploads()) == 1
    for call in slack.calls:
        assert "C0GENERAL" not in json.dumps(call.params), call.method
    assert [b for _, b, _ in await p.audit("pact.insight")] == ["pact.insight.view"] * 2


# --------------------------------------------------------------------- g) forged payloads


async def test_forged_or_malformed_values_change_nothing(pact: Pact) -> None:
    p, slack = pact, pact.slack
    prompt = await _prompted(p)
    chair = p.user("U0CHRIS")
    b = p.b.id or 0
    forged = [
        (ActionId.PACT_RECORD, "garbage"),
        (ActionId.PACT_RECORD, ""),
        (ActionId.PACT_RECORD, "2.M.1.0.0"),  # unknown codec version
        (ActionId.PACT_RECORD, ButtonAction(Kind.PACT_CANCELLED, b).encode()),  # wrong kind
        (ActionId.PACT_CANCELLED, ButtonAction(Kind.PACT_RECORD, b).encode()),  # wrong kind
        (ActionId.PACT_CANCELLED, f"1.N.{b}.0.0" + "0" * 80),  # too long
        (ActionId.PACT_CANCELLED, "1.N.-1.0.0"),
    ]
    for action_id, value in forged:
        assert await chair.click(prompt, action_id, value) == 200
    # An owner's Report back button, forged: out of range, or of another kind.
    button = {
        "type": "button",
        "action_id": ActionId.PACT_REPORT_BACK,
        "text": {"type": "plain_text", "text": "Report back"},
        "value": "",
    }
    blocks = [{"type": "actions", "block_id": "b", "elements": [button]}]
    ask = SlackMessage("C0COHESION", "1.000100", "x", blocks, None, "U0BOT")
    jane = p.user("U0JANE")
    for value in (
        f"1.B.{2**53 + 1}.0.0",
        ButtonAction(Kind.PACT_RECORD, p.litter.id or 0).encode(),
    ):
        assert await jane.click(ask, ActionId.PACT_REPORT_BACK, value) == 200
    # A modal whose metadata was tampered with is closed without storing anything.
    await chair.click(prompt, ActionId.PACT_RECORD)
    modal = await _modal(slack, ViewId.PACT_RECORD, 0)
    for meta in ("", "x", "1; DROP TABLE pact_meetings", "9" * 40):
        status, body = await chair.submit_view(
            {**modal, "id": None, "private_metadata": meta}, _record_values(p, "14", "4")
        )
        assert status == 200 and body is None
    await asyncio.sleep(0.3)
    assert len(slack.views_opened()) == 1  # only the genuine click opened a modal
    assert slack.ephemerals("U0CHRIS") == [] and slack.ephemerals("U0JANE") == []
    assert (await p.meeting(b)).status == "scheduled"
    assert await p.audit("pact.cancelled") == []
    assert len(await p.audit("pact.record")) == 1  # meeting A's, from the set-up

    # The genuine button still works.
    await chair.click(prompt, ActionId.PACT_CANCELLED)
    await until(lambda: slack.ephemerals("U0CHRIS"))
    assert (await p.meeting(b)).status == "cancelled"


# --------------------------------------------------------------------- Slack's limits


def test_a_big_neighbourhood_fits_slacks_limits() -> None:
    """More than 10 partners: a multi-select (checkboxes take 10); more open priorities than a
    modal's 100 blocks hold: the first ones, and a note saying how many are left out."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.config import NeighbourhoodConfig
    from handlers.slack.pact_views import read_record, record_modal

    now = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    meeting = PactMeeting("big", now, now, "Hall " * 100, "online", 1, 0, "evening", "t", now, id=7)
    priorities = [
        PactPriority("big", 1, f"Priority {i} " + "x" * 280, "npt", now, id=100 + i)
        for i in range(60)
    ]
    context = RecordContext(
        meeting,
        NeighbourhoodConfig(key="big", name="Big", wards=["Park"]),
        priorities,
        [(i, f"Partner {i} " + "y" * 100) for i in range(1, 13)],
        [("npt", "Neighbourhood Police")],
    )
    modal = record_modal(context, 1000, ZoneInfo("Europe/London"))
    blocks = modal["blocks"]
    assert len(blocks) <= 100
    partners = next(b for b in blocks if b.get("block_id") == "partners")["element"]
    assert partners["type"] == "multi_static_select" and len(partners["options"]) == 12
    assert all(len(o["text"]["text"]) <= 75 for o in partners["options"])
    reviews = [b for b in blocks if b.get("block_id", "").startswith("review_")]
    assert 40 <= len(reviews) < 60
    assert f"{60 - len(reviews)} more open priorities" in blocks[-7]["elements"][0]["text"]
    assert all(len(b["label"]["text"]) <= 2000 for b in blocks if b["type"] == "input")

    state: dict[str, dict[str, dict[str, Any]]] = {
        "public": {"public": {"type": "number_input", "value": "30"}},
        "new": {"new": {"type": "number_input", "value": "2"}},
        "partners": {
            "partners": {
                "type": "multi_static_select",
                "selected_options": [{"value": "3"}, {"value": "11"}],
            }
        },
        "review_100": {
            "review_100": {"type": "static_select", "selected_option": {"value": "closed"}}
        },
        "reviewnote_100": {"reviewnote_100": {"type": "plain_text_input", "value": " Done. "}},
        "priority_3": {"priority_3": {"type": "plain_text_input", "value": "Parking"}},
        "owner_3": {"owner_3": {"type": "static_select", "selected_option": {"value": "npt"}}},
    }
    record, errors, slots = read_record({"state": {"values": state}}, 1000)
    assert errors == {} and slots == [3]
    assert record == MeetingRecord(30, 2, [3, 11], [(100, "closed", "Done.")], [("Parking", "npt")])
    state["public"]["public"]["value"] = "1,001"
    record, errors, _ = read_record({"state": {"values": state}}, 1000)
    assert record is None and "more than this bot accepts" in errors["public"]


async def test_invitations_with_ics_and_report_back_requests_reach_slack(
    pact: Pact, clock: FakeClock
) -> None:
    """Three days before a meeting its Slack-only chair and partners get the invitation with the
    .ics file in their DMs, and each open priority's owner team is asked, in its channel, to
    report back (the hostile title escaped). A second tick sends nothing twice."""
    c = await pact.w.services.pact.schedule(
        neighbourhood="heath-town", on="2026-12-03", at="18:30", venue="Heath Town Library",
        format="online", chair_email=None, actor="t",
    )  # fmt: skip
    for _ in range(2):
        await pact.w.services.pact.tick()
        await pact.w.settle()
    ics = [u for u in pact.slack.uploads() if u["filename"].endswith(".ics")]
    dms = {pact.slack._dms[u] for u in ("U0CHRIS", "U0PC")}
    assert {u["channel_id"] for u in ics} == dms and len(ics) == 2
    body = bytes(ics[0]["content"]).decode()
    assert "DTSTART;TZID=Europe/London:20261203T183000" in body
    assert "Heath Town PACT meeting" in (ics[0]["initial_comment"] or "")
    asks = {
        channel: [m for m in pact.slack.top_level(channel) if "please report back" in m.text]
        for channel in ("C0NPT", "C0COHESION")
    }
    assert [len(v) for v in asks.values()] == [1, 1]
    litter = asks["C0COHESION"][0]
    assert ActionId.PACT_REPORT_BACK in litter.action_ids()
    rendered = json.dumps(litter.blocks)
    assert "<!channel>" not in rendered and "&lt;!channel&gt;" in rendered
    assert c.id is not None


async def test_a_moved_meeting_updates_slack_invitations_and_tells_the_owner_teams(
    pact: Pact, clock: FakeClock
) -> None:
    """After the invitations and report-back requests went out, a move sends the chair and the
    partner one updated .ics each in their DMs (same UID, SEQUENCE:1, METHOD:PUBLISH as the
    invitation, with its VTIMEZONE) and tells each owner team asked the new date; the same move
    again sends nothing; a cancellation publishes STATUS:CANCELLED and tells the teams the
    meeting is off."""
    service = pact.w.services.pact
    c = await service.schedule(
        neighbourhood="heath-town", on="2026-12-03", at="18:30", venue="Heath Town Library",
        format="online", chair_email=None, actor="t",
    )  # fmt: skip
    assert c.id is not None
    await service.tick()
    await pact.w.settle()
    dms = {pact.slack._dms[u] for u in ("U0CHRIS", "U0PC")}

    def files() -> list[str]:
        return [
            bytes(u["content"]).decode()
            for u in pact.slack.uploads()
            if u["filename"].endswith(".ics")
        ]

    def notes(channel: str, words: str) -> list[SlackMessage]:
        return [m for m in pact.slack.top_level(channel) if words in m.text]

    assert len(files()) == 2
    [uid] = {line for body in files() for line in body.splitlines() if line.startswith("UID:")}
    await service.move(c.id, on="2026-12-04", at="19:00", venue="Heath Town Baths", actor="t")
    await pact.w.settle()
    await service.move(c.id, on="2026-12-04", at="19:00", venue="Heath Town Baths", actor="t")
    await service.tick()
    await pact.w.settle()
    uploads = [u for u in pact.slack.uploads() if u["filename"].endswith(".ics")]
    assert len(uploads) == 4 and {u["channel_id"] for u in uploads[2:]} == dms
    for body in files()[2:]:
        assert "METHOD:PUBLISH" in body and "SEQUENCE:1" in body
        assert uid.startswith(f"UID:pact-{c.id}-") and uid in body.splitlines()
        assert "BEGIN:VTIMEZONE" in body and "TZID:Europe/London" in body
        assert "DTSTART;TZID=Europe/London:20261204T190000" in body
        assert "LOCATION:Heath Town Baths" in body
    assert "Moved: Heath Town PACT meeting" in (uploads[2]["initial_comment"] or "")
    for channel in ("C0NPT", "C0COHESION"):
        [moved] = notes(channel, "has moved")
        assert "Fri 04 Dec 2026, 19:00 at Heath Town Baths" in moved.text

    await service.cancel(c.id, actor="t")
    await pact.w.settle()
    assert len(files()) == 6
    for body in files()[4:]:
        assert "METHOD:PUBLISH" in body and "SEQUENCE:2" in body and "STATUS:CANCELLED" in body
        assert uid in body.splitlines() and "METHOD:CANCEL" not in body
    for channel in ("C0NPT", "C0COHESION"):
        assert len(notes(channel, "is cancelled")) == 1
