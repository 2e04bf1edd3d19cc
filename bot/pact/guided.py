"""Scheduling a PACT meeting as a guided chat: ``/schedule`` alone asks for the date, the time
and the venue (a neighbourhood's past venues, by number, or a new one typed), then schedules it
exactly as the one-line ``/schedule 2027-01-13 18:30 in_person Bilston Community Centre`` does
(which keeps working). Progress is stored in the key/value state, one key per chair, so it
survives a restart; ``/cancel`` stops it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.common import clean_text
from bot.messages import MessageBuilder
from bot.pact.base import Turn
from bot.pact.service import PactError, PactService

MAX_VENUES = 8


def _key(turn: Turn) -> str:
    return f"pact.schedule:{turn.person.id}"


class GuidedSchedule:
    """The guided ``/schedule``."""

    def __init__(self, service: PactService) -> None:
        self.service = service

    async def _load(self, turn: Turn) -> dict[str, Any] | None:
        raw = await turn.uow.state.get(_key(turn))
        return json.loads(raw) if raw else None

    @staticmethod
    async def _save(turn: Turn, draft: dict[str, Any] | None) -> None:
        await turn.uow.state.set(_key(turn), json.dumps(draft) if draft else "")

    async def start(self, turn: Turn, neighbourhood: str = "") -> None:
        """``/schedule`` or ``/schedule <neighbourhood>``: ask for the date."""
        try:
            hood = await self.service.chaired_for_scheduling(turn.uow, turn.person, neighbourhood)
        except PactError as exc:
            await turn.reply(MessageBuilder().line(str(exc)).build())
            return
        await self._save(turn, {"hood": hood, "step": "date"})
        name = self.service.neighbourhood(hood).name
        await turn.reply(
            MessageBuilder()
            .line(f"Scheduling the next {name} PACT meeting (/cancel stops).")
            .line("Which date? Type it as YYYY-MM-DD, e.g. 2027-01-13.")
            .build()
        )

    async def cancel(self, turn: Turn) -> bool:
        """``/cancel`` during the guided schedule (False when there is none)."""
        if await self._load(turn) is None:
            return False
        await self._save(turn, None)
        await turn.reply(MessageBuilder().line("Stopped: no meeting was scheduled.").build())
        return True

    async def text(self, turn: Turn, raw: str) -> bool:
        """A typed answer; False when no guided schedule is in progress."""
        draft = await self._load(turn)
        if draft is None:
            return False
        text = clean_text(raw)
        step = draft["step"]
        if step == "date":
            try:
                datetime.strptime(text, "%Y-%m-%d")
            except ValueError:
                return await self._say(turn, "Please type the date as YYYY-MM-DD, e.g. 2027-01-13.")
            draft.update(date=text, step="time")
            await self._save(turn, draft)
            return await self._say(turn, "What time does it start? Type it as HH:MM, e.g. 18:30.")
        if step == "time":
            try:
                datetime.strptime(text, "%H:%M")
            except ValueError:
                return await self._say(turn, "Please type the time as HH:MM, e.g. 18:30.")
            venues = await self._past_venues(turn, draft["hood"])
            draft.update(time=text, step="venue", venues=venues)
            await self._save(turn, draft)
            b = MessageBuilder().line(
                "Where? Send the number of a venue used before, or type a new one."
            )
            for i, venue in enumerate(venues, 1):
                b.line(f"{i}. {venue}")
            await turn.reply(b.build())
            return True
        venues = draft.get("venues", [])
        venue = (
            venues[int(text) - 1]
            if text.isascii() and text.isdigit() and 1 <= int(text) <= len(venues)
            else text
        )
        await self._save(turn, None)
        line = f"{draft['hood']} {draft['date']} {draft['time']} in_person {venue}"
        try:
            reply = await self.service.schedule_in_chat(turn.uow, turn.person, line)
        except PactError as exc:
            # Keep what was right; start again at the date (the usual reason: a date passed).
            await self._save(turn, {"hood": draft["hood"], "step": "date"})
            reply = f"{exc} Which date? (YYYY-MM-DD, or /cancel)"
        return await self._say(turn, reply)

    async def _past_venues(self, turn: Turn, hood: str) -> list[str]:
        """The neighbourhood's venues, most recently used first."""
        seen: list[str] = []
        meetings = await turn.uow.pact.for_neighbourhood(hood)
        for m in sorted(meetings, key=lambda m: m.starts_at, reverse=True):
            if m.venue and m.venue not in seen:
                seen.append(m.venue)
        return seen[:MAX_VENUES]

    @staticmethod
    async def _say(turn: Turn, text: str) -> bool:
        await turn.reply(MessageBuilder().line(text).build())
        return True
