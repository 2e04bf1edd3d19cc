"""Campaigns (the monthly return and others) and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain import Campaign, Delivery, DeliveryState, OutboxStatus
from bot.ports import AlreadyExists, DeliverySent
from storage import tables
from storage.repositories.base import _Repo


class SqlCampaignRepo(_Repo):
    """Campaigns."""

    async def get(self, campaign_id: int) -> Campaign | None:
        return await self.session.get(Campaign, campaign_id)

    async def by_key(self, key: str) -> Campaign | None:
        stmt = select(Campaign).where(tables.campaigns.c.key == key)
        return (await self.session.scalars(stmt)).first()

    async def open(self) -> Sequence[Campaign]:
        c = tables.campaigns.c
        stmt = select(Campaign).where(c.status == "open").order_by(c.opens_at, c.id)
        return (await self.session.scalars(stmt)).all()

    async def latest(self, kind: str | None = None) -> Campaign | None:
        c = tables.campaigns.c
        stmt = select(Campaign).order_by(c.opens_at.desc(), c.id.desc()).limit(1)
        if kind is not None:
            stmt = stmt.where(c.kind == kind)
        return (await self.session.scalars(stmt)).first()

    async def for_period(self, period: str) -> Sequence[Campaign]:
        c = tables.campaigns.c
        stmt = select(Campaign).where(c.period == period).order_by(c.opens_at, c.id)
        return (await self.session.scalars(stmt)).all()

    async def closed_since(self, since: datetime) -> Sequence[Campaign]:
        c = tables.campaigns.c
        stmt = select(Campaign).where(c.status == "closed", c.closed_at >= since).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def add(self, campaign: Campaign) -> None:
        """Store a campaign; :class:`AlreadyExists` if its key was taken meanwhile."""
        try:
            async with self.session.begin_nested():
                self.session.add(campaign)
        except IntegrityError as exc:
            raise AlreadyExists(campaign.key) from exc


class SqlDeliveryRepo(_Repo):
    """Deliveries."""

    async def get(self, delivery_id: int) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def set_status(
        self,
        delivery_id: int,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        not_from: Sequence[str] | None = None,
        **values: object,
    ) -> bool:
        """Move a delivery to ``status`` in one conditional UPDATE (only if it is still in
        ``only_from`` / not in ``not_from`` when written), so the dispatcher never overwrites a
        nil return or a response committed meanwhile by a handler. True if it moved."""
        d = tables.deliveries
        stmt = update(d).where(d.c.id == delivery_id).values(status=status, **values)
        if only_from is not None:
            stmt = stmt.where(d.c.status.in_(list(only_from)))
        if not_from is not None:
            stmt = stmt.where(d.c.status.not_in(list(not_from)))
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))

    async def sent(
        self, delivery_id: int, message_ref: str | None, now: datetime, *, reminder: bool
    ) -> None:
        """The form (or a reminder) went out: counters and the message to edit, in place."""
        d = tables.deliveries
        base = update(d).where(d.c.id == delivery_id).execution_options(synchronize_session=False)
        if reminder:
            await self.session.execute(
                base.values(
                    reminders=d.c.reminders + 1, last_reminded_at=now, message_ref=message_ref
                )
            )
            return
        await self.set_status(
            delivery_id,
            DeliveryState.SENT,
            only_from=[DeliveryState.QUEUED, DeliveryState.UNCERTAIN],
            sent_at=now,
            detail="",
        )
        await self.session.execute(
            base.where(d.c.message_ref.is_(None)).values(message_ref=message_ref)
        )

    async def sent_many(self, sends: Sequence[DeliverySent], now: datetime) -> None:
        """:meth:`sent` for many deliveries: one ``executemany`` for forms, one for reminders.
        A form's status moves only from queued or uncertain (a nil return or a response
        committed meanwhile stays), and its message to edit is kept if it has one."""
        d = tables.deliveries
        conn = await self.session.connection()
        forms = [
            {"d_id": s.delivery_id, "ref": s.message_ref, "now": now}
            for s in sends
            if not s.reminder
        ]
        if forms:
            # Not IN (...): an expanding list cannot be used with executemany.
            movable = or_(
                d.c.status == DeliveryState.QUEUED.value,
                d.c.status == DeliveryState.UNCERTAIN.value,
            )
            stmt = (
                update(d)
                .where(d.c.id == bindparam("d_id"))
                .values(
                    # SET sees the row as it was: every CASE tests the status before this UPDATE.
                    status=case((movable, DeliveryState.SENT.value), else_=d.c.status),
                    sent_at=case((movable, bindparam("now")), else_=d.c.sent_at),
                    detail=case((movable, ""), else_=d.c.detail),
                    message_ref=func.coalesce(d.c.message_ref, bindparam("ref")),
                )
            )
            await conn.execute(stmt, forms)
        reminders = [
            {"d_id": s.delivery_id, "ref": s.message_ref, "now": now} for s in sends if s.reminder
        ]
        if reminders:
            stmt = (
                update(d)
                .where(d.c.id == bindparam("d_id"))
                .values(
                    reminders=d.c.reminders + 1,
                    last_reminded_at=bindparam("now"),
                    message_ref=bindparam("ref"),
                )
            )
            await conn.execute(stmt, reminders)

    async def get_for(self, campaign_id: int, person_id: int) -> Delivery | None:
        c = tables.deliveries.c
        stmt = select(Delivery).where(c.campaign_id == campaign_id, c.person_id == person_id)
        return (await self.session.scalars(stmt)).first()

    async def for_campaign(self, campaign_id: int) -> Sequence[Delivery]:
        c = tables.deliveries.c
        stmt = select(Delivery).where(c.campaign_id == campaign_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def uncertain_to_follow_up(
        self, campaign_id: int, queued_before: datetime
    ) -> Sequence[Delivery]:
        d, o = tables.deliveries, tables.outbox
        form_in_doubt = exists().where(
            o.c.delivery_id == d.c.id,
            o.c.status == OutboxStatus.UNCERTAIN.value,
            o.c.created_at <= queued_before,
        )
        stmt = (
            select(Delivery)
            .where(
                d.c.campaign_id == campaign_id,
                d.c.status == DeliveryState.UNCERTAIN,
                d.c.followed_up_at.is_(None),
                form_in_doubt,
            )
            .order_by(d.c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def for_person(self, person_id: int) -> Sequence[Delivery]:
        c = tables.deliveries.c
        stmt = select(Delivery).where(c.person_id == person_id).order_by(c.id.desc())
        return (await self.session.scalars(stmt)).all()

    async def counts(self, campaign_id: int) -> dict[str, int]:
        c = tables.deliveries.c
        stmt = select(c.status, func.count()).where(c.campaign_id == campaign_id).group_by(c.status)
        return {status: n for status, n in (await self.session.execute(stmt)).all()}

    async def add(self, delivery: Delivery) -> None:
        self.session.add(delivery)
        await self.session.flush()

    async def add_many(self, deliveries: Sequence[Delivery]) -> None:
        """One flush for all: the ORM writes them as multi-row INSERTs … RETURNING id."""
        self.session.add_all(deliveries)
        await self.session.flush()
