"""Table definitions (the single source for the ORM mapping and for migration checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from bot.domain import ActionState, DeliveryState
from storage.encryption import EncryptedJSON, EncryptedText

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StateText(TypeDecorator[Any]):
    """A state enum (``ActionState``, ``DeliveryState``) stored as its plain string value, the
    same text as before the states were typed, and read back as the enum member. Writing a
    value the enum does not have fails here rather than storing it."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


people = Table(
    "people",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("organisation", String(200), nullable=False, default=""),
    Column("wards", JSON, nullable=False),
    Column("channel", String(16)),  # telegram | slack | email; NULL: the default (migration 0013)
    Column("linked_at", UTCDateTime),
    Column("blocked_at", UTCDateTime),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
)

# A person's addresses on chat platforms, one row each (migration 0012a): the platform as data,
# so a new platform is a new adapter and no new column. ``address``: the platform's id of the
# user (a Telegram user id, a Slack user id); ``chat``: where messages to them go there (a
# Telegram chat; a Slack user id, whose DM the adapter opens), NULL while unreachable there.
addresses = Table(
    "addresses",
    metadata,
    _id(),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("platform", String(32), nullable=False),
    Column("address", String(64), nullable=False),
    Column("chat", String(64)),
    Column("linked_at", UTCDateTime),
    UniqueConstraint("platform", "address"),
    UniqueConstraint("platform", "chat"),
)

