"""The guided conversation, driven through the core service (the Messenger port is faked)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Services
from bot.clock import FakeClock
from bot.common import Outcome, Sender
from storage import tables
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for

_updates = itertools.count(50_000)


class Chat:
    """One person's chat, seen through the core service and the fake messenger."""

    def __init__(self, s: Services, messenger: FakeMessenger, outbox: Any, chat_id: int) -> None:
        self.s, self.messenger, self.outbox, self.chat_id = s, messenger, outbox, chat_id
        self.last_outcome = Outcome()

    def sender(self, update_id: int | None = None) -> Sender:
        uid = next(_updates) if update_id is None else update_id
        return Sender("telegram", self.chat_id, self.chat_id, uid)

    def messages(self) -> list[Any]:
        return [m for r, m, _ in self.messenger.sent if r == str(self.chat_id)]

    @property
    def last(self) -> str:
        return self.messages()[-1].plain_text()

    async def press(self, label: str, index: int = -1) -> Outcome:
        message = self.messages()[index]
        for row in message.buttons:
            for b in row:
                if b.label == label or label.lower() in b.label.lower():
                    self.last_outcome = await self.s.conversation.button(
                        self.sender(), b.data, "77"
                    )
                    await self.outbox.drain()
                    return self.last_outcome
        raise AssertionError(
            f"no button {label!r} in {[b.label for r in message.buttons for b in r]}"
        )

    async def say(self, text: str, update_id: int | None = None) -> Outcome:
        self.last_outcome = await self.s.conversation.text(self.sender(update_id), text)
        await self.outbox.drain()
        return self.last_outcome

    async def command(self, name: str) -> Outcome:
        self.last_outcome = await self.s.conversation.command(self.sender(), name)
        await self.outbox.drain()
        return self.last_outcome


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> Any:
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        yield s, messenger, outbox, chats


async def _answer_all(chat: Chat, *, ward: str = "Heath Town", reported: str = "No") -> None:
    await chat.press(ward)
    await chat.press("Religion or faith")
    await chat.say("Hostile leaflets about the mosque extension on two streets.")
    await chat.press("Skip")  # where
    await chat.say("Since Saturday")
    await chat.press("Evidenced")
    await chat.press("2 Tension")
    await chat.press("Social media")
    await chat.press("Skip")  # impact
    await chat.press(reported)


async def test_full_return_with_back_edit_and_two_tensions(world: Any) -> None:
    s, messenger, outbox, chats = world
    chat = Chat(s, messenger, outbox, chats["asha@example.org"])
    assert "December 2026" in chat.last and "999" in chat.last
    await chat.press("Report a tension")
    assert "Question 1 of 12" in chat.last and "Which ward" in chat.last
    await chat.press("Heath Town")
    await chat.press("Race or ethnicity")
    await chat.press("Back")
    assert "What kind of tension" in chat.last and "Current answer: Race or ethnicity" in chat.last
    await chat.press("Religion or faith")
    assert "What is happening" in chat.last
    await chat.say("Hostile leaflets about the mosque extension on two streets.")
    for step in (
        "Skip",
        None,
        "Evidenced",
        "2 Tension",
        "Social media",
        "Skip",
        "Yes, to the police",
        None,
        "Yes",
        "No, keep me anonymous",
    ):
        if step is None:
            await chat.say("CR/555/26" if "reference" in chat.last else "Since Saturday")
        else:
            await chat.press(step)
    assert "Please check your report" in chat.last
    assert "Their reference: CR/555/26" in chat.last
    await chat.press("Edit an answer")
    await chat.press("Already reported")
    await chat.press("No")  # the reference question no longer applies, and its answer is dropped
    assert "Please check" in chat.last and "CR/555/26" not in chat.last
    await chat.press("Add another tension")
    assert "Tension 1 is saved" in chat.last and "Tension 2" in chat.last
    await _answer_all(chat, reported="Don't know")
    await chat.press("Yes")
    await chat.press("Yes, share my name")
    assert "Please check tension 2" in chat.last and "1 earlier tension" in chat.last
    outcome = await chat.press("Submit all")
    assert outcome.toast == "Submitted. Thank you."
    assert "TR-2026-12-0001" in chat.last and "TR-2026-12-0002" in chat.last
    async with s.db.uow() as uow:
        reports = await uow.reports.for_person(1)
        assert sorted(r.reference for r in reports) == ["TR-2026-12-0001", "TR-2026-12-0002"]
        assert {r.consent_share for r in reports} == {True, False}
        assert all(r.source == "monthly" and r.ward == "Heath Town" for r in reports)
        delivery = await uow.deliveries.get_for(1, 1)
        assert delivery is not None and delivery.status == "responded"
    status = await chat.command("status")
    assert status.toast is None
    assert "TR-2026-12-0002" in chat.last and "answered, thank you" in chat.last


