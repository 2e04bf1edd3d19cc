"""Protocols the core needs from the outside world: storage (unit of work) and messengers.

``storage`` implements the repositories with SQLAlchemy; ``handlers`` implement :class:`Messenger`
per platform. The core is typed against these protocols only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol

from bot.domain import (
    AuditEntry,
    Campaign,
    Conversation,
    Delivery,
    FormVersion,
    Invite,
    OutboxMessage,
    Person,
    Report,
)
from bot.messages import OutgoingMessage


class PeopleRepo(Protocol):
    """People and their links to chat platforms."""

    async def get(self, person_id: int) -> Person | None: ...
    async def by_email(self, email: str) -> Person | None: ...
    async def by_telegram_user(self, user_id: int) -> Person | None: ...
    async def by_telegram_chat(self, chat_id: int) -> Person | None: ...
    async def all(self) -> Sequence[Person]: ...
    async def add(self, person: Person) -> None: ...


class InviteRepo(Protocol):
    """Deep-link invitations."""

    async def by_hash(self, token_hash: str) -> Invite | None: ...
    async def unused_for(self, person_id: int) -> Sequence[Invite]: ...
    async def add(self, invite: Invite) -> None: ...


class FormRepo(Protocol):
    """Stored form versions."""

    async def get(self, form_id: int) -> FormVersion | None: ...
    async def by_version(self, version: str) -> FormVersion | None: ...
    async def add(self, form: FormVersion) -> None: ...


class CampaignRepo(Protocol):
    """Returns (campaigns)."""

    async def get(self, campaign_id: int) -> Campaign | None: ...
    async def by_key(self, key: str) -> Campaign | None: ...
    async def open(self) -> Sequence[Campaign]: ...
    async def latest(self, kind: str | None = None) -> Campaign | None: ...
    async def for_period(self, period: str) -> Sequence[Campaign]: ...
    async def add(self, campaign: Campaign) -> None: ...


class DeliveryRepo(Protocol):
    """Per-person copies of campaigns."""

    async def get(self, delivery_id: int) -> Delivery | None: ...
    async def get_for(self, campaign_id: int, person_id: int) -> Delivery | None: ...
    async def for_campaign(self, campaign_id: int) -> Sequence[Delivery]: ...
    async def for_person(self, person_id: int) -> Sequence[Delivery]: ...
    async def counts(self, campaign_id: int) -> dict[str, int]: ...
    async def add(self, delivery: Delivery) -> None: ...


class ConversationRepo(Protocol):
    """Conversations in progress."""

    async def get(self, conversation_id: int) -> Conversation | None: ...
    async def active_for(self, person_id: int) -> Conversation | None: ...
    async def active_for_campaign(self, campaign_id: int) -> Sequence[Conversation]: ...
    async def add(self, conversation: Conversation) -> None: ...


class ReportRepo(Protocol):
    """Submitted tensions."""

    async def add(self, report: Report) -> None: ...
    async def for_person(self, person_id: int, limit: int = 20) -> Sequence[Report]: ...
    async def for_campaign(self, campaign_id: int) -> Sequence[Report]: ...
    async def count_by_campaign_person(self, campaign_id: int) -> dict[int, int]: ...
    async def next_number(self, prefix: str) -> int: ...


class OutboxRepo(Protocol):
    """Outbound messages; the dispatcher is the only sender."""

    async def add(self, message: OutboxMessage) -> bool: ...
    async def claim(self, now: datetime, limit: int, lease_until: datetime) -> Sequence[OutboxMessage]: ...
    async def get(self, message_id: int) -> OutboxMessage | None: ...
    async def recover_in_flight(self, now: datetime) -> Sequence[OutboxMessage]: ...
    async def next_due(self) -> datetime | None: ...
    async def counts(self) -> dict[str, int]: ...


class AuditRepo(Protocol):
    """Append-only audit log."""

    async def add(self, entry: AuditEntry) -> None: ...


class InboundRepo(Protocol):
    """Platform updates already handled (so a redelivered update does nothing twice)."""

    async def seen(self, platform: str, update_id: int, at: datetime) -> bool: ...


class StateRepo(Protocol):
    """Small key/value state (e.g. the Telegram polling offset)."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


class UnitOfWork(Protocol):
    """One transaction. ``async with uow:`` opens it; nothing is kept unless ``commit()``."""

    people: PeopleRepo
    invites: InviteRepo
    forms: FormRepo
    campaigns: CampaignRepo
    deliveries: DeliveryRepo
    conversations: ConversationRepo
    reports: ReportRepo
    outbox: OutboxRepo
    audit: AuditRepo
    inbound: InboundRepo
    state: StateRepo

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


@dataclass(frozen=True)
class SendResult:
    """What a messenger reports for one message."""

    ok: bool
    message_ref: str | None = None
    retry_after: float | None = None  # the platform asked us to wait (429)
    permanent: bool = False  # never retry (blocked, chat not found, bad request)
    blocked: bool = False  # the person blocked the bot
    error: str | None = None


class Messenger(Protocol):
    """Sends neutral messages on one platform."""

    channel: str

    async def send(
        self, recipient: str, message: OutgoingMessage, edit_ref: str | None = None
    ) -> SendResult: ...
