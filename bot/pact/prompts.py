"""PACT's timed work: reminders with a calendar invitation, owner teams asked to report back,
the chair prompted to record the meeting and chased, and the "you said, we did" briefing, each
once per meeting (:meth:`PactPrompts.tick`, a scheduler job, safe to run twice)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from bot.common import enqueue, local_time
from bot.config import TEAMS_PLATFORM
from bot.domain import (
    MeetingStatus,
    PactMeeting,
)
from bot.messages import Button, MessageBuilder, OutgoingMessage, bold, italic
from bot.pact.rules import FORMAT_LABELS, PUBLIC_WARNING
from bot.pact.updates import PactUpdates, SentRecordRaced
from bot.ports import UnitOfWork

log = logging.getLogger(__name__)


class PactPrompts(PactUpdates):
    """The PACT scheduler tick and the messages it sends."""

    # ----------------------------------------------------------------- timed work

    async def tick(self) -> dict[str, int]:
        """Reminders (with .ics), owners' report-back requests, record prompts, chases and the
        chair's briefing: each once per meeting (or priority and meeting); and the updates of a
        change the invitations missed (:meth:`update_invitations`). A meeting changed by another
        process while the tick wrote what it sent rolls the tick back; it runs again at once,
        reading the change (the next scheduled tick, should that happen again and again)."""
        for _ in range(3):
            try:
                return await self._tick_once()
            except SentRecordRaced:
                log.info("pact tick: a meeting changed meanwhile; running the tick again")
        log.warning("pact tick: meetings kept changing meanwhile; left for the next tick")
        return dict.fromkeys(
            ("reminders", "owners", "prompts", "chases", "briefings", "updates"), 0
        )

    async def _tick_once(self) -> dict[str, int]:
        now = self.clock.now()
        cfg = self.config.pact
        fired = dict.fromkeys(
            ("reminders", "owners", "prompts", "chases", "briefings", "updates"), 0
        )
        horizon = max(cfg.reminder_days_before, cfg.owner_reminder_days_before)
        async with self.uow_factory() as uow:
            meetings = await uow.pact.meetings_between(
                now - timedelta(days=14), now + timedelta(days=horizon + 1)
            )
            for m in meetings:
                # A change another process committed while this meeting's invitations were
                # being written (with the details read before it) is sent here.
                if await self.update_invitations(uow, m, now):
                    fired["updates"] += 1
                if m.status != MeetingStatus.SCHEDULED.value:
                    continue
                until = m.starts_at - now
                since_end = now - m.ends_at
                due = {
                    "reminders": timedelta(0) < until <= timedelta(days=cfg.reminder_days_before),
                    "owners": timedelta(0)
                    < until
                    <= timedelta(days=cfg.owner_reminder_days_before),
                    "briefings": m.starts_at <= now < m.ends_at,
                    "prompts": since_end >= timedelta(0),
                    "chases": since_end >= timedelta(hours=cfg.record_chase_hours),
                }
                for kind, is_due in due.items():
                    # Each step once per meeting: the marker is written in the same transaction
                    # as the messages it queued.
                    key = f"pact-{kind}:{m.id}"
                    if not is_due or await uow.state.get(key) is not None:
                        continue
                    if kind == "prompts" and due["chases"]:
                        # First seen after the chase time (the bot was down): the chase only.
                        await uow.state.set(key, now.isoformat())
                        continue
                    if kind == "reminders":
                        await self._remind(uow, m, now)
                    elif kind == "owners":
                        await self._ask_owners(uow, m, now)
                    elif kind == "briefings":
                        await self._brief(uow, m, now)
                    else:
                        await self._prompt(uow, m, now, chase=kind == "chases")
                    await uow.state.set(key, now.isoformat())
                    fired[kind] += 1
            await uow.commit()
        if any(fired.values()):
            self.wake()
        return fired

    async def _remind(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> None:
        hood = self.hoods.get(m.neighbourhood)
        if hood is None:
            return
        chair = await self.chair(uow, m)
        people = await self.invited(uow, hood, m.chair_id)
        if chair is not None:
            people = [chair, *people]
        record, read = await self.sent_record(uow, m)
        # The current sequence: a meeting moved after its owner teams were asked (and before
        # these invitations) is past sequence 0.
        ics = await self.invitation_ics(uow, m, now, sequence=int(record["seq"]))
        for person in people:
            message = (
                MessageBuilder()
                .line(bold(self._title(m)))
                .line(
                    f"{local_time(m.starts_at, self.tz)} at {m.venue} "
                    f"({FORMAT_LABELS.get(m.format, m.format)})"
                    + (". You are chairing it." if person.id == m.chair_id else ".")
                )
                .line("The calendar invitation is attached.")
                .build()
            )
            key = f"pact-remind:{m.id}:{person.id}"
            if await self._send(uow, person, self.with_ics(message, m, ics), key, now):
                record["people"].append(person.id)  # to be sent an update if it changes
        await self.keep_sent(uow, m, record, read=read)

    async def _ask_owners(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> None:
        from bot.buttons import ButtonAction, Kind

        if not self.config.teams_connected:
            return
        teams = {t.key: t for t in self.config.teams}
        record, read = await self.sent_record(uow, m)
        asked: list[list[Any]] = []
        for p in await uow.pact.open_priorities(m.neighbourhood):
            team = teams.get(p.owner_team)
            if team is None or p.id is None:
                continue
            message = (
                MessageBuilder()
                .line(bold(f"PACT priority for {team.name}: please report back"))
                .line(f"{self.hood_name(p.neighbourhood)}: {p.title}")
                .line(
                    f"The next meeting is {local_time(m.starts_at, self.tz)} at {m.venue}. "
                    "Say what was done so the chair can tell residents (you said, we did)."
                )
                .line(italic(PUBLIC_WARNING))
                .line(italic(f"Last report: {p.report_back}") if p.report_back else "")
                .row(
                    Button(
                        label="Report back", data=ButtonAction(Kind.PACT_REPORT_BACK, p.id).encode()
                    )
                )
                .build()
            )
            if await enqueue(
                uow,
                channel=TEAMS_PLATFORM,
                recipient=team.room,
                message=message,
                key=f"pact-owner:{p.id}:{m.id}",
                now=now,
                purpose="pact",
                priority=1,
            ):
                asked.append([p.id, team.room])  # told if the meeting moves
        record["owners"].extend(asked)
        await self.keep_sent(uow, m, record, read=read)

    async def briefing(self, uow: UnitOfWork, m: PactMeeting) -> OutgoingMessage:
        """The chair's "you said, we did" sheet: the open priorities and what owners reported."""
        b = MessageBuilder().line(bold(f"{self._title(m)}: you said, we did"))
        teams = {t.key: t.name for t in self.config.teams}
        priorities = await uow.pact.open_priorities(m.neighbourhood)
        if not priorities:
            b.line("There are no open priorities from earlier meetings.")
        for n, p in enumerate(priorities, 1):
            b.line(bold(f"{n}. {p.title}"), f" ({teams.get(p.owner_team, p.owner_team)})")
            b.line(
                f"   We did: {p.report_back}"
                if p.report_back
                else "   The owner has not reported back yet."
            )
        return b.build()

    async def _brief(self, uow: UnitOfWork, m: PactMeeting, now: datetime) -> None:
        chair = await self.chair(uow, m)
        if chair is not None:
            await self._send(uow, chair, await self.briefing(uow, m), f"pact-brief:{m.id}", now)

    def record_buttons(self, m: PactMeeting) -> list[Button]:
        """Record / It was cancelled, for the chair."""
        from bot.buttons import ButtonAction, Kind

        assert m.id is not None
        return [
            Button(label="Record the meeting", data=ButtonAction(Kind.PACT_RECORD, m.id).encode()),
            Button(label="It was cancelled", data=ButtonAction(Kind.PACT_CANCELLED, m.id).encode()),
        ]

    async def _prompt(self, uow: UnitOfWork, m: PactMeeting, now: datetime, *, chase: bool) -> None:
        chair = await self.chair(uow, m)
        if chair is None:
            return
        head = (
            f"Reminder: the {self._title(m)} of {local_time(m.starts_at, self.tz)} is not "
            "recorded yet."
            if chase
            else f"How did the {self._title(m)} go?"
        )
        message = (
            MessageBuilder()
            .line(bold(head))
            .line(
                "Please record how many people came, which partners were there, and the "
                "priorities. It takes two minutes."
            )
            .row(*self.record_buttons(m))
            .build()
        )
        kind = "chase" if chase else "prompt"
        await self._send(uow, chair, message, f"pact-{kind}:{m.id}", now)
