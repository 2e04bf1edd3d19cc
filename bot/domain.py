"""Domain records: plain dataclasses, mapped to tables by ``storage`` (imperative mapping).

The core works on these objects only. Mutable JSON fields (``draft``, ``tensions`` ...) are always
re-assigned, never mutated in place, so the mapper notices the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.states import _DELIVERY_MOVES
from bot.states import ANSWERED as ANSWERED
from bot.states import AWAITING as AWAITING
from bot.states import DeliveryState as DeliveryState
from bot.states import IllegalMove as IllegalMove
from bot.states import OutboxStatus as OutboxStatus


class Role(StrEnum):
    """What a person is to the partnership."""

    COUNCILLOR = "councillor"
    COMMUNITY_LEADER = "community_leader"
    OFFICER = "officer"
    PREVENT_OFFICER = "prevent_officer"
    ADMIN = "admin"


#: Roles that are sent the monthly return.
REPORTER_ROLES = frozenset({Role.COUNCILLOR, Role.COMMUNITY_LEADER})


MAX_NOTE = 1000
"""Characters in an officer's update or closing note, a PACT review note or report back."""


@dataclass(eq=False)
class Address:
    """Where a person is on one platform: a row of its own, so a new platform is a new adapter
    and no new column.

    ``address`` is the platform's id of the user (how they are recognised when they write);
    ``chat`` is where messages to them go on that platform (a Telegram chat; a Slack user id,
    whose direct message the adapter opens), None while they cannot be messaged there.
    ``linked_at``: when the person connected this address themselves (an invitation link);
    None for an address given by the people import."""

    platform: str
    address: str
    chat: str | None = None
    linked_at: datetime | None = None
    person_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class Person:
    """A councillor, community leader, officer or admin."""

    name: str
    role: str
    email: str
    organisation: str = ""
    wards: list[str] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    linked_at: datetime | None = None
    blocked_at: datetime | None = None
    active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None
    # Their preferred channel: "telegram", "slack" or "email" (the people CSV's ``channel``);
    # it comes first in :meth:`reach`. None: the platform they linked, else email.
    channel: str | None = None

    @property
    def linked(self) -> bool:
        """True when the person has connected a chat themselves (through an invitation)."""
        return any(a.linked_at is not None and a.chat is not None for a in self.addresses)

    def address_on(self, platform: str) -> Address | None:
        """Their address on ``platform``, if any."""
        return next((a for a in self.addresses if a.platform == platform), None)

    def set_address(
        self, platform: str, address: str, chat: str | None, linked_at: datetime | None = None
    ) -> Address:
        """Give them this address on ``platform`` (replacing the one they had there)."""
        current = self.address_on(platform)
        if current is None:
            current = Address(platform=platform, address=address)
            self.addresses.append(current)
        current.address, current.chat = address, chat
        if linked_at is not None:
            current.linked_at = linked_at
        return current

    def drop_address(self, platform: str) -> None:
        """Forget their address on ``platform``."""
        self.addresses[:] = [a for a in self.addresses if a.platform != platform]

    def reach(
        self, platforms: frozenset[str], *, skip_blocked: bool = False
    ) -> tuple[str, str] | None:
        """Where to message them, as (platform, chat), on a platform the bot sends on
        (``platforms``); None when they cannot be reached.

        Their preferred ``channel`` first, then a chat they connected themselves, then one
        from the import, then (when ``"email"`` is in ``platforms``) their email address as a
        last resort: a person's email is ``people.email`` itself, not an ``addresses`` row, so
        it is always the one the people import gave and never goes out of step with it.
        ``skip_blocked``: not a chat they connected and then blocked the bot in (the chat they
        connected is the one the block was seen in)."""
        email = ("email", self.email) if "email" in platforms and self.email else None
        if self.channel == "email" and email is not None:
            return email
        candidates = sorted(
            (a for a in self.addresses if a.chat is not None and a.platform in platforms),
            key=lambda a: (a.platform != self.channel, a.linked_at is None, a.id or 0),
        )
        for a in candidates:
            if skip_blocked and self.blocked_at is not None and a.linked_at is not None:
                continue
            assert a.chat is not None
            return a.platform, a.chat
        return email

    def own_platform(self, platforms: frozenset[str]) -> str | None:
        """The channel that is theirs: the one they chose (``channel``, when the bot sends on
        it), else the platform they connected themselves; None when neither (then email, when
        it is on, is theirs too)."""
        if self.channel is not None and (self.channel != "email" or "email" in platforms):
            return self.channel
        linked = [a for a in self.addresses if a.linked_at is not None and a.chat is not None]
        return min(linked, key=lambda a: a.id or 0).platform if linked else None


class Someone(Protocol):
    """What the chat's handlers need of a person: who (``id``), what they may do (``role``) and
    how the partnership names them in its configuration (``email``, e.g. a PACT chair's).
    Both a :class:`Person` and the turn's :class:`Speaker` are one."""

    @property
    def id(self) -> int | None: ...
    @property
    def role(self) -> str: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Speaker:
    """The active person who wrote, as a turn in chat needs them (read-only): a few columns
    read in one statement, not the whole :class:`Person` with their addresses. ``chat``: where
    their replies go on the platform they wrote on (None: nowhere, or no address there)."""

    id: int
    role: str
    email: str
    chat: str | None = None
    blocked_at: datetime | None = None


