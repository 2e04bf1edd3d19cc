"""Crisis cadence: a recurring extra return for chosen wards, started and stopped from chat.

After a critical incident an admin or the Prevent and Cohesion Officer sends ``/crisis daily
Heath Town, Park until 2026-12-20`` (Telegram, or the ``/crisis`` slash command in Slack). Each
occurrence is an extra return (``CampaignService._create``) with its own short deadline. The
cadences live in the key/value state (``crisis.cadences``, JSON) and each occurrence's campaign
key is ``crisis:<id>:<n>``, unique in the database: the scheduler tick opens occurrence ``n``
once however often it runs, across restarts and processes (the newest due occurrence only, as
the monthly reminders do after downtime). Starting and stopping are audited.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from bot.clock import Clock
from bot.common import Waker, audit
from bot.config import Config
from bot.domain import Role
from bot.people.identity import NotInvited, Who, identify
from bot.ports import UnitOfWork, UnitOfWorkFactory
from bot.returns.campaigns import CampaignService

STATE_KEY = "crisis.cadences"
INTERVALS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
# Each occurrence's own short deadline: answered well before the next one opens.
DEADLINES = {"daily": timedelta(hours=20), "weekly": timedelta(days=3)}
MAY_START = frozenset({Role.ADMIN.value, Role.PREVENT_OFFICER.value})
USAGE = (
    "Usage: /crisis daily|weekly <wards or neighbourhood, comma-separated> "
    "[until YYYY-MM-DD] [roles councillor,community_leader] — or /crisis stop."
)


REFUSAL = "Only admins and the Prevent and Cohesion Officer can start or stop a crisis cadence."


class CrisisError(Exception):
    """A refused or malformed crisis command (the message says why; ``field`` names what was
    wrong, ``places``, ``roles`` or ``until``, for a form to show it there)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Cadence:
    """One crisis cadence."""

    id: int
    every: str  # daily | weekly
    wards: list[str]
    roles: list[str]
    started_at: str  # ISO, UTC
    started_by: str
    until: str | None = None  # ISO date, last day an occurrence may open (local)
    opened: int = -1  # the newest occurrence opened
    stopped_at: str | None = None
    campaigns: list[str] = field(default_factory=list)

    def due(self, now: datetime) -> int:
        """The newest occurrence whose opening time has passed."""
        return int((now - datetime.fromisoformat(self.started_at)) / INTERVALS[self.every])

    def opens_at(self, n: int) -> datetime:
        return datetime.fromisoformat(self.started_at) + n * INTERVALS[self.every]


@dataclass(frozen=True)
class CrisisRequest:
    """A parsed ``/crisis`` command."""

    every: str
    wards: list[str]
    roles: list[str]
    until: date | None


def parse(args: str, config: Config) -> CrisisRequest:
    """``daily Heath Town, Park until 2026-12-20 roles councillor`` -> a request; wards may be
    named by a PACT neighbourhood (its key or name), which stands for its wards."""
    text = " ".join(args.split())
    match = re.fullmatch(
        r"(?i)(daily|weekly)\s+(.+?)(?:\s+until\s+(\d{4}-\d{2}-\d{2}))?(?:\s+roles\s+(\S+))?",
        text,
    )
    if match is None:
        raise CrisisError(USAGE)
    every, places, until, roles = match.groups()
    try:
        last = date.fromisoformat(until) if until else None
    except ValueError:
        raise CrisisError(f"{until} is not a date. {USAGE}", "until") from None
    return request(
        config,
        every,
        [p.strip() for p in places.split(",")],
        [r for r in (roles or "").split(",") if r],
        last,
    )


def request(
    config: Config, every: str, places: list[str], roles: list[str], until: date | None
) -> CrisisRequest:
    """A request from its parts (``/crisis`` typed, or a Slack form): ``places`` are ward
    names or PACT neighbourhoods (key or name), a neighbourhood standing for its wards."""
    if every.lower() not in INTERVALS:
        raise CrisisError(USAGE)
    wards: list[str] = []
    known = {w.casefold(): w for w in config.partnership.wards}
    hoods = {
        name.casefold(): n.wards for n in config.pact.neighbourhoods for name in (n.key, n.name)
    }
    for place in places:
        if place.casefold() in known:
            wards += [known[place.casefold()]] if known[place.casefold()] not in wards else []
        elif place.casefold() in hoods:
            wards += [w for w in hoods[place.casefold()] if w not in wards]
        else:
            raise CrisisError(f"Unknown ward or neighbourhood: {place}. {USAGE}", "places")
    if not wards:
        raise CrisisError(f"Choose at least one ward or neighbourhood. {USAGE}", "places")
    valid = {r.value for r in Role}
    if any(r not in valid for r in roles):
        raise CrisisError(
            f"Unknown role in {','.join(roles)}. Roles: {', '.join(sorted(valid))}.", "roles"
        )
    return CrisisRequest(every.lower(), wards, roles, until)


