"""Imperative mapping of the domain dataclasses onto the tables."""

from __future__ import annotations

from sqlalchemy.orm import registry

from bot import domain
from storage import tables

_registry = registry()


def start_mappers() -> None:
    """Map the domain classes (idempotent: safe to call from every composition root)."""
    if getattr(domain.Person, "__mapper__", None) is not None:
        return
    pairs = [
        (domain.Person, tables.people),
        (domain.Invite, tables.invites),
        (domain.FormVersion, tables.form_versions),
        (domain.Campaign, tables.campaigns),
        (domain.Delivery, tables.deliveries),
        (domain.Conversation, tables.conversations),
        (domain.Report, tables.reports),
        (domain.OutboxMessage, tables.outbox),
        (domain.AuditEntry, tables.audit_log),
        (domain.Action, tables.actions),
        (domain.ActionEvent, tables.action_events),
    ]
    for cls, table in pairs:
        _registry.map_imperatively(cls, table)