@dataclass(eq=False)
class Invite:
    """A single-use, expiring Telegram deep-link token (only its hash is stored)."""

    person_id: int
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    id: int | None = None


@dataclass(eq=False)
class FormVersion:
    """A form definition as it was when used; campaigns and reports point at it."""

    version: str
    sha256: str
    definition: dict[str, Any]
    created_at: datetime
    id: int | None = None


@dataclass(eq=False)
class Campaign:
    """One return: the monthly one for a period, or an extra one for chosen wards or roles."""

    key: str  # unique: "monthly:2026-11" or "extra:2026-11-22T1015:<n>"
    kind: str  # "monthly" | "extra"
    period: str  # YYYY-MM the return is about
    title: str
    form_version_id: int
    opens_at: datetime
    closes_at: datetime
    reminder_times: list[str] = field(default_factory=list)  # ISO datetimes (UTC)
    reminders_done: int = 0
    target_wards: list[str] = field(default_factory=list)  # empty: all
    target_roles: list[str] = field(default_factory=list)  # empty: reporter roles
    status: str = "open"  # open | closed
    created_by: str = "scheduler"
    created_at: datetime | None = None
    closed_at: datetime | None = None
    id: int | None = None


@dataclass(eq=False)
class Delivery:
    """One person's copy of one campaign."""

    campaign_id: int
    person_id: int
    status: DeliveryState = DeliveryState.QUEUED
    detail: str = ""
    sent_at: datetime | None = None
    reminders: int = 0
    last_reminded_at: datetime | None = None
    responded_at: datetime | None = None
    message_ref: str | None = None  # the platform message id of the form, once sent
    followed_up_at: datetime | None = None  # uncertain, then sent again (harmless wording)
    id: int | None = None
    # Why the form went by email instead of the person's own platform ([email] fallback: "never
    # linked", "blocked the bot"); None when it went on their channel.
    fallback: str | None = None

    def move_to(self, status: DeliveryState) -> None:
        """Change the status, or raise :class:`IllegalMove` (and change nothing)."""
        now = DeliveryState(self.status)
        if status not in _DELIVERY_MOVES[now]:
            raise IllegalMove(f"delivery {self.id}: {now.value} -> {status.value}")
        self.status = status


@dataclass(eq=False)
class Conversation:
    """A guided conversation in progress; every answer is stored as it arrives."""

    person_id: int
    flow: str  # "monthly" | "adhoc"
    form_version_id: int
    started_at: datetime
    updated_at: datetime
    campaign_id: int | None = None
    status: str = "active"  # active | submitted | cancelled
    step: str = ""  # a question id, "review" or "edit"
    draft: dict[str, str] = field(default_factory=dict)
    tensions: list[dict[str, str]] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    editing: bool = False
    seq: int = 0  # bumped on every move; buttons carry it so stale taps are refused
    id: int | None = None


@dataclass(eq=False)
class Report:
    """A submitted tension."""

    reference: str
    person_id: int
    source: str  # "monthly" | "adhoc"
    ward: str
    category: str
    level: int
    basis: str
    answers: dict[str, str]
    form_version_id: int
    created_at: datetime
    campaign_id: int | None = None
    consent_contact: bool = False
    consent_share: bool = False
    status: str = "received"
    period: str = ""  # YYYY-MM in the partnership's timezone (for monthly aggregation in SQL)
    id: int | None = None


NEWS = "news"
"""The outbox purpose of a reporter's news about their report (delivered, acknowledged, an
update, closed): held a short while so that several pieces go out as one message."""


@dataclass(eq=False)
class OutboxMessage:
    """One message waiting to go out, or gone. The dispatcher is the only sender."""

    channel: str  # "telegram"
    recipient: str  # chat id
    payload: dict[str, Any]  # an OutgoingMessage as JSON
    idempotency_key: str
    created_at: datetime
    next_attempt_at: datetime | None
    purpose: str = "reply"  # reply | form | reminder | notice | news
    priority: int = 0  # 0 interactive replies first, 1 broadcast
    edit_ref: str | None = None  # edit this message instead of sending a new one
    delivery_id: int | None = None
    action_id: int | None = None
    thread_ref: str | None = None  # post as a reply in this thread (Slack)
    status: str = OutboxStatus.PENDING.value
    attempts: int = 0
    last_error: str | None = None
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    result_ref: str | None = None
    id: int | None = None


@dataclass(eq=False)
class AuditEntry:
    """Who saw or changed what (append-only)."""

    at: datetime
    actor: str
    action: str
    subject: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


class ActionState(StrEnum):
    """Where a team's action on a report stands."""

    OPEN = "open"  # routed, waiting to be acknowledged
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"  # with an outcome


