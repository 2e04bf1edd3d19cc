"""People import (all or nothing, no duplicates) and invitation links."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.services.common import Sender
from bot.services.people import ImportError_
from tests.helpers import PEOPLE_CSV, services_for


async def test_import_creates_then_updates_never_duplicates(db_url: str, clock: FakeClock) -> None:
    async with services_for(db_url, clock) as s:
        first = await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        assert (first.created, first.updated, first.unchanged) == (5, 0, 0)
        changed = PEOPLE_CSV.replace(
            "Cllr Mark Evans,councillor,Penn", "Cllr Mark Evans,councillor,Penn;Park"
        )
        second = await s.people.import_csv(changed, source="p.csv", actor="t")
        assert (second.created, second.updated, second.unchanged) == (0, 1, 4)
        people = await s.people.everyone()
        assert len(people) == 5
        mark = next(p for p in people if p.email == "mark@example.org")
        assert mark.wards == ["Park", "Penn"]
        jane = next(p for p in people if p.email == "jane@example.org")
        assert len(jane.wards) == 6  # "all"


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("name,role,wards,email\nA,mayor,Park,a@x.org\n", "line 2: role 'mayor'"),
        ("name,role,wards,email\nA,councillor,Atlantis,a@x.org\n", "line 2: ward 'Atlantis'"),
        (
            "name,role,wards,email\nA,councillor,Heath Twn,a@x.org\n",
            "line 2: ward 'Heath Twn' is not in partnership.wards (did you mean 'Heath Town'?)",
        ),
        (
            "name,role,wards,email\nA,councillor,Bilston East,a@x.org\n",
            "line 2: ward 'Bilston East' no longer exists since May 2023 (The City of "
            "Wolverhampton (Electoral Changes) Order 2022): it was replaced by 'Bilston South' "
            "and 'Bilston North'",
        ),
        ("name,role,wards,email\nA,councillor,Park,not-an-email\n", "line 2: email"),
        (
            "name,role,wards,email\nA,councillor,Park,a@x.org\nB,councillor,Park,A@x.org\n",
            "line 3: email 'a@x.org' repeats line 2",
        ),
        ("name,role,email\nA,councillor,a@x.org\n", "missing column(s): wards"),
        ("name,role,wards,email,shoe\nA,councillor,Park,a@x.org,9\n", "unknown column(s): shoe"),
        ("name,role,wards,email\nA,councillor,,a@x.org\n", "needs at least one ward"),
        (
            "name,role,wards,email,slack_user_id\nA,officer,Park,a@x.org,<!channel>\n",
            "slack_user_id",
        ),
    ],
)
async def test_bad_csv_is_refused_whole(
    db_url: str, clock: FakeClock, csv_text: str, message: str
) -> None:
    async with services_for(db_url, clock) as s:
        good = "Z,councillor,Penn,z@x.org\n"
        with pytest.raises(ImportError_) as err:
            await s.people.import_csv(csv_text + good, source="p.csv", actor="t")
        assert message in str(err.value)
        assert "p.csv" in str(err.value)
        assert await s.people.everyone() == []  # all or nothing


async def test_invite_links_are_single_use_and_expire(db_url: str, clock: FakeClock) -> None:
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        links = await s.people.issue_invites(actor="t")
        assert len(links) == 5
        asha = next(x for x in links if x.person.email == "asha@example.org")
        assert asha.url.startswith("https://t.me/swp_tension_bot?start=")
        token = asha.url.split("start=")[1]
        assert len(token) <= 64

        ok = await s.people.link_telegram(Sender("telegram", 11, 11, 1), token)
        assert ok.person is not None and ok.person.telegram_chat_id == 11
        used = await s.people.link_telegram(Sender("telegram", 12, 12, 2), token)
        assert used.person is None and "already been used" in used.message
        wrong = await s.people.link_telegram(Sender("telegram", 12, 12, 3), "nope")
        assert wrong.person is None and "not valid" in wrong.message

        # A newer link replaces an older one; an expired link is refused.
        old = next(x for x in links if x.person.email == "mark@example.org").url.split("start=")[1]
        newer = (await s.people.issue_invites(actor="t", email="mark@example.org"))[0]
        replaced = await s.people.link_telegram(Sender("telegram", 13, 13, 4), old)
        assert replaced.person is None and "replaced" in replaced.message
        clock.advance(timedelta(days=15))
        expired = await s.people.link_telegram(
            Sender("telegram", 13, 13, 5), newer.url.split("start=")[1]
        )
        assert expired.person is None and "expired" in expired.message

        remaining = await s.people.issue_invites(actor="t")
        assert {x.person.email for x in remaining} == {
            "yusuf@example.org",
            "sarah@example.org",
            "mark@example.org",
            "jane@example.org",
        }
        # Invitation tokens are stored only as hashes.
        async with s.db.uow() as uow:
            stored = await uow.invites.unused_for(remaining[0].person.id or 0)
            assert stored and all(token not in i.token_hash for i in stored)
