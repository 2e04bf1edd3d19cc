"""Identity is one step: a platform's sender becomes a :class:`~bot.domain.Person`, or one refusal.

Every adapter (Telegram, Slack, and the next ones) names who wrote the same way: the platform as
data (``"telegram"``, ``"slack"``) and the platform's own id of that user, as text. The core never
branches on the platform: :func:`identify` looks the pair up among people's addresses
(``PeopleRepo.by_address``) and either returns the active person or raises :class:`NotInvited`,
whose text is the one refusal every platform shows. Nothing about a stranger is stored.

A turn in chat starts with :func:`arrival`: the same check, read as a light
:class:`~bot.domain.Speaker` and combined with the update's de-duplication key in one statement.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.config import PartnershipConfig
from bot.domain import Person, Speaker, Who
from bot.messages import MessageBuilder, OutgoingMessage
from bot.ports import UnitOfWork

log = logging.getLogger(__name__)


def refusal_text(partnership: PartnershipConfig, *, short: bool = False) -> str:
    """The one wording for someone we do not know (or no longer serve), on every platform;
    ``short``: its first sentence alone (for a button's toast, at most 200 characters)."""
    first = f"Sorry, this is only for people invited by the {partnership.name}."
    if short:
        return first
    return (
        f"{first} If you should have access, please contact {partnership.contact} for a "
        "personal invitation link."
    )


def refusal(partnership: PartnershipConfig) -> OutgoingMessage:
    """The refusal as a message (answered directly, never queued: nothing about a stranger is
    stored)."""
    return MessageBuilder().line(refusal_text(partnership)).build()


class NotInvited(Exception):
    """The sender is nobody we serve; ``str()`` is the refusal to show them."""

    def __init__(self, partnership: PartnershipConfig) -> None:
        super().__init__(refusal_text(partnership))
        self.short = refusal_text(partnership, short=True)


async def find(uow: UnitOfWork, who: Who) -> Person | None:
    """The active person behind ``who``, or None."""
    person = await uow.people.by_address(who.platform, who.address)
    return person if person is not None and person.active else None


async def identify(uow: UnitOfWork, who: Who, partnership: PartnershipConfig) -> Person:
    """The active person behind ``who`` (in the caller's unit of work, so the person is read in
    the transaction that acts for them); raises :class:`NotInvited` for anyone else."""
    person = await find(uow, who)
    if person is None:
        # The platform name only: never the id, which identifies a stranger.
        log.info("refused an unknown %s user", who.platform)
        raise NotInvited(partnership)
    return person


async def arrival(
    uow: UnitOfWork,
    who: Who,
    update_id: int | None,
    at: datetime,
    partnership: PartnershipConfig,
) -> Speaker | None:
    """The start of a turn: the active person behind ``who`` as a :class:`Speaker`, with the
    update ``update_id`` recorded as handled at ``at`` (its key written in the caller's unit of
    work); None when the update was handled already (a redelivery). Raises
    :class:`NotInvited` for anyone else, and then nothing is stored, not even the update id.

    The common case is one statement (the key's insert returns the speaker); a second one
    (the speaker alone) tells a stranger from a redelivery, or serves an update without an id."""
    if update_id is not None:
        speaker = await uow.inbound.first_from(who.platform, who.address, update_id, at)
        if speaker is not None:
            return speaker
    speaker = await uow.people.speaker(who.platform, who.address)
    if speaker is None:
        log.info("refused an unknown %s user", who.platform)  # the platform only, never the id
        raise NotInvited(partnership)
    return speaker if update_id is None else None