_ACTION_MOVES: dict[ActionState, frozenset[ActionState]] = {
    # Acknowledged; an update (with or without acknowledging first); closed, reassigned or
    # re-routed.
    ActionState.OPEN: frozenset(
        {ActionState.ACKNOWLEDGED, ActionState.IN_PROGRESS, ActionState.CLOSED}
    ),
    # A further update; closed; the reporter says it is still a problem (open again).
    ActionState.ACKNOWLEDGED: frozenset(
        {ActionState.IN_PROGRESS, ActionState.CLOSED, ActionState.OPEN}
    ),
    ActionState.IN_PROGRESS: frozenset(
        {ActionState.IN_PROGRESS, ActionState.CLOSED, ActionState.OPEN}
    ),
    # Closed is closed: a team taking it on again gets a new action.
    ActionState.CLOSED: frozenset(),
}


class ClosedAs(StrEnum):
    """How an action was closed (its ``outcome``)."""

    RESOLVED = "resolved"
    NO_FURTHER_ACTION = "no_further_action"
    NOT_OUR_RESPONSIBILITY = "not_our_responsibility"
    REFERRED = "referred"
    DUPLICATE = "duplicate"


@dataclass(eq=False)
class Action:
    """One team's job on one report."""

    report_id: int
    team_key: str
    created_at: datetime
    state: ActionState = ActionState.OPEN
    ack_due_at: datetime | None = None
    escalation_level: int = 0
    outcome: str | None = None
    outcome_note: str = ""
    room: str | None = None  # the team's channel (column ``slack_channel``)
    post_ref: str | None = None  # the team's message there, once posted (column ``slack_ts``)
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    last_check_at: datetime | None = None  # last "is this still a problem?" to the reporter
    version: int = 0  # bumped on every change: two officers clicking at once, one wins
    id: int | None = None

    def move_to(self, state: ActionState) -> None:
        """Change the state, or raise :class:`IllegalMove` (and change nothing)."""
        now = ActionState(self.state)
        if state not in _ACTION_MOVES[now]:
            raise IllegalMove(f"action {self.id}: {now.value} -> {state.value}")
        self.state = state

    @property
    def closed(self) -> bool:
        """True once closed (with an outcome)."""
        return self.state == ActionState.CLOSED


@dataclass(eq=False)
class ActionEvent:
    """A step on an action's timeline; ``for_reporter`` ones are relayed to the reporter."""

    action_id: int
    at: datetime
    kind: str  # created | delivered | acknowledged | update | closed | reassigned | reopened | ...
    actor: str
    text: str = ""
    for_reporter: bool = False
    id: int | None = None


class MeetingFormat(StrEnum):
    """How a PACT meeting is held."""

    IN_PERSON = "in_person"
    ONLINE = "online"
    STREET_BRIEFING = "street_briefing"


class MeetingStatus(StrEnum):
    """Where a PACT meeting stands."""

    SCHEDULED = "scheduled"
    RECORDED = "recorded"  # held, and the chair has recorded attendance and priorities
    CANCELLED = "cancelled"


class PriorityStatus(StrEnum):
    """A PACT priority is open (set or carried) until a meeting closes it."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(eq=False)
class PactMeeting:
    """One PACT meeting of a neighbourhood. ``weekday`` and ``slot`` are in local time, stored so
    the venue and time-slot analysis is a plain GROUP BY."""

    neighbourhood: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    format: str
    chair_id: int
    weekday: int  # 0 = Monday
    slot: str  # morning | afternoon | evening
    created_by: str
    created_at: datetime
    status: str = MeetingStatus.SCHEDULED.value
    public_attendees: int | None = None
    new_attendees: int | None = None
    partners_invited: int = 0
    recorded_at: datetime | None = None
    recorded_by: str | None = None
    id: int | None = None


@dataclass(eq=False)
class PactAttendance:
    """A partner (a person) present at a meeting; members of the public are only counted."""

    meeting_id: int
    person_id: int
    id: int | None = None


@dataclass(eq=False)
class PactPriority:
    """A neighbourhood priority set at a meeting, owned by a team, reviewed at later meetings."""

    neighbourhood: str
    meeting_id: int  # the meeting that set it
    title: str
    owner_team: str
    created_at: datetime
    status: str = PriorityStatus.OPEN.value
    carried: int = 0  # how many meetings carried it on
    report_back: str = ""  # the owner's latest account of what was done
    report_back_at: datetime | None = None
    report_back_by: str | None = None
    outcome: str = ""  # "you said, we did": what the meeting was told when it reviewed it
    reviewed_meeting_id: int | None = None  # the last meeting that reviewed it
    closed_at: datetime | None = None
    id: int | None = None


@dataclass(eq=False)
class PactRecording:
    """A chair recording a meeting in chat; every answer is stored as it arrives."""

    meeting_id: int
    person_id: int
    started_at: datetime
    updated_at: datetime
    status: str = "active"  # active | submitted | cancelled
    step: str = "public"
    draft: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    id: int | None = None


@dataclass(frozen=True)
class Who:
    """A sender as a platform names them: which platform (data, never a branch) and its id of
    the user, as text."""

    platform: str
    address: str
