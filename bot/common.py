"""Small pieces shared by the services."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain import AuditEntry, OutboxMessage, Person, Role, Who
from bot.messages import MessageBuilder, OutgoingMessage, bold
from bot.ports import UnitOfWork

log = logging.getLogger(__name__)

Waker = Callable[[], None]
"""Called after a commit that queued messages, so the dispatcher sends them at once."""


def no_wake() -> None:
    """A waker that does nothing (CLI commands: the running bot's dispatcher polls)."""


@dataclass(frozen=True)
class Sender:
    """Who an inbound chat event came from."""

    platform: str
    user_id: int
    chat_id: int
    update_id: int | None = None
    display_name: str = ""

    @property
    def who(self) -> Who:
        """Who wrote, as the identity step takes it."""
        return Who(self.platform, str(self.user_id))


@dataclass(frozen=True)
class Outcome:
    """What a handler should do after the core handled an event.

    ``toast`` answers a button tap; ``direct`` is a reply that must *not* be stored (a refusal to an
    unknown user); anything else the core wanted to say is already in the outbox.
    """

    toast: str | None = None
    direct: OutgoingMessage | None = None


INSTALL_ID_KEY = "install-id"


async def install_id(uow: UnitOfWork) -> str:
    """This install's random id (16 hex digits), made and kept in ``bot_state`` on first use in
    this unit of work: it tells apart what two partnerships, or one whose database was rebuilt,
    would otherwise both call "meeting 1" (a calendar UID)."""
    found = await uow.state.get(INSTALL_ID_KEY)
    if found:
        return found
    made = secrets.token_hex(8)
    # Insert-if-absent: two first uses at once keep one id (the second waits for the first's
    # commit, inserts nothing and reads the id it wrote), never one overwriting the other.
    if await uow.state.swap(INSTALL_ID_KEY, None, made):
        return made
    kept = await uow.state.get(INSTALL_ID_KEY)
    assert kept is not None
    return kept


async def enqueue(
    uow: UnitOfWork,
    *,
    channel: str,
    recipient: str | int,
    message: OutgoingMessage,
    key: str,
    now: datetime,
    purpose: str = "reply",
    priority: int = 0,
    edit_ref: str | None = None,
    delivery_id: int | None = None,
    action_id: int | None = None,
    thread_ref: str | None = None,
) -> bool:
    """Queue a message in the outbox (a repeated key queues nothing and returns False)."""
    return await uow.outbox.add(
        OutboxMessage(
            channel=channel,
            recipient=str(recipient),
            payload=message.model_dump(mode="json"),
            idempotency_key=key,
            created_at=now,
            next_attempt_at=None,
            purpose=purpose,
            priority=priority,
            edit_ref=edit_ref,
            delivery_id=delivery_id,
            action_id=action_id,
            thread_ref=thread_ref,
        )
    )


async def audit(
    uow: UnitOfWork, now: datetime, actor: str, action: str, subject: str = "", **details: object
) -> None:
    """Append to the audit log (never put report text or names in ``details``)."""
    await uow.audit.add(
        AuditEntry(at=now, actor=actor, action=action, subject=subject, details=dict(details))
    )


def address_of(person: Person, platforms: frozenset[str]) -> tuple[str, str] | None:
    """Where to message a person: the platform they use (a chat they connected themselves
    first), among the ``platforms`` the bot sends on; None when they cannot be reached."""
    return person.reach(platforms)


async def alert_admins(
    uow: UnitOfWork, now: datetime, text: str, *, key: str, platforms: frozenset[str]
) -> None:
    """Tell every active admin, on the platform they use, and record it in the audit log.
    ``text`` may name a person (admins need to know whom to contact): it goes to the admins
    only. The audit log (append-only, beyond erasure) and the application log get the ``key``
    (ids: ``person:12:blocked:...``, a report reference) and a count, never the text."""
    log.warning("admin alert %s queued", key)
    told = 0
    for person in await uow.people.active_with_role(Role.ADMIN.value):
        if (address := person.reach(platforms)) is not None:
            told += 1
            channel, recipient = address
            await enqueue(
                uow,
                channel=channel,
                recipient=recipient,
                message=MessageBuilder().line(bold("tensionbot alert: "), text).build(),
                key=f"alert:{key}:{person.id}",
                now=now,
                purpose="notice",
            )
    await audit(uow, now, "system", "admin.alert", key, admins=told)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Normalise user text: NFC, no control or bidi-override characters, trimmed."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


def local_time(when: datetime, tz: ZoneInfo) -> str:
    """A UK-style local time, e.g. ``Sun 15 Nov 2026, 17:00``."""
    return when.astimezone(tz).strftime("%a %d %b %Y, %H:%M")


def period_label(period: str) -> str:
    """``2026-11`` -> ``November 2026``."""
    return datetime.strptime(period, "%Y-%m").strftime("%B %Y")
