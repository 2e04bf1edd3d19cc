"""Figures for monitoring: outbox depth, open and overdue actions, the open returns' rates.

Read at scrape time by the metrics endpoint (``handlers/http.py``); this module knows nothing of
Prometheus or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bot.clock import Clock
from bot.domain import ANSWERED
from bot.ports import UnitOfWorkFactory

_FAR = timedelta(days=365 * 100)


@dataclass(frozen=True)
class ReturnFigures:
    """One open campaign: its deliveries by status and its return rate."""

    key: str
    deliveries: dict[str, int]

    @property
    def total(self) -> int:
        """Everyone the return went (or was meant to go) to."""
        return sum(self.deliveries.values())

    @property
    def rate(self) -> float:
        """Answered (tensions or a nil return) over everyone; 0 with nobody."""
        answered = sum(self.deliveries.get(s, 0) for s in ANSWERED)
        return answered / self.total if self.total else 0.0


@dataclass(frozen=True)
class HealthFigures:
    """A snapshot of the figures worth watching."""

    outbox: dict[str, int] = field(default_factory=dict)
    actions_open: int = 0
    actions_overdue: int = 0
    returns: list[ReturnFigures] = field(default_factory=list)


class HealthService:
    """Reads :class:`HealthFigures` in one short read-only unit of work."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow_factory = uow_factory
        self.clock = clock

    async def figures(self) -> HealthFigures:
        """The current figures (a few aggregate queries)."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            outbox = await uow.outbox.counts()
            overdue = len(await uow.actions.overdue(now))
            # Not yet acknowledged (whatever the deadline) plus acknowledged or in progress.
            unacknowledged = len(await uow.actions.overdue(now + _FAR))
            in_hand = len(await uow.actions.due_for_check(now + _FAR))
            returns = [
                ReturnFigures(c.key, await uow.deliveries.counts(c.id))
                for c in await uow.campaigns.open()
                if c.id is not None
            ]
        return HealthFigures(
            outbox=outbox,
            actions_open=unacknowledged + in_hand,
            actions_overdue=overdue,
            returns=returns,
        )
