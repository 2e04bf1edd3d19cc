"""PACT meetings advertised in public: each neighbourhood's upcoming meetings as a page and a
subscribable calendar feed, and its recent meetings' "you said, we did". No personal data: a
meeting's date, time, venue, format and whether it is cancelled, and a recorded meeting's
priorities with what was done (as partners wrote them); never its chair, invitees or
attendance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.common import install_id, local_time
from bot.config import Config
from bot.domain import MeetingStatus, PactMeeting, PactPriority, PriorityStatus
from bot.pact.rules import FORMAT_LABELS, calendar_uid
from bot.ports import UnitOfWorkFactory

#: How far ahead a page lists meetings, and how far back the feed keeps them.
AHEAD = timedelta(days=366)
FEED_BACK = timedelta(days=92)
#: How many recorded meetings' "you said, we did" a page shows, and from how far back.
RECENT = 3
RECENT_BACK = timedelta(days=366)


@dataclass(frozen=True)
class PublicMeeting:
    """One meeting as the public sees it."""

    uid: str
    starts_at: datetime
    ends_at: datetime
    when: str  # local, e.g. "Thu 10 Dec 2026, 18:30"
    venue: str
    format: str
    cancelled: bool


@dataclass(frozen=True)
class SaidDid:
    """One priority in a recorded meeting's "you said, we did"."""

    title: str
    outcome: str  # what was done ("" for a priority set at this meeting)
    status: str  # "done", "carried" or "new"


@dataclass(frozen=True)
class PublicRecord:
    """A recorded meeting as the public sees it: when, and its "you said, we did"."""

    when: str
    priorities: list[SaidDid]


@dataclass(frozen=True)
class PublicNeighbourhood:
    """A neighbourhood's public listing."""

    key: str
    name: str
    wards: list[str]
    meetings: list[PublicMeeting]
    recent: list[PublicRecord] = field(default_factory=list)


class PublicPactService:
    """Reads meetings for the public page and feed (writes nothing but, once, the install id
    the calendar UIDs name)."""

    def __init__(self, config: Config, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock

    def neighbourhoods(self) -> list[tuple[str, str]]:
        """(key, name) of every neighbourhood, by name."""
        return sorted(
            ((n.key, n.name) for n in self.config.pact.neighbourhoods), key=lambda x: x[1]
        )

    async def listing(
        self, key: str, *, since: timedelta = timedelta(0)
    ) -> PublicNeighbourhood | None:
        """The neighbourhood's meetings from ``since`` ago to a year ahead; None if unknown."""
        hood = next((n for n in self.config.pact.neighbourhoods if n.key == key), None)
        if hood is None:
            return None
        now = self.clock.now()
        tz = self.config.partnership.tz
        async with self.uow_factory() as uow:
            install = await install_id(uow)
            every = await uow.pact.for_neighbourhood(key)
            meetings = [m for m in every if now - since <= m.ends_at and m.starts_at <= now + AHEAD]
            recorded = sorted(
                (
                    m
                    for m in every
                    if m.status == MeetingStatus.RECORDED.value
                    and now - RECENT_BACK <= m.starts_at <= now
                ),
                key=lambda m: m.starts_at,
                reverse=True,
            )[:RECENT]
            recent = [
                PublicRecord(
                    when=local_time(m.starts_at, tz),
                    priorities=_said_did(await uow.pact.priorities_reviewed_or_set(m.id or 0), m),
                )
                for m in recorded
            ]
            await uow.commit()  # the install id, when this read made it (nothing else is written)
        return PublicNeighbourhood(
            hood.key,
            hood.name,
            list(hood.wards),
            [
                PublicMeeting(
                    uid=calendar_uid(m.id, install),
                    starts_at=m.starts_at,
                    ends_at=m.ends_at,
                    when=local_time(m.starts_at, tz),
                    venue=m.venue,
                    format=FORMAT_LABELS.get(m.format, m.format),
                    cancelled=m.status == MeetingStatus.CANCELLED.value,
                )
                for m in sorted(meetings, key=lambda m: m.starts_at)
            ],
            recent,
        )

    async def feed(self, key: str) -> bytes | None:
        """The neighbourhood's meetings as an iCalendar feed (cancelled ones marked so, so a
        subscribed calendar drops them; each UID the one its invitations carry); None if
        unknown."""
        listing = await self.listing(key, since=FEED_BACK)
        if listing is None:
            return None
        from icalendar import Calendar, Event, vText  # some 90 modules: only for a feed

        tz = self.config.partnership.tz
        calendar = Calendar()
        calendar.add("prodid", "-//tensionbot//PACT meetings//EN")
        calendar.add("version", "2.0")
        calendar.add("x-wr-calname", f"{listing.name} PACT meetings")
        now = self.clock.now()
        for m in listing.meetings:
            event = Event()
            event.add("uid", m.uid)
            event.add("dtstamp", now)
            event.add("dtstart", m.starts_at.astimezone(tz))
            event.add("dtend", m.ends_at.astimezone(tz))
            event.add("summary", f"{listing.name} PACT meeting")
            event.add("location", vText(m.venue))
            event.add(
                "description",
                f"{self.config.partnership.name}: Partners and Communities Together "
                f"({m.format}). Residents set the neighbourhood's priorities with the police "
                "and the council. Everyone is welcome.",
            )
            event.add("status", "CANCELLED" if m.cancelled else "CONFIRMED")
            calendar.add_component(event)
        calendar.add_missing_timezones()  # the VTIMEZONE the TZIDs name (RFC 5545 3.2.19)
        return bytes(calendar.to_ical())


def _said_did(priorities: Sequence[PactPriority], m: PactMeeting) -> list[SaidDid]:
    """The priorities a meeting reviewed (what was done, done or carried), then those it set."""
    reviewed = [
        SaidDid(
            p.title,
            p.outcome,
            "done" if p.status == PriorityStatus.CLOSED.value else "carried",
        )
        for p in priorities
        if p.reviewed_meeting_id == m.id and p.meeting_id != m.id
    ]
    new = [SaidDid(p.title, "", "new") for p in priorities if p.meeting_id == m.id]
    return reviewed + new
