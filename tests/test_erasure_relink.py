"""Erasure and subject access after a re-link (``invites --relink``): the chat a person was
reached at before their account moved is theirs until the move, and no longer. What was sent
there while it was theirs is exported and erased with them; what was sent there afterwards, to
whoever holds that chat now, is neither (tests/test_review_attacks.py has the attack that found
the old chat left behind)."""

from __future__ import annotations

from datetime import timedelta

from bot.app import Services
from bot.clock import FakeClock
from bot.common import Sender
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, services_for
from tests.test_privacy import ASHA_EMAIL, _scan

OLD = 765_430_000  # Asha's old phone, later Yusuf's: distinctive for the substring scan
NEW = 765_439_999
YUSUF = "yusuf@example.org"


async def _link(
    s: Services, clock: FakeClock, email: str, chat: int, *, relink: bool = False
) -> None:
    """A minute later, ``email``'s invitation is issued and used from ``chat``."""
    clock.advance(timedelta(minutes=1))
    (link,) = (await s.people.invite(actor="t", email=email, relink=relink)).links
    token = link.url.split("start=", 1)[1]
    result = await s.people.link(Sender("telegram", chat, chat, None), token)
    assert result.person is not None, result


async def test_the_old_chat_is_hers_until_the_move_and_no_longer(
    db_url: str, clock: FakeClock
) -> None:
    messenger = FakeMessenger()
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        outbox = dispatcher_for(s, messenger)
        await _link(s, clock, ASHA_EMAIL, OLD)
        await outbox.drain()
        # Asha has a new phone; she hands the old one to Yusuf, who links from it.
        await _link(s, clock, ASHA_EMAIL, NEW, relink=True)
        await _link(s, clock, YUSUF, OLD)
        await outbox.drain()

        async with s.db.uow() as uow:
            to_old = await uow.privacy.messages_to([("telegram", str(OLD))])
        keys = sorted(m.idempotency_key for m in to_old)
        assert len(keys) == 3 and sum(k.startswith("relink:") for k in keys) == 1, keys
        yusufs = [m for m in to_old if "Yusuf" in str(m.payload)]
        assert len(yusufs) == 1  # his welcome, after the move

        exported = await s.privacy.export(ASHA_EMAIL, actor="cli")
        texts = " ".join(m["text"] for m in exported["messages_to_them"])
        assert "moved" in texts  # the notice to her old chat, and her first welcome
        assert "Yusuf" not in texts  # never what was sent there once it was his

        await s.privacy.erase(ASHA_EMAIL, actor="cli")

        async with s.db.uow() as uow:
            left = await uow.privacy.messages_to([("telegram", str(OLD))])
        assert [m.idempotency_key for m in left] == [m.idempotency_key for m in yusufs]
        assert await _scan(s.db, ["has been moved", "Welcome, Cllr Asha", str(NEW)]) == []
