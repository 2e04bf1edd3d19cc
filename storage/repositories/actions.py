"""Teams' actions on reports and their events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from bot.domain import Action, ActionEvent, ActionState
from bot.ports import Stale
from storage import tables
from storage.repositories.base import _Repo


class SqlActionRepo(_Repo):
    """Actions and their events."""

    async def get(self, action_id: int) -> Action | None:
        return await self.session.get(Action, action_id)

    async def for_report(self, report_id: int) -> Sequence[Action]:
        c = tables.actions.c
        stmt = select(Action).where(c.report_id == report_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def add(self, action: Action) -> None:
        self.session.add(action)
        await self.session.flush()

    async def overdue(self, now: datetime) -> Sequence[Action]:
        """Open actions past their acknowledge-by time (indexed on state, ack_due_at)."""
        c = tables.actions.c
        stmt = (
            select(Action)
            .where(c.state == ActionState.OPEN, c.ack_due_at <= now)
            .order_by(c.ack_due_at, c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def due_for_check(self, cutoff: datetime) -> Sequence[Action]:
        """Acknowledged, still-open actions not checked with the reporter since ``cutoff``."""
        c = tables.actions.c
        last = func.coalesce(c.last_check_at, c.acknowledged_at)
        stmt = (
            select(Action)
            .where(
                c.state.in_([ActionState.ACKNOWLEDGED, ActionState.IN_PROGRESS]),
                last <= cutoff,
            )
            .order_by(c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def save(self, action: Action) -> None:
        """Write the changes now; :class:`Stale` if someone else changed it meanwhile."""
        await self._flush()

    async def add_event(self, event: ActionEvent) -> None:
        self.session.add(event)
        await self._flush()

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except StaleDataError as exc:
            raise Stale("the action was changed meanwhile") from exc

    async def events(self, action_id: int) -> Sequence[ActionEvent]:
        c = tables.action_events.c
        stmt = select(ActionEvent).where(c.action_id == action_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()
