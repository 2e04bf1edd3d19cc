"""The outbox of messages to send.

The dispatcher's hot path (claim, read the state, record the results) is Core statements: one
``UPDATE … RETURNING`` claims a batch (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and results
are written with one ``executemany`` per kind of change. No ORM objects are loaded on it: the
rows it hands back are plain, detached :class:`~bot.domain.OutboxMessage` values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Integer,
    Row,
    and_,
    bindparam,
    case,
    exists,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from bot.domain import NEWS, OutboxMessage, OutboxStatus
from bot.ports import OutboxChange
from storage import tables
from storage.repositories.base import _Repo, upsert_insert


def _message(row: Row[Any], **override: Any) -> OutboxMessage:
    """A detached outbox row from a Core result row."""
    values = dict(row._mapping)
    values.update(override)
    return OutboxMessage(**values)


def _sorted(result: Any) -> list[OutboxMessage]:
    """Claimed rows, detached, in (priority, id) order (RETURNING keeps no order)."""
    rows = [_message(r) for r in result.all()]
    rows.sort(key=lambda m: (m.priority, m.id or 0))
    return rows


@functools.cache
def _claim_statement(channel: str, named: tuple[str, ...], held: bool, postgres: bool) -> Any:
    """The claim of one channel's due rows, built once per shape (the dispatcher runs it
    hundreds of times a second): parameters ``now``, ``lim``, ``lease`` and ``held_before``."""
    o = tables.outbox
    cand = o.alias("cand")
    earlier = o.alias("earlier")
    held_before = bindparam("held_before", type_=o.c.created_at.type)
    waiting = [earlier.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value])]
    if held:
        waiting.append(~_held(earlier, held_before))
    blocked = exists().where(
        and_(
            earlier.c.channel == cand.c.channel,
            earlier.c.recipient == cand.c.recipient,
            earlier.c.id < cand.c.id,
            *waiting,
        )
    )
    pick = (
        select(cand.c.id)
        .where(
            cand.c.status == OutboxStatus.PENDING.value,
            cand.c.channel.not_in(named) if channel == "*" else cand.c.channel == channel,
            or_(
                cand.c.next_attempt_at.is_(None),
                cand.c.next_attempt_at <= bindparam("now", type_=o.c.next_attempt_at.type),
            ),
            ~blocked,
            *([~_held(cand, held_before)] if held else []),
        )
        .order_by(cand.c.priority, cand.c.id)
        .limit(bindparam("lim", type_=Integer))
    )
    if postgres:
        # Several processes may dispatch: each row goes to exactly one of them.
        pick = pick.with_for_update(skip_locked=True, of=cand)
    return (
        update(o)
        .where(o.c.id.in_(pick))
        .values(
            status=OutboxStatus.SENDING.value,
            claimed_until=bindparam("lease", type_=o.c.claimed_until.type),
            attempts=o.c.attempts + 1,
        )
        .returning(*o.c)
    )


def _held(o: Any, held_before: datetime | BindParameter[Any]) -> Any:
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

    async def add_many(self, messages: Sequence[OutboxMessage]) -> int:
        """Queue many messages (a campaign's forms) in one flush, less those whose idempotency
        key exists (looked up a chunk at a time, not one query each); how many were queued."""
        c = tables.outbox.c
        keys = [m.idempotency_key for m in messages]
        taken: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found = await self.session.scalars(
                select(c.idempotency_key).where(c.idempotency_key.in_(chunk))
            )
            taken.update(found)
        new: list[OutboxMessage] = []
        for message in messages:
            if message.idempotency_key not in taken:
                taken.add(message.idempotency_key)
                new.append(message)
        self.session.add_all(new)
        await self.session.flush()
        return len(new)

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def _conn(self) -> AsyncConnection:
        return await self.session.connection()

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

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
        it holds nothing else back. Rows come back in (priority, id) order, detached."""
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
    ) -> list[OutboxMessage]:
        """One channel's share (``"*"``: every channel not ``named``), in one statement."""
        stmt = _claim_statement(channel, tuple(named), held_before is not None, self._postgres())
        params: dict[str, Any] = {"now": now, "lim": limit, "lease": lease_until}
        if held_before is not None:
            params["held_before"] = held_before
        return _sorted(await (await self._conn()).execute(stmt, params))

    async def _take(self, where: Any, lease_until: datetime) -> list[OutboxMessage]:
        """Mark the rows ``where`` picks as being sent (one attempt more) and return them."""
        o = tables.outbox
        stmt = (
            update(o)
            .where(where)
            .values(
                status=OutboxStatus.SENDING.value,
                claimed_until=lease_until,
                attempts=o.c.attempts + 1,
            )
            .returning(*o.c)
        )
        return _sorted(await (await self._conn()).execute(stmt))

    async def claim_companions(
        self, row: OutboxMessage, lease_until: datetime
    ) -> Sequence[OutboxMessage]:
        """Claim the other news waiting for ``row``'s recipient (held or not), to go out in one
        message with it; in the claim's transaction, so no other process sends them too."""
        o = tables.outbox
        cand = o.alias("cand")
        pick = (
            select(cand.c.id)
            .where(
                cand.c.status == OutboxStatus.PENDING.value,
                cand.c.channel == row.channel,
                cand.c.recipient == row.recipient,
                cand.c.purpose == row.purpose,
                cand.c.id != row.id,
            )
            .order_by(cand.c.id)
            .limit(20)
        )
        if self._postgres():
            pick = pick.with_for_update(skip_locked=True, of=cand)
        return await self._take(o.c.id.in_(pick), lease_until)

    async def states(self, message_ids: Sequence[int]) -> dict[int, OutboxMessage]:
        """The rows as they stand now, without their payload (``{}``), detached; on PostgreSQL
        locked until the transaction ends, so what is decided from them is what is written."""
        o = tables.outbox
        if not message_ids:
            return {}
        stmt = select(*(c for c in o.c if c.key != "payload")).where(o.c.id.in_(message_ids))
        if self._postgres():
            stmt = stmt.with_for_update()
        rows = (await (await self._conn()).execute(stmt)).all()
        return {r.id: _message(r, payload={}) for r in rows}

    async def settle(self, changes: Sequence[OutboxChange]) -> None:
        """Write rows' new values: one ``executemany`` per set of columns changed."""
        o = tables.outbox
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in changes:
            keys = tuple(sorted(change.values))
            groups.setdefault(keys, []).append(
                {"row_id": change.id, **{f"v_{k}": v for k, v in change.values.items()}}
            )
        conn = await self._conn()
        for keys, params in groups.items():
            stmt = (
                update(o)
                .where(o.c.id == bindparam("row_id"))
                .values({k: bindparam(f"v_{k}") for k in keys})
            )
            await conn.execute(stmt, params)

    async def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """Record rows as sent at ``now`` (row id, the platform's message reference): one
        conditional UPDATE for all of them, no row read. A row another process's recovery
        settled meanwhile (``uncertain``, or a reply put back to ``pending``) is marked sent too:
        the message did go out. Only for rows whose result concerns nothing else (the fast
        path's replies: no delivery, no hook that acts on a sent reply)."""
        if sent:
            params = [{"row_id": row_id, "ref": ref, "now": now} for row_id, ref in sent]
            await (await self._conn()).execute(_mark_sent(), params)

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
        sends it right after the commit, and return ``message`` as the queued row (its id,
        status, attempts and lease set); None (and nothing queued) if its idempotency key
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
        claimed = row.status == OutboxStatus.SENDING.value
        self.queued_pending += row.status == OutboxStatus.PENDING.value
        # ``message`` itself becomes the queued row (a new mapped object per reply cost more
        # than the fields set here: it is never added to the session).
        message.id = row.id
        message.status = row.status
        message.attempts = 1 if claimed else 0
        message.claimed_until = lease_until if claimed else None
        message.next_attempt_at = None
        return message


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