async def test_stale_and_forged_buttons_change_nothing(world: Any) -> None:
    s, messenger, outbox, chats = world
    asha = Chat(s, messenger, outbox, chats["asha@example.org"])
    await asha.press("Report a tension")
    await asha.press("Heath Town")
    # The ward question's button again (seq moved on): refused, no state change.
    first_question = next(m for m in asha.messages() if "Which ward" in m.plain_text())
    data = first_question.buttons[0][0].data
    out = await s.conversation.button(asha.sender(), data, "77")
    assert out.toast and "moved on" in out.toast
    async with s.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None and conv.step == "category"
    # Yusuf presses a button from Asha's conversation: refused.
    yusuf = Chat(s, messenger, outbox, chats["yusuf@example.org"])
    current = asha.messages()[-1].buttons[0][0].data
    out = await s.conversation.button(yusuf.sender(), current, "77")
    assert out.toast == "That button is not valid any more."
    out = await s.conversation.button(yusuf.sender(), "1.a.1.1.<script>", "77")
    assert out.toast == "That button is not valid any more."


async def test_bad_text_keeps_the_conversation_where_it_was(world: Any) -> None:
    s, messenger, outbox, chats = world
    chat = Chat(s, messenger, outbox, chats["sarah@example.org"])
    await chat.press("Report a tension")
    await chat.say("Blakenhall please")  # a choice question answered in text
    assert "Please use the buttons" in chat.last and "Which ward" in chat.last
    await chat.press("Blakenhall")
    await chat.press("Disability")
    await chat.say("x" * 2001)
    assert "2,001 characters" in chat.last and "2,000" in chat.last
    await chat.say("short")
    assert "at least 10 characters" in chat.last
    out = await s.conversation.unsupported(chat.sender(), "photo")
    await outbox.drain()
    assert out.direct is None
    assert "What is happening" in chat.last
    await chat.say("Name-calling at the bus stop\x00\u202e aimed at a disabled resident.")
    async with s.db.uow() as uow:
        conv = await uow.conversations.active_for(3)
        assert conv is not None and conv.step == "location"
        assert (
            conv.draft["description"]
            == "Name-calling at the bus stop aimed at a disabled resident."
        )


async def test_redelivered_update_is_handled_once(world: Any) -> None:
    s, messenger, outbox, chats = world
    chat = Chat(s, messenger, outbox, chats["asha@example.org"])
    await chat.press("Report a tension")
    await chat.press("Heath Town")
    await chat.press("Crime or anti-social")
    before = len(chat.messages())
    new = len([m for r, m, edit in messenger.sent if r == str(chat.chat_id) and edit is None])
    await chat.say("Cars racing on the ring road every night.", update_id=777)
    after_first = len(chat.messages())
    await chat.say("Cars racing on the ring road every night.", update_id=777)
    # One new message (the next question) and one edit (the answered question loses its
    # buttons); the redelivery adds nothing.
    assert len(chat.messages()) == after_first == before + 2
    assert len([m for r, m, e in messenger.sent if r == str(chat.chat_id) and e is None]) == new + 1
    async with s.db.uow() as uow:
        conv = await uow.conversations.active_for(1)
        assert conv is not None and conv.step == "location"


async def test_unknown_user_is_refused_and_nothing_is_stored(world: Any) -> None:
    s, _, outbox, _ = world

    async def count() -> dict[str, int]:
        async with s.db.uow() as uow:
            session = uow.people.session  # type: ignore[attr-defined]
            return {
                t.name: await session.scalar(select(func.count()).select_from(t))
                for t in tables.metadata.sorted_tables
            }

    before = await count()
    stranger = Sender("telegram", 999_999, 999_999, 123_456)
    for call in (
        s.conversation.command(stranger, "report"),
        s.conversation.text(stranger, "hi"),
        s.conversation.start(stranger, None),
        s.conversation.start(stranger, "bad-token"),
        s.conversation.button(stranger, "1.s.1.0.0", "5"),
    ):
        outcome = await call
        assert outcome.direct is not None
        text = outcome.direct.plain_text()
        assert "only for people invited" in text or "not valid" in text
    await outbox.drain()
    assert await count() == before


async def test_nil_then_change_of_mind_and_cancel(world: Any) -> None:
    s, messenger, outbox, chats = world
    chat = Chat(s, messenger, outbox, chats["yusuf@example.org"])
    await chat.press("Nothing to report")
    assert "nil return is recorded" in chat.last
    await chat.press("Report a tension after all")
    assert "Which ward" in chat.last
    await chat.command("cancel")
    assert "Cancelled. Nothing was sent." in chat.last
    await chat.command("cancel")
    assert "nothing to cancel" in chat.last
    await chat.command("help")
    assert "/report" in chat.last and "999" in chat.last
    await chat.say("hello")
    assert "not expecting an answer" in chat.last


async def test_urgent_report_any_time(world: Any) -> None:
    s, messenger, outbox, chats = world
    chat = Chat(s, messenger, outbox, chats["jane@example.org"])  # officers may report too
    await chat.command("report")
    assert "Report a tension" in chat.messages()[-2].plain_text()
    await _answer_all(chat, ward="Park")
    await chat.press("No")
    await chat.press("No, keep me anonymous")
    await chat.press("Submit")
    assert "TR-2026-12-0001" in chat.last
    async with s.db.uow() as uow:
        reports = await uow.reports.for_person(5)
        assert [r.source for r in reports] == ["adhoc"] and reports[0].campaign_id is None
