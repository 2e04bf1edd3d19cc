"""Imperative mapping of the domain dataclasses onto the tables."""

from __future__ import annotations

from sqlalchemy.orm import registry, relationship

from bot import domain
from storage import tables

_registry = registry()


def start_mappers() -> None:
    """Map the domain classes (idempotent: safe to call from every composition root)."""
    if getattr(domain.Person, "__mapper__", None) is not None:
        return
    # A person's addresses load with them (one extra SELECT per batch of people) and are theirs:
    # an address taken from the list is deleted.
    _registry.map_imperatively(domain.Address, tables.addresses)
    _registry.map_imperatively(
        domain.Person,
        tables.people,
        properties={
            "addresses": relationship(
                domain.Address,
                lazy="selectin",
                cascade="all, delete-orphan",
                order_by=tables.addresses.c.id,
            )
        },
    )
    # Not mapped: domain.Conversation (plain objects, Core statements: repositories/conversations).
    pairs = [
        (domain.Invite, tables.invites),
        (domain.FormVersion, tables.form_versions),
        (domain.Campaign, tables.campaigns),
        (domain.Delivery, tables.deliveries),
        (domain.Report, tables.reports),
        (domain.OutboxMessage, tables.outbox),
        (domain.AuditEntry, tables.audit_log),
        (domain.ActionEvent, tables.action_events),
        (domain.PactMeeting, tables.pact_meetings),
        (domain.PactAttendance, tables.pact_attendance),
        (domain.PactPriority, tables.pact_priorities),
        (domain.PactRecording, tables.pact_recordings),
    ]
    for cls, table in pairs:
        _registry.map_imperatively(cls, table)
    # Optimistic locking: an UPDATE only applies if the version is still the one that was read.
    # The service moves the version itself (officers' changes only), so the delivery marker does
    # not invalidate the buttons it has just posted.
    _registry.map_imperatively(
        domain.Action,
        tables.actions,
        # Neutral names in the domain for columns named when teams were Slack-only.
        properties={"room": tables.actions.c.slack_channel, "post_ref": tables.actions.c.slack_ts},
        version_id_col=tables.actions.c.version,
        version_id_generator=False,
    )
