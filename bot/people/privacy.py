"""Data protection: retention, erasure and subject-access export (UK GDPR).

- :meth:`PrivacyService.tick` (a scheduler job) redacts free text older than
  ``privacy.retention_months`` and anonymises people marked inactive longer than
  ``privacy.personal_data_months``. Aggregate fields (ward, category, level, basis, period,
  counts) are never touched, so summaries stay the same (:mod:`bot.people.retention`).
- :meth:`PrivacyService.erase` anonymises one person and removes or redacts everything about them
  (:mod:`bot.people.erasure`).
- :meth:`PrivacyService.export` gathers everything held about one person, subject access
  (:mod:`bot.people.subject_access`).

Every run is audited with ids and counts only. No SQL here: see ``storage/privacy.py``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.common import audit
from bot.config import Config
from bot.people import erasure, subject_access
from bot.people.erasure import ErasurePlan
from bot.people.personal_data import find_person
from bot.people.retention import RetentionResult, months_before, redact_old
from bot.ports import Purger, UnitOfWorkFactory

log = logging.getLogger(__name__)

#: Set while a purge left something for the next one; the next tick purges again.
_PURGE_PENDING = "privacy.purge_pending"


class PrivacyService:
    """Retention, erasure and subject access."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        purger: Purger,
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        # Without a purge, erased text may survive in the database files (old row versions, the
        # write-ahead log) until the database reuses the space.
        self.purger = purger

    async def _purge(self) -> None:
        """Purge, and remember a purge that could not finish so that the next tick retries it
        (without that, old values would wait for the next erasure or redaction)."""
        complete = await self.purger.purge()
        async with self.uow_factory() as uow:
            pending = await uow.state.get(_PURGE_PENDING)
            if complete and pending:
                await uow.state.set(_PURGE_PENDING, "")
            elif not complete and not pending:
                await uow.state.set(_PURGE_PENDING, "1")
            await uow.commit()

    async def _purge_pending(self) -> bool:
        async with self.uow_factory() as uow:
            return bool(await uow.state.get(_PURGE_PENDING))

    # ----------------------------------------------------------------- retention

    def cutoff(self, now: datetime | None = None) -> datetime:
        """Free text older than this is redacted."""
        return months_before(now or self.clock.now(), self.config.privacy.retention_months)

    async def tick(self, *, full: bool = False) -> RetentionResult:
        """Redact free text older than the retention period, then anonymise people inactive
        for longer than ``personal_data_months``. Idempotent: each kind continues from the
        cut-off the last run reached (``full``: look at every old row again)."""
        now = self.clock.now()
        result = RetentionResult(self.cutoff(now))
        async with self.uow_factory() as uow:
            await redact_old(uow, result, full=full)
            await audit(
                uow,
                now,
                "retention",
                "privacy.retention",
                result.cutoff.date().isoformat(),
                full=full,
                **result.redacted,
            )
            await uow.commit()
        months = self.config.privacy.personal_data_months
        if months > 0:
            async with self.uow_factory() as uow:
                stale = await uow.privacy.inactive_people(months_before(now, months))
            for person_id in stale:
                await self._erase(f"person:{person_id}", actor="retention")
                result.anonymised += 1
        if result.total or result.anonymised or await self._purge_pending():
            await self._purge()
        if result.total or result.anonymised:
            log.info(
                "retention: %d row(s) redacted, %d person(s) anonymised",
                result.total,
                result.anonymised,
            )
        return result

    # ----------------------------------------------------------------- erasure

    async def plan(self, who: str) -> ErasurePlan:
        """What :meth:`erase` would remove or anonymise (counts only; nothing changes)."""
        async with self.uow_factory() as uow:
            return await erasure.plan_for(uow, await find_person(uow, who))

    async def erase(self, who: str, *, actor: str) -> ErasurePlan:
        """Anonymise a person (an email or ``person:<id>``) and remove or redact everything
        about them, in one transaction, then purge the old values from the database files.
        Aggregates (report fields, delivery statuses, PACT counts) are kept; the audit log is
        kept (it holds ids only)."""
        plan = await self._erase(who, actor=actor)
        await self._purge()
        return plan

    async def _erase(self, who: str, *, actor: str) -> ErasurePlan:
        async with self.uow_factory() as uow:
            plan = await erasure.erase(uow, who, actor=actor, now=self.clock.now())
            await uow.commit()
        log.info("erased person %d", plan.person_id)
        return plan

    # ----------------------------------------------------------------- subject access

    async def export(self, who: str, *, actor: str) -> dict[str, Any]:
        """Everything held about one person (an email or ``person:<id>``), JSON-serialisable.
        The export itself is audited."""
        async with self.uow_factory() as uow:
            data = await subject_access.export(
                uow,
                who,
                actor=actor,
                now=self.clock.now(),
                partnership=self.config.partnership.name,
            )
            await uow.commit()
        return data
