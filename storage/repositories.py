"""SQLAlchemy implementations of the repository protocols in :mod:`bot.ports`.

Repositories add and flush; only the unit of work commits. Aggregations are SQL (GROUP BY).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.exc import StaleDataError

from bot.domain import (
    Action,
    ActionEvent,
    ActionState,
    AuditEntry,
    Campaign,
    Conversation,
    Delivery,
    DeliveryStatus,
    FormVersion,
    Invite,
    MeetingStatus,
    OutboxMessage,
    OutboxStatus,
    PactAttendance,
    PactMeeting,
    PactPriority,
    PactRecording,
    Person,
    PriorityStatus,
    Report,
)
from bot.ports import AlreadyExists, PersonDetails, Stale
from storage import tables

_BATCH = 10_000  # rows per bulk statement: bounded memory, few round trips


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class SqlPeopleRepo(_Repo):
    """People."""

    async def get(self, person_id: int) -> Person | None:
        return await self.session.get(Person, person_id)

    async def by_email(self, email: str) -> Person | None:
        stmt = select(Person).where(func.lower(tables.people.c.email) == email.lower())
        return (await self.session.scalars(stmt)).first()

    async def by_telegram_user(self, user_id: int) -> Person | None:
        stmt = select(Person).where(tables.people.c.telegram_user_id == user_id)
        return (await self.session.scalars(stmt)).first()

    async def by_telegram_chat(self, chat_id: int) -> Person | None:
        stmt = select(Person).where(tables.people.c.telegram_chat_id == chat_id)
        return (await self.session.scalars(stmt)).first()

    async def by_slack_user(self, slack_user_id: str) -> Person | None:
        stmt = select(Person).where(tables.people.c.slack_user_id == slack_user_id)
        return (await self.session.scalars(stmt)).first()

    async def all(self) -> Sequence[Person]:
        stmt = select(Person).order_by(tables.people.c.name, tables.people.c.id)
        return (await self.session.scalars(stmt)).all()

    async def add(self, person: Person) -> None:
        self.session.add(person)
        await self.session.flush()

    async def details(self) -> Sequence[PersonDetails]:
        p = tables.people.c
        conn = await self.session.connection()
        rows = await conn.execute(
            select(
                p.id,
                p.email,
                p.name,
                p.role,
                p.organisation,
                p.wards,
                p.slack_user_id,
                p.active,
                p.channel,
            )
        )
        return [
            PersonDetails(
                email=r.email,
                name=r.name,
                role=r.role,
                organisation=r.organisation,
                wards=tuple(r.wards),
                slack_user_id=r.slack_user_id,
                active=r.active,
                id=r.id,
                channel=r.channel,
            )
            for r in rows
        ]

    async def import_many(
        self, new: Sequence[PersonDetails], changed: Sequence[PersonDetails], now: datetime
    ) -> None:
        # Core executemany, not the ORM unit of work: a statement per batch, not per person
        # (100,000 people in seconds). The session's connection keeps it in the transaction.
        t = tables.people
        conn = await self.session.connection()
        try:
            if changed:
                by_id = t.c.id == bindparam("pid")
                # Two people may swap Slack ids in one import: release the old ids first, so
                # no row briefly holds an id another row still has.
                # Every changed row, not only those given an id: one may give up an id that a
                # row earlier in the file takes.
                releasing = [{"pid": d.id} for d in changed]
                if releasing:
                    await conn.execute(update(t).where(by_id).values(slack_user_id=None), releasing)
                await conn.execute(
                    update(t)
                    .where(by_id)
                    .values(
                        name=bindparam("b_name"),
                        role=bindparam("b_role"),
                        organisation=bindparam("b_organisation"),
                        wards=bindparam("b_wards", type_=t.c.wards.type),
                        slack_user_id=bindparam("b_slack"),
                        channel=bindparam("b_channel"),
                        active=True,
                        updated_at=now,
                    ),
                    [
                        {
                            "pid": d.id,
                            "b_name": d.name,
                            "b_role": d.role,
                            "b_organisation": d.organisation,
                            "b_wards": list(d.wards),
                            "b_slack": d.slack_user_id,
                            "b_channel": d.channel,
                        }
                        for d in changed
                    ],
                )
            for start in range(0, len(new), _BATCH):
                await conn.execute(
                    insert(t),
                    [
                        {
                            "name": d.name,
                            "role": d.role,
                            "email": d.email,
                            "organisation": d.organisation,
                            "wards": list(d.wards),
                            "slack_user_id": d.slack_user_id,
                            "channel": d.channel,
                            "active": True,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for d in new[start : start + _BATCH]
                    ],
                )
        except IntegrityError:
            # `from None`: the driver's error carries the statement's parameters (names,
            # emails), which must not reach a traceback or a log.
            raise AlreadyExists("people: a unique key is taken") from None


class SqlInviteRepo(_Repo):
    """Invitations."""

    async def by_hash(self, token_hash: str) -> Invite | None:
        stmt = select(Invite).where(tables.invites.c.token_hash == token_hash)
        return (await self.session.scalars(stmt)).first()

    async def unused_for(self, person_id: int) -> Sequence[Invite]:
        c = tables.invites.c
        stmt = select(Invite).where(
            c.person_id == person_id, c.used_at.is_(None), c.revoked_at.is_(None)
        )
        return (await self.session.scalars(stmt)).all()

    async def add(self, invite: Invite) -> None:
        self.session.add(invite)
        await self.session.flush()


class SqlFormRepo(_Repo):
    """Form versions."""

    async def get(self, form_id: int) -> FormVersion | None:
        return await self.session.get(FormVersion, form_id)

    async def by_version(self, version: str) -> FormVersion | None:
        stmt = select(FormVersion).where(tables.form_versions.c.version == version)
        return (await self.session.scalars(stmt)).first()

    async def ensure(self, form: FormVersion) -> FormVersion:
        """Store this version unless it is stored already (another process may race us)."""
        existing = await self.by_version(form.version)
        if existing is not None:
            return existing
        try:
            async with self.session.begin_nested():
                self.session.add(form)
            return form
        except IntegrityError:
            stored = await self.by_version(form.version)
            assert stored is not None
            return stored


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
            DeliveryStatus.SENT.value,
            only_from=[DeliveryStatus.QUEUED.value, DeliveryStatus.UNCERTAIN.value],
            sent_at=now,
            detail="",
        )
        await self.session.execute(
            base.where(d.c.message_ref.is_(None)).values(message_ref=message_ref)
        )

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
                d.c.status == DeliveryStatus.UNCERTAIN.value,
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


class SqlConversationRepo(_Repo):
    """Conversations."""

    async def get(self, conversation_id: int) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def active_for(self, person_id: int) -> Conversation | None:
        c = tables.conversations.c
        stmt = (
            select(Conversation)
            .where(c.person_id == person_id, c.status == "active")
            .order_by(c.id.desc())
        )
        return (await self.session.scalars(stmt)).first()

    async def active_for_campaign(self, campaign_id: int) -> Sequence[Conversation]:
        c = tables.conversations.c
        stmt = select(Conversation).where(c.campaign_id == campaign_id, c.status == "active")
        return (await self.session.scalars(stmt)).all()

    async def add(self, conversation: Conversation) -> None:
        self.session.add(conversation)
        await self.session.flush()


class SqlReportRepo(_Repo):
    """Reports."""

    async def get(self, report_id: int) -> Report | None:
        return await self.session.get(Report, report_id)

    async def add(self, report: Report) -> None:
        self.session.add(report)
        await self.session.flush()

    async def for_person(self, person_id: int, limit: int = 20) -> Sequence[Report]:
        c = tables.reports.c
        stmt = (
            select(Report)
            .where(c.person_id == person_id)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def for_campaign(self, campaign_id: int) -> Sequence[Report]:
        c = tables.reports.c
        stmt = select(Report).where(c.campaign_id == campaign_id).order_by(c.id)
        return (await self.session.scalars(stmt)).all()

    async def count_by_campaign_person(self, campaign_id: int) -> dict[int, int]:
        c = tables.reports.c
        stmt = (
            select(c.person_id, func.count())
            .where(c.campaign_id == campaign_id)
            .group_by(c.person_id)
        )
        return {pid: n for pid, n in (await self.session.execute(stmt)).all()}

    async def lock_period(self, period: str) -> None:
        """Queue behind (and hold off) every other writer of ``period``'s reports.

        Adding reports takes the period's reference counter first (``next_number``), so
        changing a counted column of a report takes the same row lock before the count
        triggers lock their rows: every transaction then locks the counts in one order and
        two cannot deadlock. (Reports of other periods never share a count row.)"""
        t = tables.reference_counters
        await self.session.execute(
            update(t).where(t.c.prefix == f"TR-{period}").values(last=t.c.last)
        )

    async def next_number(self, prefix: str) -> int:
        """Atomically take the next number for a reference prefix (e.g. ``TR-2026-11``)."""
        t = tables.reference_counters
        stmt = update(t).where(t.c.prefix == prefix).values(last=t.c.last + 1).returning(t.c.last)
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        if value is not None:
            return int(value)
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(t).values(prefix=prefix, last=1))
            return 1
        except IntegrityError:  # another transaction created the row first
            value = (await self.session.execute(stmt)).scalar_one()
            return int(value)


class SqlOutboxRepo(_Repo):
    """The outbox."""

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
        return True

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def load(self, message_ids: Sequence[int]) -> None:
        """Load these rows in one query (later ``get`` calls are then answered from the session,
        not by one query each)."""
        o = tables.outbox.c
        await self.session.scalars(select(OutboxMessage).where(o.id.in_(message_ids)))

    async def claim(
        self, now: datetime, limits: Mapping[str, int], lease_until: datetime
    ) -> Sequence[OutboxMessage]:
        """Claim due messages, at most ``limits[channel]`` per channel (``"*"``: any channel not
        named, so name a full channel with 0), at most one per recipient, and never overtaking an
        earlier one."""
        out: list[OutboxMessage] = []
        named = [ch for ch in limits if ch != "*"]
        for channel, limit in limits.items():
            if limit > 0:
                out += await self._claim(now, channel, named, limit, lease_until)
        return out

    async def _claim(
        self, now: datetime, channel: str, named: list[str], limit: int, lease_until: datetime
    ) -> Sequence[OutboxMessage]:
        """One channel's share (``"*"``: every channel not ``named``)."""
        o = tables.outbox
        earlier = aliased(o)
        blocked = exists().where(
            and_(
                earlier.c.channel == o.c.channel,
                earlier.c.recipient == o.c.recipient,
                earlier.c.id < o.c.id,
                earlier.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]),
            )
        )
        stmt = (
            select(OutboxMessage)
            .where(
                o.c.status == OutboxStatus.PENDING.value,
                o.c.channel.not_in(named) if channel == "*" else o.c.channel == channel,
                or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now),
                ~blocked,
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
            .where(c.state == ActionState.OPEN.value, c.ack_due_at <= now)
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
                c.state.in_([ActionState.ACKNOWLEDGED.value, ActionState.IN_PROGRESS.value]),
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


_AWAITING = ("queued", "sent", "uncertain")


class _Returns(_Repo):
    async def returns_by(self, month: str, by: str) -> dict[tuple[str, str], int]:
        """(role or ward, delivery status) -> people, for the month's monthly return."""
        if by == "role":
            sql = (
                "SELECT p.role, d.status, count(*) FROM deliveries d "
                "JOIN campaigns c ON c.id = d.campaign_id JOIN people p ON p.id = d.person_id "
                "WHERE c.period = :m AND c.kind = 'monthly' GROUP BY p.role, d.status"
            )
        elif by == "ward" and self.session.get_bind().dialect.name == "postgresql":
            sql = (
                "SELECT w.ward, d.status, count(*) FROM deliveries d "
                "JOIN campaigns c ON c.id = d.campaign_id JOIN people p ON p.id = d.person_id "
                "CROSS JOIN LATERAL json_array_elements_text(p.wards) AS w(ward) "
                "WHERE c.period = :m AND c.kind = 'monthly' GROUP BY w.ward, d.status"
            )
        elif by == "ward":
            sql = (
                "SELECT je.value, d.status, count(*) FROM deliveries d "
                "JOIN campaigns c ON c.id = d.campaign_id JOIN people p ON p.id = d.person_id, "
                "json_each(p.wards) AS je "
                "WHERE c.period = :m AND c.kind = 'monthly' GROUP BY je.value, d.status"
            )
        else:
            raise ValueError(f"cannot group returns by {by!r}")
        rows = await self.session.execute(text(sql), {"m": month})
        return {(str(k), str(s)): int(n) for k, s, n in rows.all()}

    async def outstanding(self, month: str) -> list[str]:
        """Names of people who have not answered the month's return (for admins only)."""
        p, d, c = tables.people, tables.deliveries, tables.campaigns
        stmt = (
            select(p.c.name)
            .join(d, d.c.person_id == p.c.id)
            .join(c, c.c.id == d.c.campaign_id)
            .where(c.c.period == month, c.c.kind == "monthly", d.c.status.in_(_AWAITING))
            .order_by(p.c.name)
        )
        return list((await self.session.scalars(stmt)).all())

    async def action_times(
        self, month: str
    ) -> list[
        tuple[str, str, int, str, str, datetime, datetime | None, datetime | None, datetime | None]
    ]:
        """(team, state, escalation level, ward, category, created, acknowledged, closed,
        acknowledge-by) per action on the month's reports: the summary works out durations,
        censoring and what was overdue when."""
        a, r = tables.actions, tables.reports
        stmt = (
            select(
                a.c.team_key,
                a.c.state,
                a.c.escalation_level,
                r.c.ward,
                r.c.category,
                a.c.created_at,
                a.c.acknowledged_at,
                a.c.closed_at,
                a.c.ack_due_at,
            )
            .join(r, r.c.id == a.c.report_id)
            .where(r.c.period == month)
        )
        return [
            (str(t), str(st), int(lv), str(w), str(c), cr, ack, cl, due)
            for t, st, lv, w, c, cr, ack, cl, due in (await self.session.execute(stmt)).all()
        ]

    async def tensions_by(
        self, months: Sequence[str], first: str, second: str
    ) -> dict[tuple[str, str], int]:
        """Reports in ``months`` counted by two columns (e.g. period x category)."""
        allowed = {"period", "ward", "category", "level", "basis"}
        if not {first, second} <= allowed:
            raise ValueError("cannot group by those columns")
        t = tables.reports
        a, b = t.c[first], t.c[second]
        stmt = select(a, b, func.count()).where(t.c.period.in_(list(months))).group_by(a, b)
        return {(str(x), str(y)): int(n) for x, y, n in (await self.session.execute(stmt)).all()}

    async def hate_crime_by_strand(self, months: Sequence[str]) -> dict[tuple[str, str, str], int]:
        """(month, ward, strand) -> count (one row each: the three are unique together)."""
        t = tables.hate_crime_figures
        stmt = select(t.c.month, t.c.ward, t.c.strand, t.c.count).where(t.c.month.in_(list(months)))
        return {(m, w, s): int(n) for m, w, s, n in (await self.session.execute(stmt)).all()}


class SqlFigureRepo(_Returns):
    """Hate-crime figures, and GROUP BY aggregations over reports (indexed on period, ward)."""

    async def replace_months(
        self, months: Sequence[str], rows: Sequence[tuple[str, str, str, int]], at: datetime
    ) -> None:
        t = tables.hate_crime_figures
        await self.session.execute(delete(t).where(t.c.month.in_(list(months))))
        if rows:
            await self.session.execute(
                insert(t),
                [
                    {"month": m, "ward": w, "strand": s, "count": n, "imported_at": at}
                    for m, w, s, n in rows
                ],
            )

    async def tension_cube(self, months: Sequence[str]) -> dict[tuple[str, str, str], int]:
        """(period, ward, category) -> reports, over ``months``, most of the summary is derived
        from: read from the trigger-kept ``report_cube``, a few thousand rows at most."""
        t = tables.report_cube
        # One row per key already (the primary key): no grouping.
        stmt = select(t.c.period, t.c.ward, t.c.category, t.c.n).where(
            t.c.period.in_(list(months)), t.c.n > 0
        )
        return {(p, w, c): int(k) for p, w, c, k in (await self.session.execute(stmt)).all()}

    async def tension_levels(
        self, months: Sequence[str], ward: str | None = None, category: str | None = None
    ) -> dict[tuple[str, str, str], int]:
        """(period, level, basis) -> reports over ``months`` (optionally one ward/category)."""
        t = tables.report_counts
        n = func.sum(t.c.n)
        stmt = (
            select(t.c.period, t.c.level, t.c.basis, n)
            .where(t.c.period.in_(list(months)))
            .group_by(t.c.period, t.c.level, t.c.basis)
            .having(n > 0)
        )
        if ward is not None:
            stmt = stmt.where(t.c.ward == ward)
        if category is not None:
            stmt = stmt.where(t.c.category == category)
        rows = (await self.session.execute(stmt)).all()
        return {(p, str(lv), b): int(n) for p, lv, b, n in rows}


class SqlAuditRepo(_Repo):
    """The audit log (insert only)."""

    async def add(self, entry: AuditEntry) -> None:
        self.session.add(entry)
        await self.session.flush()


class SqlInboundRepo(_Repo):
    """Updates already handled."""

    async def seen(self, platform: str, update_id: int, at: datetime) -> bool:
        """Record the update; True if it had been recorded before (a redelivery)."""
        t = tables.inbound_updates
        found = await self.session.scalar(
            select(t.c.update_id).where(t.c.platform == platform, t.c.update_id == update_id)
        )
        if found is not None:
            return True
        await self.session.execute(insert(t).values(platform=platform, update_id=update_id, at=at))
        return False


class SqlSeenRequestRepo(_Repo):
    """Requests already accepted, each until it expires (shared by every process)."""

    async def add(self, key: str, expires: datetime) -> bool:
        """Record ``key``; False if it is already recorded (until purged). Two
        transactions adding one key at once: one gets True, the other False (the insert
        waits for the first to finish, then does nothing)."""
        t = tables.seen_requests
        dialect = self.session.get_bind().dialect.name
        statement = (postgresql_insert(t) if dialect == "postgresql" else sqlite_insert(t)).values(
            key=key, expires=expires
        )
        result = await self.session.execute(
            statement.on_conflict_do_nothing(index_elements=["key"])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def purge(self, now: datetime) -> int:
        """Forget the keys expired by ``now``; how many."""
        t = tables.seen_requests
        result = await self.session.execute(delete(t).where(t.c.expires <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]


class SqlStateRepo(_Repo):
    """Key/value state."""

    async def get(self, key: str) -> str | None:
        t = tables.bot_state
        return await self.session.scalar(select(t.c.value).where(t.c.key == key))

    async def set(self, key: str, value: str) -> None:
        t = tables.bot_state
        result = await self.session.execute(update(t).where(t.c.key == key).values(value=value))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(insert(t).values(key=key, value=value))


class SqlPactRepo(_Repo):
    """PACT meetings, attendance, priorities, chairs' recordings, and the attendance analysis
    (GROUP BY with a window function for each neighbourhood's usual attendance)."""

    async def add_meeting(self, meeting: PactMeeting) -> None:
        self.session.add(meeting)
        await self.session.flush()

    async def get_meeting(self, meeting_id: int) -> PactMeeting | None:
        return await self.session.get(PactMeeting, meeting_id)

    async def meeting_at(self, neighbourhood: str, starts_at: datetime) -> PactMeeting | None:
        c = tables.pact_meetings.c
        stmt = select(PactMeeting).where(c.neighbourhood == neighbourhood, c.starts_at == starts_at)
        return (await self.session.scalars(stmt)).first()

    async def meetings_between(
        self, start: datetime, end: datetime, *, field: str = "starts_at"
    ) -> Sequence[PactMeeting]:
        """Meetings whose ``starts_at`` (or ``ends_at``) falls in [start, end)."""
        c = tables.pact_meetings.c
        column = c.ends_at if field == "ends_at" else c.starts_at
        stmt = select(PactMeeting).where(column >= start, column < end).order_by(column, c.id)
        return (await self.session.scalars(stmt)).all()

    async def for_chair(self, person_id: int) -> Sequence[PactMeeting]:
        c = tables.pact_meetings.c
        stmt = select(PactMeeting).where(c.chair_id == person_id).order_by(c.starts_at, c.id)
        return (await self.session.scalars(stmt)).all()

    async def for_neighbourhood(self, neighbourhood: str) -> Sequence[PactMeeting]:
        c = tables.pact_meetings.c
        stmt = (
            select(PactMeeting).where(c.neighbourhood == neighbourhood).order_by(c.starts_at, c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def set_attendance(self, meeting_id: int, person_ids: Sequence[int]) -> None:
        t = tables.pact_attendance
        await self.session.execute(delete(t).where(t.c.meeting_id == meeting_id))
        for person_id in sorted(set(person_ids)):
            self.session.add(PactAttendance(meeting_id=meeting_id, person_id=person_id))
        await self.session.flush()

    async def attendance(self, meeting_id: int) -> list[int]:
        c = tables.pact_attendance.c
        stmt = select(c.person_id).where(c.meeting_id == meeting_id).order_by(c.person_id)
        return list((await self.session.scalars(stmt)).all())

    async def add_priority(self, priority: PactPriority) -> None:
        self.session.add(priority)
        await self.session.flush()

    async def get_priority(self, priority_id: int) -> PactPriority | None:
        return await self.session.get(PactPriority, priority_id)

    async def open_priorities(self, neighbourhood: str) -> Sequence[PactPriority]:
        c = tables.pact_priorities.c
        stmt = (
            select(PactPriority)
            .where(c.neighbourhood == neighbourhood, c.status == PriorityStatus.OPEN.value)
            .order_by(c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def priorities_reviewed_or_set(self, meeting_id: int) -> Sequence[PactPriority]:
        c = tables.pact_priorities.c
        stmt = (
            select(PactPriority)
            .where(or_(c.meeting_id == meeting_id, c.reviewed_meeting_id == meeting_id))
            .order_by(c.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def add_recording(self, recording: PactRecording) -> None:
        self.session.add(recording)
        await self.session.flush()

    async def get_recording(self, recording_id: int) -> PactRecording | None:
        return await self.session.get(PactRecording, recording_id)

    async def active_recording(self, person_id: int) -> PactRecording | None:
        c = tables.pact_recordings.c
        stmt = (
            select(PactRecording)
            .where(c.person_id == person_id, c.status == "active")
            .order_by(c.id.desc())
        )
        return (await self.session.scalars(stmt)).first()

    # ----------------------------------------------------------------- analysis

    def _recorded(self, since: datetime, until: datetime, neighbourhood: str | None) -> Any:
        m = tables.pact_meetings
        conditions = [
            m.c.status == MeetingStatus.RECORDED.value,
            m.c.starts_at >= since,
            m.c.starts_at < until,
        ]
        if neighbourhood is not None:
            conditions.append(m.c.neighbourhood == neighbourhood)
        return and_(*conditions)

    async def meeting_rows(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> list[tuple[Any, ...]]:
        """(id, neighbourhood, starts_at, venue, format, weekday, slot, public, new, invited,
        partners present) for each recorded meeting, in date order."""
        m, a = tables.pact_meetings, tables.pact_attendance
        present = (
            select(func.count()).where(a.c.meeting_id == m.c.id).correlate(m).scalar_subquery()
        )
        stmt = (
            select(
                m.c.id,
                m.c.neighbourhood,
                m.c.starts_at,
                m.c.venue,
                m.c.format,
                m.c.weekday,
                m.c.slot,
                m.c.public_attendees,
                m.c.new_attendees,
                m.c.partners_invited,
                present,
            )
            .where(self._recorded(since, until, neighbourhood))
            .order_by(m.c.starts_at, m.c.id)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]

    async def attendance_by(
        self, group: str, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> list[tuple[str, int, float, int, int, float | None, int, int]]:
        """Recorded meetings grouped by ``group``: (key, meetings, mean public attendance, new
        attendees, public attendees, mean attendance relative to the neighbourhood's own mean,
        partners present, partners invited)."""
        if group not in {"slot", "weekday", "venue", "format", "neighbourhood"}:
            raise ValueError(f"cannot group meetings by {group!r}")
        m, a = tables.pact_meetings, tables.pact_attendance
        present = (
            select(func.count()).where(a.c.meeting_id == m.c.id).correlate(m).scalar_subquery()
        )
        usual = func.avg(m.c.public_attendees * 1.0).over(partition_by=m.c.neighbourhood)
        inner = (
            select(
                m.c[group].label("k"),
                m.c.public_attendees.label("pub"),
                m.c.new_attendees.label("new"),
                (m.c.public_attendees * 1.0 / func.nullif(usual, 0)).label("rel"),
                present.label("present"),
                m.c.partners_invited.label("invited"),
            )
            .where(self._recorded(since, until, neighbourhood))
            .subquery()
        )
        stmt = (
            select(
                inner.c.k,
                func.count(),
                func.avg(inner.c.pub * 1.0),
                func.sum(inner.c.new),
                func.sum(inner.c.pub),
                func.avg(inner.c.rel),
                func.sum(inner.c.present),
                func.sum(inner.c.invited),
            )
            .group_by(inner.c.k)
            .order_by(inner.c.k)
        )
        return [
            (
                str(k),
                int(n),
                float(mean or 0),
                int(new or 0),
                int(pub or 0),
                float(rel) if rel is not None else None,
                int(pres or 0),
                int(inv or 0),
            )
            for k, n, mean, new, pub, rel, pres, inv in (await self.session.execute(stmt)).all()
        ]

    async def meeting_counts(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> dict[str, int]:
        """Meetings in the window by status."""
        m = tables.pact_meetings
        stmt = (
            select(m.c.status, func.count())
            .where(m.c.starts_at >= since, m.c.starts_at < until)
            .group_by(m.c.status)
        )
        if neighbourhood is not None:
            stmt = stmt.where(m.c.neighbourhood == neighbourhood)
        return {str(s): int(n) for s, n in (await self.session.execute(stmt)).all()}

    async def priority_counts(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> dict[str, int]:
        """Priorities set, closed and carried (reviewed and kept open) in the window, and
        open now."""
        p, m = tables.pact_priorities, tables.pact_meetings
        reviewed = aliased(m)
        hood = [p.c.neighbourhood == neighbourhood] if neighbourhood is not None else []
        set_ = (
            select(func.count())
            .select_from(p)
            .where(p.c.created_at >= since, p.c.created_at < until, *hood)
        )
        closed = (
            select(func.count())
            .select_from(p)
            .where(
                p.c.status == PriorityStatus.CLOSED.value,
                p.c.closed_at >= since,
                p.c.closed_at < until,
                *hood,
            )
        )
        carried = (
            select(func.count())
            .select_from(p.join(reviewed, reviewed.c.id == p.c.reviewed_meeting_id))
            .where(
                p.c.status == PriorityStatus.OPEN.value,
                reviewed.c.starts_at >= since,
                reviewed.c.starts_at < until,
                *hood,
            )
        )
        open_ = (
            select(func.count())
            .select_from(p)
            .where(p.c.status == PriorityStatus.OPEN.value, *hood)
        )
        # Of those set in the window, how many are resolved (closed) now: the resolution rate.
        resolved = set_.where(p.c.status == PriorityStatus.CLOSED.value)
        out = {}
        for name, stmt in (
            ("set", set_),
            ("resolved", resolved),
            ("closed", closed),
            ("carried", carried),
            ("open", open_),
        ):
            out[name] = int((await self.session.execute(stmt)).scalar_one())
        return out
