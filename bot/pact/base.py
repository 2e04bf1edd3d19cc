"""PACT's shared ground: the service's configuration and neighbourhoods, who is invited to a
meeting, and how a PACT message reaches a person (the platform they use). The service itself is
put together from rooms of its own: ``prompts`` (the timed work), ``records`` (chairs'
recordings and owners' report-backs) and ``service`` (scheduling and insight)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.clock import Clock
from bot.common import Waker, address_of, enqueue
from bot.config import Config, NeighbourhoodConfig
from bot.domain import (
    PactMeeting,
    Person,
    Role,
    Speaker,
)
from bot.messages import OutgoingMessage
from bot.ports import UnitOfWork, UnitOfWorkFactory

MAX_TITLE = 300


class PactError(ValueError):
    """A refusal or a bad value; the message says why (and names the field)."""


class PactBase:
    """What every part of the PACT service shares."""

    def __init__(
        self, config: Config, uow_factory: UnitOfWorkFactory, clock: Clock, wake: Waker
    ) -> None:
        self.config, self.uow_factory, self.clock, self.wake = config, uow_factory, clock, wake
        self.tz = config.partnership.tz
        self.hoods = {
            h.key: h for h in config.pact.all_neighbourhoods(list(config.partnership.wards))
        }

    # ----------------------------------------------------------------- neighbourhoods

    def neighbourhood(self, name: str) -> NeighbourhoodConfig:
        """A neighbourhood by key or name (any case); PactError naming the known ones."""
        wanted = name.strip().casefold()
        for hood in self.hoods.values():
            if wanted in (hood.key.casefold(), hood.name.casefold()):
                return hood
        raise PactError(
            f"neighbourhood {name!r} is not known (known: {', '.join(sorted(self.hoods))})"
        )

    def hood_name(self, key: str) -> str:
        """The display name of a neighbourhood key."""
        hood = self.hoods.get(key)
        return hood.name if hood else key

    async def invited(
        self, uow: UnitOfWork, hood: NeighbourhoodConfig, chair_id: int | None = None
    ) -> list[Person]:
        """The neighbourhood's councillors and its configured partners (not the chair)."""
        wards = {w.casefold() for w in hood.wards}
        partners = {e.casefold() for e in hood.partners}
        out = []
        for person in await uow.people.all():
            if not person.active or person.id == chair_id:
                continue
            councillor = person.role == Role.COUNCILLOR.value and wards & {
                w.casefold() for w in person.wards
            }
            if councillor or person.email.casefold() in partners:
                out.append(person)
        return sorted(out, key=lambda p: p.name)

    async def chair(self, uow: UnitOfWork, m: PactMeeting) -> Person | None:
        """The meeting's chair, or None when there is none or they have left (inactive): a
        person who has left gets no PACT messages, as they get no invitations."""
        chair = await uow.people.get(m.chair_id)
        return chair if chair is not None and chair.active else None

    # ----------------------------------------------------------------- sending

    async def _send(
        self, uow: UnitOfWork, person: Person, message: OutgoingMessage, key: str, now: datetime
    ) -> bool:
        address = address_of(person, self.config.platforms)
        if address is None or not person.active:  # left: no PACT messages
            return False
        channel, recipient = address
        return await enqueue(
            uow,
            channel=channel,
            recipient=recipient,
            message=message,
            key=key,
            now=now,
            purpose="pact",
            priority=1,
        )

    def _title(self, m: PactMeeting) -> str:
        return f"{self.hood_name(m.neighbourhood)} PACT meeting"


class Turn(Protocol):
    """One inbound chat event being handled (see ``ConversationService``)."""

    uow: UnitOfWork
    person: Speaker
    now: datetime
    toast: str | None

    async def reply(self, message: OutgoingMessage, edit_ref: str | None = None) -> None:
        """Queue a reply to the sender (editing ``edit_ref`` in place when given)."""
        ...