class CrisisService:
    """Start, stop, list and tick crisis cadences."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        campaigns: CampaignService,
        wake: Waker,
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        self.campaigns = campaigns
        self.wake = wake
        self.tz = config.partnership.tz

    # ----------------------------------------------------------------- chat

    async def command(self, who: Who, args: str) -> str:
        """``/crisis`` from any platform, the reply to show (to the asker only): start
        (``daily|weekly …``), stop (``stop``) or list (no arguments)."""
        try:
            actor = await self.authorise(who)
        except CrisisError as refused:
            return str(refused)
        try:
            if args.strip().lower() == "stop":
                return self.stopped(await self.stop(actor))
            if not args.strip():
                running = await self.active()
                return "\n".join([self.describe(c) for c in running] or [USAGE])
            cadence = await self.start(parse(args, self.config), actor)
        except CrisisError as exc:
            return str(exc)
        return self.started(cadence)

    async def authorise(self, who: Who) -> str:
        """The audit actor of a person who may start and stop cadences (an admin or the
        Prevent and Cohesion Officer); else CrisisError with the one refusal."""
        async with self.uow_factory() as uow:
            try:
                person = await identify(uow, who, self.config.partnership)
            except NotInvited as refused:
                raise CrisisError(str(refused)) from None
        if person.role not in MAY_START:
            raise CrisisError(REFUSAL)
        return f"person:{person.id}"

    async def start_for(self, who: Who, wanted: CrisisRequest) -> str:
        """Start a cadence for ``who`` (a form's request); the reply to show them.
        CrisisError when refused or wrong."""
        return self.started(await self.start(wanted, await self.authorise(who)))

    async def stop_for(self, who: Who, ids: set[int]) -> str:
        """Stop the running cadences ``ids`` for ``who``; the reply to show them."""
        return self.stopped(await self.stop(await self.authorise(who), ids))

    def started(self, cadence: Cadence) -> str:
        """What the starter is told."""
        return f"Started: {self.describe(cadence)}. The first return has gone out."

    def stopped(self, cadences: list[Cadence]) -> str:
        """What the person who stopped ``cadences`` is told."""
        if not cadences:
            return "There is no crisis cadence running."
        return "Stopped: " + "; ".join(self.describe(c) for c in cadences)

    def describe(self, c: Cadence) -> str:
        """One line about a cadence."""
        who = ", ".join(c.roles) if c.roles else "councillors and community leaders"
        end = f"until {c.until}" if c.until else "until stopped"
        state = f", stopped {c.stopped_at[:10]}" if c.stopped_at else ""
        return (
            f"crisis {c.id}: {c.every} return for {', '.join(c.wards)} ({who}), {end}; "
            f"{len(c.campaigns)} sent{state}"
        )

    # ----------------------------------------------------------------- the cadences

    async def _load(self, uow: UnitOfWork) -> list[Cadence]:
        raw = await uow.state.get(STATE_KEY)
        return [Cadence(**c) for c in json.loads(raw)] if raw else []

    @staticmethod
    async def _save(uow: UnitOfWork, cadences: list[Cadence]) -> None:
        await uow.state.set(STATE_KEY, json.dumps([asdict(c) for c in cadences]))

    async def all(self) -> list[Cadence]:
        """Every cadence, running or stopped (``tensionbot campaign status``)."""
        async with self.uow_factory() as uow:
            return await self._load(uow)

    async def active(self) -> list[Cadence]:
        """The cadences still running."""
        return [c for c in await self.all() if c.stopped_at is None]

    async def start(self, wanted: CrisisRequest, actor: str) -> Cadence:
        """Start a cadence and open its first return now."""
        now = self.clock.now()
        if wanted.until is not None and wanted.until < now.astimezone(self.tz).date():
            raise CrisisError(f"{wanted.until} has passed. {USAGE}", "until")
        async with self.uow_factory() as uow:
            cadences = await self._load(uow)
            cadence = Cadence(
                id=max((c.id for c in cadences), default=0) + 1,
                every=wanted.every,
                wards=wanted.wards,
                roles=wanted.roles,
                started_at=now.isoformat(),
                started_by=actor,
                until=wanted.until.isoformat() if wanted.until else None,
            )
            cadences.append(cadence)
            await audit(
                uow,
                now,
                actor,
                "crisis.start",
                f"crisis:{cadence.id}",
                every=cadence.every,
                wards=cadence.wards,
                roles=cadence.roles,
                until=cadence.until,
            )
            await self._open_due(uow, cadence, now)
            await self._save(uow, cadences)
            await uow.commit()
        self.wake()
        return cadence

    async def stop(self, actor: str, ids: set[int] | None = None) -> list[Cadence]:
        """Stop every running cadence, or those of ``ids`` (the returns already out stay open
        to their deadline)."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            cadences = await self._load(uow)
            stopped = [c for c in cadences if c.stopped_at is None and (ids is None or c.id in ids)]
            for c in stopped:
                c.stopped_at = now.isoformat()
                await audit(uow, now, actor, "crisis.stop", f"crisis:{c.id}")
            await self._save(uow, cadences)
            await uow.commit()
        return stopped

    async def tick(self) -> list[str]:
        """Open each running cadence's due occurrence once; end cadences past their last day.
        Idempotent: returns the campaign keys opened."""
        now = self.clock.now()
        opened: list[str] = []
        async with self.uow_factory() as uow:
            cadences = await self._load(uow)
            for c in cadences:
                if c.stopped_at is None and c.due(now) > c.opened:
                    key = await self._open_due(uow, c, now)
                    opened += [key] if key else []
            await self._save(uow, cadences)
            await uow.commit()
        if opened:
            self.wake()
        return opened

    async def _open_due(self, uow: UnitOfWork, c: Cadence, now: datetime) -> str | None:
        n = c.due(now)
        c.opened = n
        if c.until is not None and c.opens_at(n).astimezone(self.tz).date() > date.fromisoformat(
            c.until
        ):
            c.stopped_at = now.isoformat()  # its last day has passed: it ends by itself
            await audit(uow, now, "scheduler", "crisis.end", f"crisis:{c.id}")
            return None
        key = f"crisis:{c.id}:{n}"
        if await uow.campaigns.by_key(key) is not None:
            return None  # opened already (another process, or before a restart)
        await self.campaigns.open_occurrence(
            uow,
            key=key,
            closes_at=now + DEADLINES[c.every],
            wards=c.wards,
            roles=c.roles,
            actor=c.started_by,
            now=now,
        )
        c.campaigns.append(key)
        return key
