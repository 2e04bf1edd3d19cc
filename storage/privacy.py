"""SQL for retention, erasure and subject access (:class:`bot.ports.PrivacyRepo`).

Free-text rows are read and written through the table columns, so encrypted columns are
decrypted and re-encrypted by their column types. The audit log is never updated or deleted here
(migration 0007 makes the database refuse it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import (
    ActionState,
    AuditEntry,
    Conversation,
    Invite,
    OutboxMessage,
    OutboxStatus,
    PactMeeting,
    PactRecording,
    Report,
)
from bot.ports import FormerChat
from storage import tables
from storage.repositories.conversations import SqlConversationRepo

_TERMINAL = [OutboxStatus.SENT.value, OutboxStatus.FAILED.value, OutboxStatus.UNCERTAIN.value]


@dataclass(frozen=True)
class _Kind:
    table: Table
    time: ColumnElement[Any]  # what "older than the cut-off" is measured on
    fields: tuple[str, ...]
    where: tuple[ColumnElement[bool], ...] = ()


def _kinds() -> dict[str, _Kind]:
    t = tables
    p = t.pact_priorities.c
    return {
        "reports": _Kind(
            t.reports, t.reports.c.created_at, ("answers", "form_version_id", "person_id")
        ),
        "action_events": _Kind(t.action_events, t.action_events.c.at, ("text", "action_id")),
        "actions": _Kind(
            t.actions,
            func.coalesce(t.actions.c.closed_at, t.actions.c.created_at),
            ("outcome_note", "report_id"),
            (t.actions.c.state == ActionState.CLOSED,),
        ),
        "outbox": _Kind(
            t.outbox,
            t.outbox.c.created_at,
            ("payload", "action_id", "channel", "recipient"),
            (t.outbox.c.status.in_(_TERMINAL),),
        ),
        "outbox_all": _Kind(
            t.outbox, t.outbox.c.created_at, ("payload", "action_id", "channel", "recipient")
        ),
        "pact_priorities": _Kind(
            t.pact_priorities,
            func.coalesce(p.closed_at, p.report_back_at, p.created_at),
            ("title", "report_back", "outcome"),
        ),
        # Erasure only (a venue is not kept for a time: it is where a meeting was held).
        "pact_meetings": _Kind(t.pact_meetings, t.pact_meetings.c.created_at, ("venue",)),
        "conversations": _Kind(
            t.conversations,
            t.conversations.c.updated_at,
            ("draft", "tensions", "history", "status", "person_id"),
        ),
        "pact_recordings": _Kind(
            t.pact_recordings, t.pact_recordings.c.updated_at, ("draft", "status", "person_id")
        ),
    }


KINDS = _kinds()

#: Every table retention and erasure change (the vacuum after them: ``Database.purge``).
PURGED_TABLES = (
    "people",
    "addresses",  # platform ids of erased people
    "rate_buckets",  # keyed by hashes; rewritten so no dead row of an old key stays
    "invites",
    "reports",
    "conversations",
    "outbox",
    "actions",
    "action_events",
    "campaigns",
    "pact_meetings",
    "pact_attendance",
    "pact_priorities",
    "pact_recordings",
)


class SqlPrivacyRepo:
    """Retention, erasure and subject-access queries."""

    def __init__(self, session: AsyncSession, conversations: SqlConversationRepo) -> None:
        self.session = session
        self._conversations = conversations

    async def text_rows(
        self,
        kind: str,
        *,
        before: datetime | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 500,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Rows of one kind in id order after ``after_id``, with the time column in
        [since, before) when given: (id, {field: value})."""
        k = KINDS[kind]
        c = k.table.c
        conditions = [c.id > after_id, *k.where]
        if before is not None:
            conditions.append(k.time < before)
        if since is not None:
            conditions.append(k.time >= since)
        stmt = (
            select(c.id, *(c[f] for f in k.fields))
            .where(and_(*conditions))
            .order_by(c.id)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [(int(r[0]), dict(zip(k.fields, r[1:], strict=True))) for r in rows]

    async def set_fields(self, kind: str, row_id: int, values: dict[str, Any]) -> None:
        """Overwrite some fields of one row."""
        table = KINDS[kind].table
        if table is tables.conversations:
            # Every write of a conversation moves seq: a turn that read it before this
            # redaction cannot then save its old draft over it (repositories/conversations.py).
            values = {**values, "seq": table.c.seq + 1}
        await self.session.execute(update(table).where(table.c.id == row_id).values(**values))

    async def inactive_people(self, before: datetime) -> list[int]:
        """People marked inactive before ``before`` and not yet anonymised."""
        c = tables.people.c
        stmt = (
            select(c.id)
            .where(
                c.active.is_(False),
                func.coalesce(c.updated_at, c.created_at) < before,
                ~c.email.like("%@erased.invalid"),
            )
            .order_by(c.id)
        )
        return [int(i) for i in (await self.session.scalars(stmt)).all()]

    async def reports_of(self, person_id: int) -> Sequence[Report]:
        c = tables.reports.c
        stmt = select(Report).where(c.person_id == person_id).order_by(c.created_at, c.id)
        return (await self.session.scalars(stmt)).all()

    async def conversations_of(self, person_id: int) -> Sequence[Conversation]:
        # Plain objects held by the unit of work's conversation repository: saved at commit.
        return await self._conversations.of_person(person_id)

    async def recordings_of(self, person_id: int) -> Sequence[PactRecording]:
        c = tables.pact_recordings.c
        stmt = select(PactRecording).where(c.person_id == person_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def invites_of(self, person_id: int) -> Sequence[Invite]:
        c = tables.invites.c
        stmt = select(Invite).where(c.person_id == person_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def meetings_attended(self, person_id: int) -> Sequence[PactMeeting]:
        m, a = tables.pact_meetings, tables.pact_attendance
        stmt = (
            select(PactMeeting)
            .join(a, a.c.meeting_id == m.c.id)
            .where(a.c.person_id == person_id)
            .order_by(m.c.starts_at, m.c.id)
        )
        return (await self.session.scalars(stmt)).all()

    def _addressed(
        self, addresses: Sequence[tuple[str, str]], former: Sequence[FormerChat] = ()
    ) -> ColumnElement[bool]:
        c = tables.outbox.c
        terms = [and_(c.channel == ch, c.recipient == to) for ch, to in addresses]
        for f in former:  # a former chat: only what was queued there while it was theirs
            since = () if f.since is None else (c.created_at >= f.since,)
            terms.append(
                and_(
                    c.channel == f.channel,
                    c.recipient == f.recipient,
                    c.created_at <= f.until,
                    *since,
                )
            )
        return or_(*terms)

    async def messages_to(
        self, addresses: Sequence[tuple[str, str]], former: Sequence[FormerChat] = ()
    ) -> Sequence[OutboxMessage]:
        """Outbound messages to any of these (channel, recipient) addresses, and to these
        former chats while they were the person's."""
        if not addresses and not former:
            return []
        stmt = (
            select(OutboxMessage)
            .where(self._addressed(addresses, former))
            .order_by(tables.outbox.c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def messages_keyed(self, keys: Sequence[str]) -> Sequence[OutboxMessage]:
        """Outbound messages with these idempotency keys."""
        if not keys:
            return []
        c = tables.outbox.c
        stmt = select(OutboxMessage).where(c.idempotency_key.in_(list(keys))).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def audit_about(self, refs: Sequence[str]) -> Sequence[AuditEntry]:
        """Audit entries whose actor or subject is one of ``refs`` (e.g. ``person:12``)."""
        if not refs:
            return []
        c = tables.audit_log.c
        stmt = (
            select(AuditEntry)
            .where(or_(c.actor.in_(list(refs)), c.subject.in_(list(refs))))
            .order_by(c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def remove_links(
        self,
        person_id: int,
        addresses: Sequence[tuple[str, str]],
        former: Sequence[FormerChat] = (),
    ) -> dict[str, int]:
        """Delete the person's invitations, PACT attendance and messages addressed to them
        (to ``former`` chats: while those were theirs)."""
        counts: dict[str, int] = {}
        i, a, o = tables.invites, tables.pact_attendance, tables.outbox
        for name, stmt in (
            ("invites", delete(i).where(i.c.person_id == person_id)),
            ("pact_attendance", delete(a).where(a.c.person_id == person_id)),
        ):
            counts[name] = (await self.session.execute(stmt)).rowcount  # type: ignore[attr-defined]
        counts["outbox"] = 0
        if addresses or former:
            result = await self.session.execute(delete(o).where(self._addressed(addresses, former)))
            counts["outbox"] = result.rowcount  # type: ignore[attr-defined]
        return counts

    async def replace_actor(self, old: Sequence[str], new: str) -> int:
        """Replace an actor recorded by platform id (a Slack user id, an email) with ``new``
        everywhere but the audit log."""
        if not old:
            return 0
        t = tables
        targets = [
            (t.action_events, "actor"),
            (t.actions, "acknowledged_by"),
            (t.pact_priorities, "report_back_by"),
            (t.pact_meetings, "recorded_by"),
            (t.pact_meetings, "created_by"),
            (t.campaigns, "created_by"),
        ]
        total = 0
        for table, column in targets:
            col = table.c[column]
            result = await self.session.execute(
                update(table).where(col.in_(list(old))).values({column: new})
            )
            total += result.rowcount  # type: ignore[attr-defined]
        return total
