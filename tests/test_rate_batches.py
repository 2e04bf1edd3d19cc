"""The shared rate buckets (PostgreSQL) reserve slots for a batch of sends in one statement:
the channel's bucket hands out consecutive slots, and each chat's bucket a slot no earlier than
its send's channel slot, and none beyond the horizon."""

from __future__ import annotations

import pytest

from storage.database import make_engine
from storage.rates import PgRateBuckets
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (TENSIONBOT_TEST_DATABASE_URL)")

CLOSE = 0.05  # the database's clock moves between statements


async def test_a_batch_of_channel_slots_is_consecutive_and_the_next_batch_follows(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    buckets = PgRateBuckets(engine)
    try:
        slots, _ = await buckets.reserve_slots("telegram", 0.1, 1.0, 0.25, 2)
        assert slots == [pytest.approx(0.0, abs=CLOSE), pytest.approx(0.1, abs=CLOSE)]
        assert slots[1] - slots[0] == pytest.approx(0.1, abs=0.001)
        more, _ = await buckets.reserve_slots("telegram", 0.1, 1.0, 0.25, 2)
        # After the first batch's slots (the first within the horizon; the batch may pass it).
        assert more == [pytest.approx(0.2, abs=CLOSE), pytest.approx(0.3, abs=CLOSE)]
        # The next slot (0.4 s ahead) is beyond the horizon: nothing reserved, ask again later.
        none, wait = await buckets.reserve_slots("telegram", 0.1, 1.0, 0.25, 1)
        assert none == [] and wait == pytest.approx(0.15, abs=CLOSE)
        one, _ = await buckets.reserve_slots("other", 0.1, 1.0, 0.25, 1)
        assert one == [pytest.approx(0.0, abs=CLOSE)]
    finally:
        await buckets.close()
        await engine.dispose()


async def test_each_chat_gets_a_slot_no_earlier_than_its_channel_slot(db_url: str) -> None:
    engine = make_engine(db_url)
    buckets = PgRateBuckets(engine)
    try:
        first = await buckets.reserve_each(["a", "b"], 1.0, 1, 10.0, [0.1, 0.2])
        assert first == [pytest.approx(0.1, abs=CLOSE), pytest.approx(0.2, abs=CLOSE)]
        # The same chats again at once: a second later than their first slots.
        again = await buckets.reserve_each(["a", "b", "c"], 1.0, 1, 10.0, [0.0, 0.0, 0.0])
        assert again == [
            pytest.approx(1.1, abs=CLOSE),
            pytest.approx(1.2, abs=CLOSE),
            pytest.approx(0.0, abs=CLOSE),
        ]
        # A chat whose next slot is beyond the horizon is not reserved (the others are).
        far = await buckets.reserve_each(["a", "d"], 1.0, 1, 1.5, [0.0, 0.0])
        assert far[0] is None and far[1] == pytest.approx(0.0, abs=CLOSE)
        assert await buckets.reserve_each(["a"], 1.0, 1, 10.0, [0.0]) == [
            pytest.approx(2.1, abs=CLOSE)
        ]
    finally:
        await buckets.close()
        await engine.dispose()
