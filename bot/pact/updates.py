"""PACT invitations kept true: a meeting moved (date, time, venue, format or length) or
cancelled after its invitations went out gets each person already sent the invitation one update
on their own channel, with an updated .ics (the same UID, SEQUENCE one higher, METHOD:PUBLISH
as the invitation was; STATUS:CANCELLED for a cancellation), so their calendar changes the entry
it has instead of adding a second one. Owner teams already asked to report back before the
meeting are told its new date (or that it is off).

What was sent is kept in ``bot_state`` (``pact-invite:<meeting id>``): the details as last sent,
their sequence number, who was sent the invitation and which owner teams were asked. It is
written in the same transaction as the invitations, and as each change with the updates it
queues, whose outbox keys name the meeting, the sequence and the person: exactly once per change
across restarts; an identical move changes nothing and sends nothing. A change reads the record
locked; the tick writes back what it read only if nobody changed it since (compare-and-set),
else it runs again: a stale record never replaces a newer one, so no sequence is used twice. People not yet sent the
invitation get nothing now (their invitation, when due, has the new details and the current
sequence); a meeting that has started or is over gets nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.common import enqueue, install_id, local_time
from bot.config import TEAMS_PLATFORM
from bot.domain import MeetingStatus, PactMeeting
from bot.messages import Attachment, MessageBuilder, OutgoingMessage, bold
from bot.pact.base import PactBase
from bot.pact.rules import FORMAT_LABELS, calendar_invite, calendar_uid
from bot.ports import UnitOfWork


def _sent_state(m: PactMeeting) -> list[str | bool]:
    """What an invitation says about a meeting; a change to any of it is sent as an update.
    In UTC, so the same instant read back from the database compares equal."""
    return [
        m.starts_at.astimezone(UTC).isoformat(),
        m.ends_at.astimezone(UTC).isoformat(),
        m.venue,
        m.format,
        m.status == MeetingStatus.CANCELLED.value,
    ]


class SentRecordRaced(Exception):
    """What was sent of a meeting changed since this unit of work read it: roll back and run
    the unit of work again (with what is stored now)."""


class PactUpdates(PactBase):
    """The calendar invitation, what was sent of it, and the updates when the meeting changes."""

    async def invitation_ics(
        self,
        uow: UnitOfWork,
        m: PactMeeting,
        now: datetime,
        *,
        sequence: int = 0,
        cancelled: bool = False,
    ) -> bytes:
        """The meeting's .ics (one UID per meeting and install, whatever changes)."""
        email = self.config.email
        return calendar_invite(
            uid=calendar_uid(m.id, await install_id(uow)),
            title=self._title(m),
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            venue=m.venue,
            description=(
                f"{self.config.partnership.name}: Partners and Communities Together. "
                "Residents set the neighbourhood's priorities with the police and the council."
            ),
            organiser=self.config.partnership.name,
            organiser_email=email.from_address if email.host is not None else None,
            now=now,
            tz=self.tz,
            sequence=sequence,
            cancelled=cancelled,
        )

    def with_ics(self, message: OutgoingMessage, m: PactMeeting, ics: bytes) -> OutgoingMessage:
        """The message with the meeting's .ics attached."""
        name = f"pact-{m.neighbourhood}-{m.starts_at.astimezone(self.tz):%Y%m%d}.ics"
        attachment = Attachment(filename=name, title=self._title(m), data=ics)
        return message.model_copy(update={"attachments": [attachment]})

    async def sent_record(
        self, uow: UnitOfWork, m: PactMeeting
    ) -> tuple[dict[str, Any], str | None]:
        """What was sent of this meeting's invitation (a fresh record when nothing was), and
        the stored text it was read from (for :meth:`keep_sent`)."""
        raw = await uow.state.get(f"pact-invite:{m.id}")
        if raw:
            record: dict[str, Any] = json.loads(raw)
            return record, raw
        return {"seq": 0, "state": _sent_state(m), "people": [], "owners": []}, None

    async def keep_sent(
        self, uow: UnitOfWork, m: PactMeeting, record: dict[str, Any], *, read: str | None
    ) -> None:
        """Store what was sent (in the transaction that queued it), if the stored record is
        still the one ``read``; SentRecordRaced if another transaction changed it since (a
        move committed meanwhile): the caller's unit of work must be rolled back and run again,
        or a later change would reuse a sequence number and its updates' keys."""
        if not await uow.state.swap(f"pact-invite:{m.id}", read, json.dumps(record)):
            raise SentRecordRaced(m.id)

    async def update_invitations(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> int:
        """After a change to ``m`` (in this unit of work): one update to each person already
        sent its invitation and each owner team already asked, if what they were sent changed
        and the meeting has not started; how many messages were queued."""
        # Locked (PostgreSQL): the tick cannot write back what it read before this change.
        if m.id is None or (raw := await uow.state.get(f"pact-invite:{m.id}", lock=True)) is None:
            return 0  # nothing sent yet: the invitations, when due, have the new details
        # Read after what was sent: the tick's meeting may predate a change committed since,
        # whose record this is; compared with it, the old details would be "moved" back.
        await uow.pact.reload_meeting(m)
        record: dict[str, Any] = json.loads(raw)
        state = _sent_state(m)
        before = list(record["state"])
        if before == state:
            return 0
        record["seq"] = int(record["seq"]) + 1
        record["state"] = state
        await self.keep_sent(uow, m, record, read=raw)
        if m.starts_at <= now:
            return 0  # over (or under way): remembered, not sent
        seq = int(record["seq"])
        cancelled = bool(state[4])
        message = self._update_message(m, before, cancelled)
        ics = await self.invitation_ics(uow, m, now, sequence=seq, cancelled=cancelled)
        queued = 0
        for person_id in record["people"]:
            person = await uow.people.get(int(person_id))
            if person is None or not person.active:
                continue  # erased or left since
            key = f"pact-moved:{m.id}:{seq}:{person.id}"
            queued += await self._send(uow, person, self.with_ics(message, m, ics), key, now)
        for priority_id, channel in record["owners"]:
            note = self._owner_note(m, cancelled)
            queued += await enqueue(
                uow,
                channel=TEAMS_PLATFORM,
                recipient=channel,
                message=note,
                key=f"pact-owner-moved:{priority_id}:{m.id}:{seq}",
                now=now,
                purpose="pact",
                priority=1,
            )
        return queued

    def _details(self, starts_at: datetime, venue: str, fmt: str) -> str:
        return f"{local_time(starts_at, self.tz)} at {venue} ({FORMAT_LABELS.get(fmt, fmt)})"

    def _update_message(
        self, m: PactMeeting, before: list[Any], cancelled: bool
    ) -> OutgoingMessage:
        was = self._details(datetime.fromisoformat(str(before[0])), str(before[2]), str(before[3]))
        b = MessageBuilder()
        if cancelled:
            b.line(bold(f"Cancelled: {self._title(m)}"))
            b.line(f"The meeting of {was} will not take place.")
            b.line("The attached calendar file takes it out of your calendar.")
            return b.build()
        b.line(bold(f"Moved: {self._title(m)}"))
        now_at = self._details(m.starts_at, m.venue, m.format)
        ends = f", until {m.ends_at.astimezone(self.tz):%H:%M}"
        b.line(f"Now {now_at}{ends}." if now_at == was else f"Now {now_at}.")
        b.line(f"It was {was}.")
        b.line("The attached calendar file updates the invitation you have.")
        return b.build()

    def _owner_note(self, m: PactMeeting, cancelled: bool) -> OutgoingMessage:
        hood = self.hood_name(m.neighbourhood)
        b = MessageBuilder()
        if cancelled:
            b.line(bold(f"The {hood} PACT meeting is cancelled"))
            b.line("What you report back is kept for the next meeting.")
        else:
            b.line(bold(f"The {hood} PACT meeting has moved"))
            b.line(
                f"It is now {self._details(m.starts_at, m.venue, m.format)}. "
                "Please report back before then."
            )
        return b.build()
