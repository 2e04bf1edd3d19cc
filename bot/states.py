"""The states a delivery and an outbound message move through, and the moves allowed (the
records in :mod:`bot.domain` change state only through ``move_to``)."""

from __future__ import annotations

from enum import StrEnum


class IllegalMove(ValueError):
    """A state change the record's rules do not allow. The services refuse a person's step in
    their own words before it gets here; this is the guard against a bug (the message carries
    ids and states only, never personal data)."""


class DeliveryState(StrEnum):
    """Where one person's copy of one campaign stands."""

    QUEUED = "queued"  # in the outbox, not yet confirmed sent
    SENT = "sent"
    UNCERTAIN = "uncertain"  # the process died while the send was in flight
    UNREACHABLE = "unreachable"  # never linked, or blocked the bot
    RESPONDED = "responded"  # submitted one or more tensions
    NIL = "nil"  # nothing to report

    @property
    def answered(self) -> bool:
        """True once the person has answered (reports or nil): nobody chases them."""
        return self in ANSWERED


#: The answered states.
ANSWERED = frozenset({DeliveryState.RESPONDED, DeliveryState.NIL})
#: Waiting for an answer (sent, or on its way, or in doubt).
AWAITING = frozenset({DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.UNCERTAIN})

_DELIVERY_MOVES: dict[DeliveryState, frozenset[DeliveryState]] = {
    # Sent, in doubt or refused by the outbox; answered even before the send is confirmed.
    DeliveryState.QUEUED: frozenset(
        {
            DeliveryState.SENT,
            DeliveryState.UNCERTAIN,
            DeliveryState.UNREACHABLE,
            DeliveryState.RESPONDED,
            DeliveryState.NIL,
        }
    ),
    DeliveryState.SENT: frozenset(
        {DeliveryState.RESPONDED, DeliveryState.NIL, DeliveryState.UNREACHABLE}
    ),
    DeliveryState.UNCERTAIN: frozenset(
        {
            DeliveryState.SENT,
            DeliveryState.RESPONDED,
            DeliveryState.NIL,
            DeliveryState.UNREACHABLE,
        }
    ),
    # Linked again (queued anew); an urgent report or an older button still answers it.
    DeliveryState.UNREACHABLE: frozenset(
        {
            DeliveryState.QUEUED,
            DeliveryState.UNREACHABLE,
            DeliveryState.RESPONDED,
            DeliveryState.NIL,
        }
    ),
    DeliveryState.RESPONDED: frozenset({DeliveryState.RESPONDED}),  # more reports: still so
    DeliveryState.NIL: frozenset({DeliveryState.NIL, DeliveryState.RESPONDED}),  # after all
}


class OutboxStatus(StrEnum):
    """Lifecycle of one outbound message."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # permanently (blocked, bad request) or out of attempts
    UNCERTAIN = "uncertain"  # in flight when the process died; not resent (at most once)
