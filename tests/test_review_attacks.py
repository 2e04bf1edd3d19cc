"""Attacks on promises the README and docs/DATA_PROTECTION.md make, written by the adversarial
review (branch h-review). Each test is marked ``xfail(strict=True)`` with what is wrong, so the
branch stays green until the defect is fixed; a fix makes the test pass, and strict xfail then
fails the suite until the marker is removed."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import FakeClock
from bot.common import Sender
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for
from tests.test_privacy import ASHA_EMAIL, BASE_CHAT, LEAFLETS, _report, _scan

NEW_CHAT = 876_540_000  # Asha's new phone: distinctive, so a substring scan cannot hit by chance


@pytest.mark.xfail(
    strict=True,
    reason="erasure deletes only messages addressed to the person's CURRENT addresses "
    "(bot/people/personal_data.py addresses_of); after `invites --relink` the outbox rows to "
    "the old Telegram chat (its id, the review screen with the report text, the 'account "
    "moved' notice) survive `people erase`",
)
async def test_erasure_after_a_relink_leaves_nothing_sent_to_the_old_chat(
    db_url: str, clock: FakeClock
) -> None:
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s, base_user_id=BASE_CHAT)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        old_chat = str(chats[ASHA_EMAIL])
        await _report(s, messenger, outbox, chats[ASHA_EMAIL])
        # Asha has a new phone: the admin re-links her, she opens the link there.
        (link,) = (await s.people.invite(actor="t", email=ASHA_EMAIL, relink=True)).links
        token = link.url.split("start=", 1)[1]
        await s.people.link(Sender("telegram", NEW_CHAT, NEW_CHAT, None), token)
        await outbox.drain()
        before = await _scan(s.db, [old_chat, LEAFLETS])
        assert any(f.startswith("outbox.recipient") for f in before)  # the scan can see it

        await s.privacy.erase(ASHA_EMAIL, actor="cli")

        left = await _scan(s.db, [old_chat, LEAFLETS, str(NEW_CHAT)])
        assert left == [], sorted(set(left))