invites = Table(
    "invites",
    metadata,
    _id(),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

form_versions = Table(
    "form_versions",
    metadata,
    _id(),
    Column("version", String(40), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    _id(),
    Column("key", String(80), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("form_version_id", ForeignKey("form_versions.id"), nullable=False),
    Column("opens_at", UTCDateTime, nullable=False),
    Column("closes_at", UTCDateTime, nullable=False),
    Column("reminder_times", JSON, nullable=False),
    Column("reminders_done", Integer, nullable=False, default=0),
    Column("target_wards", JSON, nullable=False),
    Column("target_roles", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="open", index=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
)

deliveries = Table(
    "deliveries",
    metadata,
    _id(),
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("status", StateText(DeliveryState, 16), nullable=False),
    Column("detail", String(200), nullable=False, default=""),
    Column("sent_at", UTCDateTime),
    Column("reminders", Integer, nullable=False, default=0),
    Column("last_reminded_at", UTCDateTime),
    Column("responded_at", UTCDateTime),
    Column("message_ref", String(64)),
    # When a form whose delivery was uncertain was sent again, worded so a duplicate is harmless
    # (once only: bot/returns/campaigns.py).
    Column("followed_up_at", UTCDateTime),
    Column("fallback", String(60)),  # why the form went by email instead ([email] fallback; 0013)
    UniqueConstraint("campaign_id", "person_id"),
)

conversations = Table(
    "conversations",
    metadata,
    _id(),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("flow", String(16), nullable=False),
    Column("form_version_id", ForeignKey("form_versions.id"), nullable=False),
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="SET NULL")),
    Column("status", String(16), nullable=False),
    Column("step", String(40), nullable=False),
    Column("draft", EncryptedJSON, nullable=False),
    Column("tensions", EncryptedJSON, nullable=False),
    Column("history", JSON, nullable=False),
    Column("editing", Boolean, nullable=False, default=False),
    Column("seq", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_conversations_person_status", "person_id", "status"),
)

reports = Table(
    "reports",
    metadata,
    _id(),
    Column("reference", String(32), nullable=False, unique=True),
    Column("person_id", ForeignKey("people.id", ondelete="SET NULL")),
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="SET NULL"), index=True),
    Column("source", String(16), nullable=False),
    Column("ward", String(100), nullable=False),
    Column("category", String(40), nullable=False),
    Column("level", Integer, nullable=False),
    Column("basis", String(20), nullable=False),
    Column("answers", EncryptedJSON, nullable=False),
    Column("consent_contact", Boolean, nullable=False),
    Column("consent_share", Boolean, nullable=False),
    Column("form_version_id", ForeignKey("form_versions.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("period", String(7), nullable=False, default=""),
    Index("ix_reports_created_ward_category", "created_at", "ward", "category"),
    # Covers every summary GROUP BY (index-only scans): period first, then what is grouped.
    Index("ix_reports_summary", "period", "ward", "category", "level", "basis", "source"),
    Index("ix_reports_person_created", "person_id", "created_at"),
)

# Reports per (period, ward, category, level, basis), kept in step with ``reports`` by triggers
# (migration 0008): the summary reads these counts, not every report of thirteen months.
report_counts = Table(
    "report_counts",
    metadata,
    # Key order (period, level, basis, …): the summary groups by the first three, in key order.
    Column("period", String(7), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("basis", String(20), primary_key=True),
    Column("ward", String(100), primary_key=True),
    Column("category", String(40), primary_key=True),
    Column("n", Integer, nullable=False),
)

# Reports per (period, ward, category): the thirteen-month cube of the summary, kept the same way.
report_cube = Table(
    "report_cube",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("ward", String(100), primary_key=True),
    Column("category", String(40), primary_key=True),
    Column("n", Integer, nullable=False),
)

reference_counters = Table(
    "reference_counters",
    metadata,
    Column("prefix", String(20), primary_key=True),
    Column("last", Integer, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("payload", EncryptedJSON, nullable=False),
    Column("idempotency_key", String(160), nullable=False, unique=True),
    Column("purpose", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("edit_ref", String(64)),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="SET NULL")),
    Column("action_id", ForeignKey("actions.id", ondelete="SET NULL")),
    Column("thread_ref", String(64)),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("claimed_until", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("result_ref", String(64)),
    Index("ix_outbox_status_priority_id", "status", "priority", "id"),
    Index("ix_outbox_channel_recipient_status", "channel", "recipient", "status"),
)

hate_crime_figures = Table(
    "hate_crime_figures",
    metadata,
    _id(),
    Column("month", String(7), nullable=False),
    Column("ward", String(100), nullable=False),
    Column("strand", String(30), nullable=False),
    Column("count", Integer, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("month", "ward", "strand"),
    Index("ix_hate_crime_figures_month_ward", "month", "ward"),
)

actions = Table(
    "actions",
    metadata,
    _id(),
    Column("report_id", ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("team_key", String(40), nullable=False),
    Column("state", StateText(ActionState, 20), nullable=False),
    Column("ack_due_at", UTCDateTime),
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("outcome", String(30)),
    Column("outcome_note", String(1000), nullable=False, default=""),
    Column("slack_channel", String(32)),
    Column("slack_ts", String(32)),
    Column("delivered_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(32)),
    Column("closed_at", UTCDateTime),
    Column("last_check_at", UTCDateTime),
    Column("version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("report_id", "team_key"),
    Index("ix_actions_state_due", "state", "ack_due_at"),
)

action_events = Table(
    "action_events",
    metadata,
    _id(),
    Column("action_id", ForeignKey("actions.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("text", EncryptedText, nullable=False, default=""),
    Column("for_reporter", Boolean, nullable=False, default=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("subject", String(200), nullable=False, default=""),
    Column("details", JSON, nullable=False),
)

inbound_updates = Table(
    "inbound_updates",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("update_id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False, index=True),
)

# Requests already accepted (Slack replay protection, modal idempotency), shared by every
# process; a row is kept until ``expires`` (see bot/delivery/seen.py).
seen_requests = Table(
    "seen_requests",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("expires", UTCDateTime, nullable=False, index=True),
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    # One shared token bucket per key ("telegram", "telegram:<chat>", ...): the theoretical
    # arrival time of the next send (GCRA). All processes on PostgreSQL take from the same
    # buckets, so together they keep one rate (storage/rates.py).
    Column("key", String(120), primary_key=True),
    Column("tat", UTCDateTime, nullable=False, index=True),
)

bot_state = Table(
    "bot_state",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
)

pact_meetings = Table(
    "pact_meetings",
    metadata,
    _id(),
    Column("neighbourhood", String(40), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("venue", String(200), nullable=False),
    Column("format", String(20), nullable=False),
    Column("chair_id", ForeignKey("people.id"), nullable=False, index=True),
    Column("weekday", Integer, nullable=False),
    Column("slot", String(10), nullable=False),
    Column("status", String(12), nullable=False),
    Column("public_attendees", Integer),
    Column("new_attendees", Integer),
    Column("partners_invited", Integer, nullable=False, default=0),
    Column("recorded_at", UTCDateTime),
    Column("recorded_by", String(200)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("neighbourhood", "starts_at"),
    Index("ix_pact_meetings_starts_at", "starts_at"),
)

pact_attendance = Table(
    "pact_attendance",
    metadata,
    _id(),
    Column("meeting_id", ForeignKey("pact_meetings.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", ForeignKey("people.id"), nullable=False),
    UniqueConstraint("meeting_id", "person_id"),
)

pact_priorities = Table(
    "pact_priorities",
    metadata,
    _id(),
    Column("neighbourhood", String(40), nullable=False),
    Column("meeting_id", ForeignKey("pact_meetings.id"), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("owner_team", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("carried", Integer, nullable=False, default=0),
    Column("report_back", EncryptedText, nullable=False, default=""),
    Column("report_back_at", UTCDateTime),
    Column("report_back_by", String(200)),
    Column("outcome", EncryptedText, nullable=False, default=""),
    Column("reviewed_meeting_id", ForeignKey("pact_meetings.id")),
    Column("closed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_pact_priorities_neighbourhood_status", "neighbourhood", "status"),
)

pact_recordings = Table(
    "pact_recordings",
    metadata,
    _id(),
    Column("meeting_id", ForeignKey("pact_meetings.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", ForeignKey("people.id"), nullable=False, index=True),
    Column("status", String(12), nullable=False),
    Column("step", String(40), nullable=False),
    Column("draft", EncryptedJSON, nullable=False),
    Column("seq", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
