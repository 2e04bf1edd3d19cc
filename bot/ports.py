"""Protocols the core needs from the outside world: storage (unit of work), messengers and charts.

``storage`` implements the repositories with SQLAlchemy; ``handlers`` implement :class:`Messenger`
per platform and :class:`Charts` (``handlers/files``, matplotlib). The core is typed against these
protocols only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from bot.domain import (
    Action,
    ActionEvent,
    AuditEntry,
    Campaign,
    Conversation,
    Delivery,
    FormVersion,
    Invite,
    OutboxMessage,
    PactMeeting,
    PactPriority,
    PactRecording,
    Person,
    Report,
    Speaker,
)
from bot.messages import OutgoingMessage


class AlreadyExists(Exception):
    """A record with the same unique key was stored concurrently (by another process)."""


class TransientStoreError(Exception):
    """The database failed in a way that may pass if the same work is tried again (a lost
    connection, a restarting server, another process holding SQLite's write lock). Storage
    classifies by exception type and raises this from the unit of work."""


class RateBuckets(Protocol):
    """Token buckets shared by every process that sends (PostgreSQL), so that together they
    keep a platform's rates however many run. GCRA: ``burst`` sends back to back, then one per
    ``interval`` seconds."""

    async def reserve(
        self, key: str, interval: float, burst: float, horizon: float
    ) -> tuple[bool, float]:
        """Reserve the next send slot of bucket ``key`` if it is at most ``horizon`` seconds
        away: ``(True, seconds until the slot)``; else ``(False, seconds to wait before asking
        again)``, nothing reserved."""
        ...

    async def reserve_slots(
        self, key: str, interval: float, burst: float, horizon: float, count: int
    ) -> tuple[list[float], float]:
        """:meth:`reserve` for ``count`` sends at once (one statement): the seconds until each
        of their slots, in order; or ``([], seconds to wait before asking again)`` when the
        first is beyond ``horizon`` (nothing reserved). The batch may reach ``count``
        intervals past the horizon."""
        ...

    async def reserve_each(
        self,
        keys: Sequence[str],
        interval: float,
        burst: float,
        horizon: float,
        after: Sequence[float],
    ) -> list[float | None]:
        """One slot in each of the buckets ``keys`` (distinct), each no earlier than its
        ``after`` seconds from now: the seconds until each slot, or None where it would be
        beyond ``horizon`` (that one not reserved). One statement for all."""
        ...

    async def forget_idle(self) -> None:
        """Drop buckets nobody has used for a while (one per chat adds up)."""
        ...

    async def close(self) -> None:
        """Release what the buckets hold open (their connection)."""
        ...


@dataclass(frozen=True)
class OutboxChange:
    """New values for some columns of one outbox row (the dispatcher's record of a send)."""

    id: int
    values: Mapping[str, object]


@dataclass(frozen=True)
class FormerChat:
    """A chat a person was reached at until a re-link moved their account (``until``, the
    move), from ``since`` (their link there; None: not known). Erasure and subject access reach
    the messages sent there in that time, and no later ones (the chat may be someone else's
    since)."""

    channel: str
    recipient: str
    since: datetime | None
    until: datetime


@dataclass(frozen=True)
class DeliverySent:
    """A form (or a reminder: ``reminder``) went out for this delivery."""

    delivery_id: int
    message_ref: str | None
    reminder: bool


class Stale(Exception):
    """The record was changed by someone else since it was read."""


class ConversationChanged(Stale):
    """Two turns read the same conversation and the other one saved it first. Raised when the
    unit of work commits: the turn is rolled back and fails, so the platform delivers the update
    again and it is answered from the conversation as the other turn left it."""


@dataclass(frozen=True)
class PersonDetails:
    """What a people import sets for one person, keyed by email (``id`` None: someone new).

    A plain value, so an import of 100,000 rows compares and writes in bulk without loading
    100,000 mapped objects."""

    email: str
    name: str
    role: str
    organisation: str
    wards: tuple[str, ...]
    slack_user_id: str | None
    active: bool = True
    id: int | None = None
    channel: str | None = None  # the preferred channel; None: the default


class PeopleRepo(Protocol):
    """People and their links to chat platforms."""

    async def get(self, person_id: int) -> Person | None: ...
    async def by_email(self, email: str) -> Person | None: ...
    async def by_address(self, platform: str, address: str) -> Person | None:
        """The person with this address on ``platform`` (the platform's id of the user)."""
        ...

    async def by_chat(self, platform: str, chat: str) -> Person | None:
        """The person whose replies go to ``chat`` on ``platform``."""
        ...

    async def speaker(self, platform: str, address: str) -> Speaker | None:
        """The *active* person with this address on ``platform``, as a turn needs them (one
        statement, no :class:`Person` loaded); None for anyone else."""
        ...

    async def all(self) -> Sequence[Person]: ...
    async def active_with_role(self, role: str) -> Sequence[Person]:
        """The active people with ``role`` (with their addresses)."""
        ...

    async def add(self, person: Person) -> None: ...
    async def flush(self) -> None:
        """Write pending changes now (to free a unique address before another takes it)."""
        ...

    async def details(self) -> Sequence[PersonDetails]:
        """Everyone's import fields, in one query."""
        ...

    async def import_many(
        self, new: Sequence[PersonDetails], changed: Sequence[PersonDetails], now: datetime
    ) -> None:
        """Insert ``new`` and update ``changed`` (by id) in bulk; :class:`AlreadyExists` if a
        unique key is taken."""
        ...


class InviteRepo(Protocol):
    """Deep-link invitations."""

    async def by_hash(self, token_hash: str) -> Invite | None: ...
    async def unused_for(self, person_id: int) -> Sequence[Invite]: ...
    async def add(self, invite: Invite) -> None: ...


class FormRepo(Protocol):
    """Stored form versions."""

    async def get(self, form_id: int) -> FormVersion | None: ...
    async def by_version(self, version: str) -> FormVersion | None: ...
    async def ensure(self, form: FormVersion) -> FormVersion: ...


class CampaignRepo(Protocol):
    """Returns (campaigns)."""

    async def get(self, campaign_id: int) -> Campaign | None: ...
    async def by_key(self, key: str) -> Campaign | None: ...
    async def open(self) -> Sequence[Campaign]: ...
    async def latest(self, kind: str | None = None) -> Campaign | None: ...
    async def for_period(self, period: str) -> Sequence[Campaign]: ...
    async def closed_since(self, since: datetime) -> Sequence[Campaign]: ...
    async def add(self, campaign: Campaign) -> None: ...


class DeliveryRepo(Protocol):
    """Per-person copies of campaigns."""

    async def get(self, delivery_id: int) -> Delivery | None: ...
    async def set_status(
        self,
        delivery_id: int,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        not_from: Sequence[str] | None = None,
        **values: object,
    ) -> bool: ...
    async def sent(
        self, delivery_id: int, message_ref: str | None, now: datetime, *, reminder: bool
    ) -> None: ...
    async def sent_many(self, sends: Sequence[DeliverySent], now: datetime) -> None:
        """:meth:`sent` for many deliveries at once (one statement per kind)."""
        ...

    async def get_for(self, campaign_id: int, person_id: int) -> Delivery | None: ...
    async def for_campaign(self, campaign_id: int) -> Sequence[Delivery]: ...
    async def uncertain_to_follow_up(
        self, campaign_id: int, queued_before: datetime
    ) -> Sequence[Delivery]:
        """Deliveries still ``uncertain`` and not yet followed up, whose uncertain form was
        queued before ``queued_before``."""
        ...

    async def for_person(self, person_id: int) -> Sequence[Delivery]: ...
    async def counts(self, campaign_id: int) -> dict[str, int]: ...
    async def add(self, delivery: Delivery) -> None: ...
    async def add_many(self, deliveries: Sequence[Delivery]) -> None:
        """Store many deliveries at once (their ids are set)."""
        ...


class ConversationRepo(Protocol):
    """Conversations in progress, handed out as plain objects. Change them freely: the unit of
    work saves every one it handed out when it commits, and raises
    :class:`ConversationChanged` if another turn saved the same one since it was read."""

    async def get(self, conversation_id: int) -> Conversation | None: ...
    async def active_for(self, person_id: int) -> Conversation | None: ...
    async def add(self, conversation: Conversation) -> None: ...


class ReportRepo(Protocol):
    """Submitted tensions."""

    async def get(self, report_id: int) -> Report | None: ...
    async def add(self, report: Report) -> None: ...
    async def for_person(self, person_id: int, limit: int = 20) -> Sequence[Report]: ...
    async def for_campaign(self, campaign_id: int) -> Sequence[Report]: ...
    async def count_by_campaign_person(self, campaign_id: int) -> dict[int, int]: ...
    async def lock_period(self, period: str) -> None: ...
    async def next_number(self, prefix: str) -> int: ...


class OutboxRepo(Protocol):
    """Outbound messages; the dispatcher is the only sender."""

    async def add(self, message: OutboxMessage) -> bool: ...
    async def add_many(self, messages: Sequence[OutboxMessage]) -> int:
        """Queue many messages at once, less those whose idempotency key exists; how many."""
        ...

    async def claim(
        self,
        now: datetime,
        limits: Mapping[str, int],
        lease_until: datetime,
        held_before: datetime | None = None,
    ) -> Sequence[OutboxMessage]: ...
    async def claim_companions(
        self, row: OutboxMessage, lease_until: datetime
    ) -> Sequence[OutboxMessage]: ...
    async def get(self, message_id: int) -> OutboxMessage | None: ...
    async def states(self, message_ids: Sequence[int]) -> dict[int, OutboxMessage]:
        """The rows as they stand now, without their payload, detached (locked on PostgreSQL
        until the transaction ends)."""
        ...

    async def settle(self, changes: Sequence[OutboxChange]) -> None:
        """Write rows' new values, in bulk."""
        ...

    async def recover_in_flight(self, now: datetime) -> Sequence[OutboxMessage]: ...
    async def next_due(self) -> datetime | None: ...
    async def counts(self) -> dict[str, int]: ...
    async def busy(self, held_before: datetime | None = None) -> int: ...
    async def last_reply(self, channel: str, recipient: str) -> OutboxMessage | None: ...

    # The fast path (bot/delivery/direct.py):
    queued_pending: int  # messages this unit of work queued for the dispatcher

    async def add_claimed(
        self, message: OutboxMessage, lease_until: datetime, mine: Sequence[int] = ()
    ) -> OutboxMessage | None: ...

    async def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None: ...


class ActionRepo(Protocol):
    """Teams' actions on reports, and their timelines."""

    async def get(self, action_id: int) -> Action | None: ...
    async def for_report(self, report_id: int) -> Sequence[Action]: ...
    async def add(self, action: Action) -> None: ...
    async def save(self, action: Action) -> None: ...
    async def add_event(self, event: ActionEvent) -> None: ...
    async def events(self, action_id: int) -> Sequence[ActionEvent]: ...
    async def overdue(self, now: datetime) -> Sequence[Action]: ...
    async def due_for_check(self, cutoff: datetime) -> Sequence[Action]: ...


class FigureRepo(Protocol):
    """Police hate-crime figures and the SQL aggregations summaries need."""

    async def replace_months(
        self, months: Sequence[str], rows: Sequence[tuple[str, str, str, int]], at: datetime
    ) -> None: ...
    async def tension_cube(self, months: Sequence[str]) -> dict[tuple[str, str, str], int]: ...
    async def tension_levels(
        self, months: Sequence[str], ward: str | None = None, category: str | None = None
    ) -> dict[tuple[str, str, str], int]: ...
    async def returns_by(self, month: str, by: str) -> dict[tuple[str, str], int]: ...
    async def outstanding(self, month: str) -> list[str]: ...
    async def action_times(
        self, month: str
    ) -> list[
        tuple[str, str, int, str, str, datetime, datetime | None, datetime | None, datetime | None]
    ]: ...
    async def hate_crime_by_strand(
        self, months: Sequence[str]
    ) -> dict[tuple[str, str, str], int]: ...
    async def tensions_by(
        self, months: Sequence[str], first: str, second: str
    ) -> dict[tuple[str, str], int]: ...


class AuditRepo(Protocol):
    """Append-only audit log."""

    async def add(self, entry: AuditEntry) -> None: ...


class InboundRepo(Protocol):
    """Platform updates already handled (so a redelivered update does nothing twice)."""

    async def seen(self, platform: str, update_id: int, at: datetime) -> bool: ...
    async def first_from(
        self, platform: str, address: str, update_id: int, at: datetime
    ) -> Speaker | None:
        """Record the update only if the *active* person with this address on ``platform``
        sent it and it is new, and return them (one statement for both). None when nothing was
        recorded: a stranger or someone who has left (nothing about them is stored), or an
        update already handled (:meth:`PeopleRepo.speaker` tells which)."""
        ...


class SeenRequestRepo(Protocol):
    """Requests already accepted, each kept until it expires (replays, repeated submissions)."""

    async def add(self, key: str, expires: datetime) -> bool:
        """Record ``key``; False if it was recorded already."""
        ...

    async def purge(self, now: datetime) -> int:
        """Forget keys expired by ``now``; how many."""
        ...


class StateRepo(Protocol):
    """Small key/value state (e.g. the Telegram polling offset)."""

    async def get(self, key: str, *, lock: bool = False) -> str | None:
        """The value; with ``lock``, no other transaction may change it until this one ends."""
        ...

    async def set(self, key: str, value: str) -> None: ...
    async def swap(self, key: str, old: str | None, new: str) -> bool:
        """Set ``new`` only if the value is still ``old`` (None: absent); whether it was."""
        ...


class PactRepo(Protocol):
    """PACT meetings, attendance, priorities, recordings and the attendance analysis."""

    async def add_meeting(self, meeting: PactMeeting) -> None: ...
    async def get_meeting(self, meeting_id: int) -> PactMeeting | None: ...
    async def reload_meeting(self, meeting: PactMeeting) -> None:
        """Read the meeting again (what another transaction committed since it was read)."""
        ...

    async def meeting_at(self, neighbourhood: str, starts_at: datetime) -> PactMeeting | None: ...
    async def meetings_between(
        self, start: datetime, end: datetime, *, field: str = "starts_at"
    ) -> Sequence[PactMeeting]: ...
    async def for_chair(self, person_id: int) -> Sequence[PactMeeting]: ...
    async def for_neighbourhood(self, neighbourhood: str) -> Sequence[PactMeeting]: ...
    async def set_attendance(self, meeting_id: int, person_ids: Sequence[int]) -> None: ...
    async def attendance(self, meeting_id: int) -> list[int]: ...
    async def add_priority(self, priority: PactPriority) -> None: ...
    async def get_priority(self, priority_id: int) -> PactPriority | None: ...
    async def open_priorities(self, neighbourhood: str) -> Sequence[PactPriority]: ...
    async def priorities_reviewed_or_set(self, meeting_id: int) -> Sequence[PactPriority]: ...
    async def add_recording(self, recording: PactRecording) -> None: ...
    async def get_recording(self, recording_id: int) -> PactRecording | None: ...
    async def active_recording(self, person_id: int) -> PactRecording | None: ...
    async def meeting_rows(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> list[tuple[Any, ...]]: ...
    async def attendance_by(
        self,
        groups: Sequence[str],
        since: datetime,
        until: datetime,
        neighbourhood: str | None = None,
    ) -> dict[str, list[tuple[str, int, float, int, int, int, int]]]: ...
    async def meeting_counts(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> dict[str, int]: ...
    async def priority_counts(
        self, since: datetime, until: datetime, neighbourhood: str | None = None
    ) -> dict[str, int]: ...


class PrivacyRepo(Protocol):
    """Retention, erasure and subject access: free-text rows by kind, and everything about one
    person. Kinds: reports, action_events, actions, outbox (sent/failed/uncertain only),
    outbox_all, pact_priorities, pact_meetings (venues; erasure only), conversations,
    pact_recordings."""

    async def text_rows(
        self,
        kind: str,
        *,
        before: datetime | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 500,
    ) -> list[tuple[int, dict[str, Any]]]: ...
    async def set_fields(self, kind: str, row_id: int, values: dict[str, Any]) -> None: ...
    async def inactive_people(self, before: datetime) -> list[int]: ...
    async def reports_of(self, person_id: int) -> Sequence[Report]: ...
    async def conversations_of(self, person_id: int) -> Sequence[Conversation]: ...
    async def recordings_of(self, person_id: int) -> Sequence[PactRecording]: ...
    async def invites_of(self, person_id: int) -> Sequence[Invite]: ...
    async def meetings_attended(self, person_id: int) -> Sequence[PactMeeting]: ...
    async def messages_to(
        self, addresses: Sequence[tuple[str, str]], former: Sequence[FormerChat] = ()
    ) -> Sequence[OutboxMessage]: ...
    async def messages_keyed(self, keys: Sequence[str]) -> Sequence[OutboxMessage]: ...
    async def audit_about(self, refs: Sequence[str]) -> Sequence[AuditEntry]: ...
    async def remove_links(
        self,
        person_id: int,
        addresses: Sequence[tuple[str, str]],
        former: Sequence[FormerChat] = (),
    ) -> dict[str, int]: ...
    async def replace_actor(self, old: Sequence[str], new: str) -> int: ...


class UnitOfWork(Protocol):
    """One transaction. ``async with uow:`` opens it; nothing is kept unless ``commit()``."""

    @property
    def people(self) -> PeopleRepo: ...
    @property
    def invites(self) -> InviteRepo: ...
    @property
    def forms(self) -> FormRepo: ...
    @property
    def campaigns(self) -> CampaignRepo: ...
    @property
    def deliveries(self) -> DeliveryRepo: ...
    @property
    def conversations(self) -> ConversationRepo: ...
    @property
    def reports(self) -> ReportRepo: ...
    @property
    def outbox(self) -> OutboxRepo: ...
    @property
    def actions(self) -> ActionRepo: ...
    @property
    def figures(self) -> FigureRepo: ...
    @property
    def audit(self) -> AuditRepo: ...
    @property
    def inbound(self) -> InboundRepo: ...
    @property
    def seen(self) -> SeenRequestRepo: ...
    @property
    def state(self) -> StateRepo: ...
    @property
    def pact(self) -> PactRepo: ...
    @property
    def privacy(self) -> PrivacyRepo: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work per update or job."""

    def __call__(self) -> UnitOfWork: ...


class OnLinked(Protocol):
    """What happens when a person has just linked a chat, inside the unit of work that links
    them (before it commits): returns the keys of the returns sent to them.

    People (identity) is below returns: the campaign service subscribes to this through the
    people service's constructor, so identity never imports returns."""

    async def __call__(self, uow: UnitOfWork, person: Person, now: datetime) -> list[str]: ...


class Purger(Protocol):
    """Clears what an erasure or redaction overwrote or deleted out of the database files: old
    row versions, freed pages and index entries, the write-ahead log. Called after the change
    is committed (it cannot run inside a transaction). True when everything was cleared; False
    when something was left for the next purge (a busy table, an older snapshot)."""

    async def purge(self) -> bool: ...


@dataclass(frozen=True)
class SendResult:
    """What a messenger reports for one message."""

    ok: bool
    message_ref: str | None = None
    retry_after: float | None = None  # the platform asked us to wait (429)
    permanent: bool = False  # never retry (blocked, chat not found, bad request)
    blocked: bool = False  # the person blocked the bot
    error: str | None = None
    not_sent: bool = False  # nothing left this process (no slot): try again, not an attempt
    # The request reached the platform but no answer came (a timeout, a 504): it may have
    # been carried out. Sent again only if a duplicate is harmless (a reply, news); otherwise
    # the row becomes ``uncertain``, as when the process dies mid-send.
    uncertain: bool = False
    # What an admin can do about a refusal, in the platform's own words (only its messenger
    # knows them: "add the bot as an administrator", "/invite the bot"); None if nothing.
    hint: str | None = None


class Messenger(Protocol):
    """Sends neutral messages on one platform."""

    channel: str

    async def send(
        self,
        recipient: str,
        message: OutgoingMessage,
        edit_ref: str | None = None,
        thread_ref: str | None = None,
    ) -> SendResult: ...


@runtime_checkable
class KeyedMessenger(Messenger, Protocol):
    """A messenger that is told which outbox row it is sending (its idempotency key), so that a
    retried send of the row is recognisable at the other end (an email's Message-ID)."""

    async def send_keyed(
        self,
        key: str,
        recipient: str,
        message: OutgoingMessage,
        edit_ref: str | None = None,
        thread_ref: str | None = None,
    ) -> SendResult: ...


class MessageLinks(Protocol):
    """A platform's links to its own messages, accepted as the answer to "Where exactly?"
    (``handlers/slack/links.py``). Stored links start :data:`bot.places.LINK_PREFIX`."""

    def check(self, answer: str) -> tuple[str | None, str | None]:
        """``(stored, None)`` for a good link, ``(None, why)`` for a bad one of this platform,
        ``(None, None)`` for anything else (kept as typed)."""
        ...

    def url(self, stored: str) -> str | None:
        """The URL of a stored answer that this checker wrote, else None."""
        ...
