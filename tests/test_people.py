"""People import (all or nothing, no duplicates) and invitation links."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.common import Sender
from bot.people.importing import ImportError_
from tests.helpers import PEOPLE_CSV, services_for, slack_id, telegram_chat


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
            "line 3: email repeats line 2",
        ),
        ("name,role,email\nA,councillor,a@x.org\n", "missing column(s): wards"),
        ("name,role,wards,email,shoe\nA,councillor,Park,a@x.org,9\n", "unknown column(s): shoe"),
        ("name,role,wards,email\nA,councillor,,a@x.org\n", "needs at least one ward"),
        (
            "name,role,wards,email,slack_user_id\nA,officer,Park,a@x.org,<!channel>\n",
            "slack_user_id",
        ),
        (
            "name,role,wards,email,slack_user_id\nA,officer,Park,a@x.org,U0SAME\n"
            "B,officer,Park,b@x.org,U0SAME\n",
            "line 3: slack_user_id repeats line 2",
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

        ok = await s.people.link(Sender("telegram", 11, 11, 1), token)
        assert ok.person is not None and telegram_chat(ok.person) == 11
        used = await s.people.link(Sender("telegram", 12, 12, 2), token)
        assert used.person is None and "already been used" in used.message
        wrong = await s.people.link(Sender("telegram", 12, 12, 3), "nope")
        assert wrong.person is None and "not valid" in wrong.message

        # A newer link replaces an older one; an expired link is refused.
        old = next(x for x in links if x.person.email == "mark@example.org").url.split("start=")[1]
        newer = (await s.people.issue_invites(actor="t", email="mark@example.org"))[0]
        replaced = await s.people.link(Sender("telegram", 13, 13, 4), old)
        assert replaced.person is None and "replaced" in replaced.message
        clock.advance(timedelta(days=15))
        expired = await s.people.link(Sender("telegram", 13, 13, 5), newer.url.split("start=")[1])
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


def _bulk_csv(n: int, *, name: str = "Person", ward: str = "Park") -> str:
    rows = [f"{name} {i},councillor,{ward},Council,p{i}@example.org," for i in range(n)]
    return "name,role,wards,organisation,email,slack_user_id\n" + "\n".join(rows) + "\n"


async def test_bulk_import_creates_updates_and_leaves_the_unchanged(
    db_url: str, clock: FakeClock
) -> None:
    async with services_for(db_url, clock) as s:
        first = await s.people.import_csv(_bulk_csv(1200), source="p.csv", actor="t")
        assert (first.created, first.updated, first.unchanged) == (1200, 0, 0)
        created_at = {p.email: p.created_at for p in await s.people.everyone()}
        await s.people.set_active("p7@example.org", False, actor="t")
        clock.advance(timedelta(hours=1))

        # 1,000 unchanged, 150 moved ward, p7 listed again (active again), 400 new; the 49
        # not in the file are left as they are.
        text = _bulk_csv(1000) + "\n".join(
            [f"Person {i},councillor,Penn,Council,p{i}@example.org," for i in range(1000, 1150)]
            + [f"New {i},community_leader,Penn,Mosque,n{i}@example.org," for i in range(400)]
        )
        second = await s.people.import_csv(text + "\n", source="p.csv", actor="t")
        assert (second.created, second.updated, second.unchanged) == (400, 151, 999)
        again = await s.people.import_csv(text + "\n", source="p.csv", actor="t")
        assert (again.created, again.updated, again.unchanged) == (0, 0, 1550)

        people = {p.email: p for p in await s.people.everyone()}
        assert len(people) == 1600  # never duplicated
        assert people["p7@example.org"].active
        moved = people["p1100@example.org"]
        assert moved.wards == ["Penn"] and moved.created_at == created_at["p1100@example.org"]
        assert moved.updated_at == clock.now()
        untouched = people["p1199@example.org"]
        assert untouched.wards == ["Park"] and untouched.updated_at == created_at[untouched.email]
        newcomer = people["n399@example.org"]
        assert (newcomer.name, newcomer.role, newcomer.wards) == (
            "New 399",
            "community_leader",
            ["Penn"],
        )
        assert newcomer.organisation == "Mosque" and newcomer.active


async def test_a_bad_line_rolls_back_the_whole_bulk_import(db_url: str, clock: FakeClock) -> None:
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(_bulk_csv(10), source="p.csv", actor="t")
        text = _bulk_csv(2000, name="Renamed").replace(
            "Renamed 1500,councillor,Park", "Renamed 1500,councillor,Atlantis"
        )
        with pytest.raises(ImportError_) as err:
            await s.people.import_csv(text, source="p.csv", actor="t")
        assert err.value.problems == [
            "p.csv: line 1502: ward 'Atlantis' is not in partnership.wards",
            "p.csv: line 1502: a councillor needs at least one ward",
        ]
        people = await s.people.everyone()
        assert len(people) == 10 and {p.name for p in people} == {f"Person {i}" for i in range(10)}


async def test_a_slack_id_someone_stored_already_has_is_refused_by_line(
    db_url: str, clock: FakeClock
) -> None:
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")  # Jane has U0JANE
        text = _bulk_csv(300).replace("p250@example.org,", "p250@example.org,U0JANE")
        with pytest.raises(ImportError_) as err:
            await s.people.import_csv(text, source="new.csv", actor="t")
        assert err.value.problems == ["new.csv: line 252: slack_user_id is already someone else's"]
        assert len(await s.people.everyone()) == 5  # nothing imported


async def test_two_people_can_swap_slack_ids_in_one_import(db_url: str, clock: FakeClock) -> None:
    header = "name,role,wards,organisation,email,slack_user_id\n"
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(
            header + "A,officer,all,Police,a@x.org,U0AAA\nB,officer,all,Police,b@x.org,U0BBB\n",
            source="p.csv",
            actor="t",
        )
        swapped = await s.people.import_csv(
            header + "A,officer,all,Police,a@x.org,U0BBB\nB,officer,all,Police,b@x.org,U0AAA\n",
            source="p.csv",
            actor="t",
        )
        assert swapped.updated == 2
        ids = {p.email: slack_id(p) for p in await s.people.everyone()}
        assert ids == {"a@x.org": "U0BBB", "b@x.org": "U0AAA"}


async def test_a_slack_id_can_move_to_someone_earlier_in_the_file(
    db_url: str, clock: FakeClock
) -> None:
    """A gives up U0AAA and B, earlier in the file, takes it (found in review: only rows given
    a new id were released first, so B's update met A's stored id)."""
    header = "name,role,wards,organisation,email,slack_user_id\n"
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(
            header + "A,officer,all,Police,a@x.org,U0AAA\nB,officer,all,Police,b@x.org,\n",
            source="p.csv",
            actor="t",
        )
        moved = await s.people.import_csv(
            header + "B,officer,all,Police,b@x.org,U0AAA\nA,officer,all,Police,a@x.org,\n",
            source="p.csv",
            actor="t",
        )
        assert moved.updated == 2
        ids = {p.email: slack_id(p) for p in await s.people.everyone()}
        assert ids == {"a@x.org": None, "b@x.org": "U0AAA"}
