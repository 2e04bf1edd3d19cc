"""The outbox of messages to send."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, null, or_, select, update
from sqlalchemy.orm import aliased

from bot.domain import NEWS, OutboxMessage, OutboxStatus
from storage import tables
from storage.repositories.base import _Repo, upsert_insert


def _held(o: Any, held_before: datetime) -> Any:
    """A reporter's news, not yet tried, queued too recently to go: it waits for more."""
    return and_(
        o.c.purpose == NEWS,
        o.c.status == OutboxStatus.PENDING.value,
        o.c.attempts == 0,
        o.c.created_at > held_before,
    )


class SqlOutboxRepo(_Repo):
    """The outbox."""

    #: Messages this unit of work queued for the dispatcher (``pending``): it need only be
    #: woken when there are some (the fast path sends its own).
    queued_pending = 0

    async def add(self, message: OutboxMessage) -> bool:
        """Queue a message; False (and nothing queued) if its idempotency key exists."""
        c = tables.outbox.c
        found = await self.session.scalar(
            select(c.id).where(c.idempotency_key == message.idempotency_key)
        )
        if found is not None:
            return False
        self.session.add(message)
        await self.session.flush()
        self.queued_pending += 1
        return True

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def load(self, message_ids: Sequence[int]) -> None:
        """Load these rows in one query (later ``get`` calls are then answered from the session,
        not by one query each)."""
        o = tables.outbox.c
        await self.session.scalars(select(OutboxMessage).where(o.id.in_(message_ids)))

    async def claim(
        self,
        now: datetime,
        limits: Mapping[str, int],
        lease_until: datetime,
        held_before: datetime | None = None,
    ) -> Sequence[OutboxMessage]:
        """Claim due messages, at most ``limits[channel]`` per channel (``"*"``: any channel not
        named, so name a full channel with 0), at most one per recipient, and never overtaking an
        earlier one. With ``held_before``, a reporter's news not yet tried is due only once it
        was queued before then (it waits for more news to the same person), and while it waits
        it holds nothing else back."""
        out: list[OutboxMessage] = []
        named = [ch for ch in limits if ch != "*"]
        for channel, limit in limits.items():
            if limit > 0:
                out += await self._claim(now, channel, named, limit, lease_until, held_before)
        return out

    async def _claim(
        self,
        now: datetime,
        channel: str,
        named: list[str],
        limit: int,
        lease_until: datetime,
        held_before: datetime | None,
    ) -> Sequence[OutboxMessage]:
        """One channel's share (``"*"``: every channel not ``named``)."""
        o = tables.outbox
        earlier = aliased(o)
        waiting = [earlier.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value])]
        if held_before is not None:
            waiting.append(~_held(earlier, held_before))
        blocked = exists().where(
            and_(
                earlier.c.channel == o.c.channel,
                earlier.c.recipient == o.c.recipient,
                earlier.c.id < o.c.id,
                *waiting,
            )
        )
        stmt = (
            select(OutboxMessage)
            .where(
                o.c.status == OutboxStatus.PENDING.value,
                o.c.channel.not_in(named) if channel == "*" else o.c.channel == channel,
                or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now),
                ~blocked,
                *([~_held(o, held_before)] if held_before is not None else []),
            )
            .order_by(o.c.priority, o.c.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            # Several processes may dispatch: each row goes to exactly one of them.
            stmt = stmt.with_for_update(skip_locked=True, of=o)
        rows = (await self.session.scalars(stmt)).all()
        for row in rows:
            row.status = OutboxStatus.SENDING.value
            row.claimed_until = lease_until
            row.attempts += 1
        await self.session.flush()
        return rows

    async def claim_companions(
        self, row: OutboxMessage, lease_until: datetime
    ) -> Sequence[OutboxMessage]:
        """Claim the other news waiting for ``row``'s recipient (held or not), to go out in one
        message with it; in the claim's transaction, so no other process sends them too."""
        o = tables.outbox
        stmt = (
            select(OutboxMessage)
            .where(
                o.c.status == OutboxStatus.PENDING.value,
                o.c.channel == row.channel,
                o.c.recipient == row.recipient,
                o.c.purpose == row.purpose,
                o.c.id != row.id,
            )
            .order_by(o.c.id)
            .limit(20)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=o)
        rows = (await self.session.scalars(stmt)).all()
        for companion in rows:
            companion.status = OutboxStatus.SENDING.value
            companion.claimed_until = lease_until
            companion.attempts += 1
        await self.session.flush()
        return rows

    async def recover_in_flight(self, now: datetime) -> Sequence[OutboxMessage]:
        """Messages whose sender died mid-send (lease expired while still 'sending')."""
        c = tables.outbox.c
        stmt = select(OutboxMessage).where(
            c.status == OutboxStatus.SENDING.value, c.claimed_until < now
        )
        return (await self.session.scalars(stmt)).all()

    async def next_due(self) -> datetime | None:
        c = tables.outbox.c
        return await self.session.scalar(
            select(func.min(c.next_attempt_at)).where(c.status == OutboxStatus.PENDING.value)
        )

    async def busy(self, held_before: datetime | None = None) -> int:
        """Messages still to send or being sent, less news held until ``held_before``."""
        o = tables.outbox
        stmt = select(func.count()).where(
            o.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]),
            *([~_held(o, held_before)] if held_before is not None else []),
        )
        return int(await self.session.scalar(stmt) or 0)

    async def counts(self) -> dict[str, int]:
        c = tables.outbox.c
        stmt = select(c.status, func.count()).group_by(c.status)
        return {s: n for s, n in (await self.session.execute(stmt)).all()}

    async def last_reply(self, channel: str, recipient: str) -> OutboxMessage | None:
        """The newest conversational reply to this chat (sent or not)."""
        c = tables.outbox.c
        stmt = (
            select(OutboxMessage)
            .where(c.channel == channel, c.recipient == recipient, c.purpose == "reply")
            .order_by(c.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()

    # ----------------------------------------------------------------- the fast path
    # (bot/delivery/direct.py: a reply queued already claimed by the process that will send it)

    async def add_claimed(
        self, message: OutboxMessage, lease_until: datetime, mine: Sequence[int] = ()
    ) -> OutboxMessage | None:
        """Queue a reply already claimed (``sending`` until ``lease_until``) by the caller, who
        sends it right after the commit; None (and nothing queued) if its idempotency key
        exists. It is queued ``pending`` instead, for the dispatcher, when an earlier message
        to the same chat is still waiting or being sent (other than ``mine``, the ones this
        caller queued just before it): a reply never overtakes one. One Core statement: no
        look-up, no ORM object in the session."""
        statement = _claimed_insert(self.session.get_bind().dialect.name)
        params = {
            "channel": message.channel,
            "recipient": message.recipient,
            "payload": message.payload,
            "idempotency_key": message.idempotency_key,
            "purpose": message.purpose,
            "priority": message.priority,
            "edit_ref": message.edit_ref,
            "delivery_id": message.delivery_id,
            "action_id": message.action_id,
            "thread_ref": message.thread_ref,
            "created_at": message.created_at,
            "lease": lease_until,
            "mine": list(mine),
        }
        row = (await self.session.execute(statement, params)).first()
        if row is None:
            return None
        self.queued_pending += row.status == OutboxStatus.PENDING.value
        return OutboxMessage(
            channel=message.channel,
            recipient=message.recipient,
            payload=message.payload,
            idempotency_key=message.idempotency_key,
            created_at=message.created_at,
            next_attempt_at=None,
            purpose=message.purpose,
            priority=message.priority,
            edit_ref=message.edit_ref,
            delivery_id=message.delivery_id,
            action_id=message.action_id,
            thread_ref=message.thread_ref,
            status=row.status,
            attempts=1 if row.status == OutboxStatus.SENDING.value else 0,
            claimed_until=lease_until if row.status == OutboxStatus.SENDING.value else None,
            id=row.id,
        )

    async def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """Record rows as sent at ``now`` (row id, the platform's message reference): one
        UPDATE for all of them, no row loaded. A row another process's recovery settled meanwhile
        (``uncertain``, or a reply put back to ``pending``) is marked sent too: the message did
        go out. Only for rows whose result concerns nothing else (the fast path's replies: no
        delivery, no hook that acts on a sent reply)."""
        if sent:
            params = [{"row_id": row_id, "ref": ref, "now": now} for row_id, ref in sent]
            await self.session.execute(_mark_sent(), params)


@functools.cache  # built once: it runs for every batch of sent replies
def _mark_sent() -> Any:
    o = tables.outbox
    late = (OutboxStatus.SENDING.value, OutboxStatus.UNCERTAIN.value, OutboxStatus.PENDING.value)
    return (
        update(o)
        # (OR, not IN: an executemany cannot expand an IN list)
        .where(o.c.id == bindparam("row_id"), or_(*(o.c.status == status for status in late)))
        .values(
            status=OutboxStatus.SENT.value,
            sent_at=bindparam("now", type_=o.c.sent_at.type),
            result_ref=bindparam("ref", type_=o.c.result_ref.type),
            last_error=None,
            claimed_until=None,
        )
    )


@functools.cache  # the fast path's INSERT, built once per dialect
def _claimed_insert(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, status`` of a reply
    claimed by its sender (``sending``, with a lease, one attempt) unless an earlier message to
    the same chat, other than ``:mine``, is still pending or being sent (then ``pending``)."""
    o = tables.outbox
    earlier = aliased(o)
    waiting = (
        select(earlier.c.id)
        .where(
            earlier.c.channel == bindparam("channel", type_=o.c.channel.type),
            earlier.c.recipient == bindparam("recipient", type_=o.c.recipient.type),
            earlier.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]),
            earlier.c.id.not_in(bindparam("mine", expanding=True)),
        )
        .exists()
    )
    plain = (
        "channel",
        "recipient",
        "payload",
        "idempotency_key",
        "purpose",
        "priority",
        "edit_ref",
        "delivery_id",
        "action_id",
        "thread_ref",
        "created_at",
    )
    values: dict[str, Any] = {name: bindparam(name, type_=o.c[name].type) for name in plain}
    values.update(
        next_attempt_at=None,
        status=case((waiting, OutboxStatus.PENDING.value), else_=OutboxStatus.SENDING.value),
        claimed_until=case(
            (waiting, null()), else_=bindparam("lease", type_=o.c.claimed_until.type)
        ),
        attempts=case((waiting, 0), else_=1),
    )
    return (
        upsert_insert(dialect, o)
        .values(values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(o.c.id, o.c.status)
    )
