"""The audit log is append-only, so erasure cannot reach it: it must never hold what a person
typed. ``/pact`` records the neighbourhood it was asked for by its key, never the words
(tests/test_review_attacks.py has the same attack on ``/summary``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from bot.pact.base import PactError
from storage.tables import audit_log
from tests.helpers import services_for
from tests.test_pact import PACT
from tests.test_privacy import ASHA


async def test_words_typed_after_pact_never_reach_the_audit_log(
    db_url: str, clock: FakeClock
) -> None:
    async with services_for(db_url, clock, pact=PACT) as s:
        with pytest.raises(PactError):  # not a neighbourhood: refused, and the view audited
            await s.pact.insight_for("person:1", "admin", ASHA)
        await s.pact.insight_for("person:1", "admin", "Heath Town")
        await s.pact.insight_for("person:1", "admin", "")
        async with s.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(audit_log.c.subject, audit_log.c.details).where(
                        audit_log.c.action == "pact.insight.view"
                    )
                )
            ).all()
    assert [subject for subject, _ in rows] == ["unknown", "heath-town", ""]
    assert not any(ASHA.casefold() in str(row).casefold() for row in rows)
