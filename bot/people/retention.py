"""Retention: free text older than ``privacy.retention_months`` is redacted.

Aggregate fields (ward, category, level, basis, period, counts) are never touched, so summaries
stay the same. Each kind continues from the cut-off the last run reached. The scheduler job is
:meth:`bot.people.privacy.PrivacyService.tick`, which also anonymises people inactive for longer
than ``privacy.personal_data_months``. No SQL here: see ``storage/privacy.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.people.personal_data import BATCH, redaction
from bot.ports import UnitOfWork

_STATE = "privacy.retention."  # + kind: the cut-off the last run reached (ISO)
RETENTION_KINDS = (
    "reports",
    "action_events",
    "actions",
    "outbox",
    "pact_priorities",
    "conversations",
    "pact_recordings",
)


@dataclass
class RetentionResult:
    """What one retention run redacted, by kind, and how many people it anonymised."""

    cutoff: datetime
    redacted: dict[str, int] = field(default_factory=dict)
    anonymised: int = 0

    @property
    def total(self) -> int:
        """Rows redacted, all kinds together."""
        return sum(self.redacted.values())


def months_before(when: datetime, months: int) -> datetime:
    """``when`` moved back by whole calendar months (the day capped at the 28th)."""
    index = when.year * 12 + when.month - 1 - months
    year, month = divmod(index, 12)
    day = min(when.day, 28)
    return when.replace(year=year, month=month + 1, day=day)


async def redact_old(uow: UnitOfWork, result: RetentionResult, *, full: bool) -> None:
    """Redact free text older than ``result.cutoff``, kind by kind, counting into
    ``result.redacted``. Each kind continues from the cut-off the last run reached (``full``:
    look at every old row again). The caller audits and commits."""
    forms: dict[int, set[str]] = {}
    for kind in RETENTION_KINDS:
        key = _STATE + kind
        mark = None if full else await uow.state.get(key)
        since = datetime.fromisoformat(mark) if mark else None
        if since is not None and since >= result.cutoff:
            result.redacted[kind] = 0
            continue
        result.redacted[kind] = await _redact_kind(uow, kind, result.cutoff, since, forms)
        await uow.state.set(key, result.cutoff.isoformat())


async def _redact_kind(
    uow: UnitOfWork,
    kind: str,
    before: datetime,
    since: datetime | None,
    forms: dict[int, set[str]],
) -> int:
    count, after = 0, 0
    while True:
        rows = await uow.privacy.text_rows(
            kind, before=before, since=since, after_id=after, limit=BATCH
        )
        for row_id, values in rows:
            changes = await redaction(uow, kind, values, forms)
            if changes:
                await uow.privacy.set_fields(kind, row_id, changes)
                count += 1
        if len(rows) < BATCH:
            return count
        after = rows[-1][0]
