"""Recording a PACT meeting in chat: a guided conversation for the chair, one answer at a time.

The steps: members of the public, how many were new, the partners present (ticked from the
invited list), each open priority closed or carried with what was done ("you said, we did"), and
up to three new priorities with their owner teams; then a review and Save. Every answer is
stored in a ``pact_recordings`` row as it arrives (a restart loses nothing), buttons carry the
row's ``seq`` so a stale tap is refused, and a bad answer gets a clear message while the flow
stays where it was. The record itself is checked and stored by
:meth:`bot.pact.service.PactService.apply_record`, the same path as the Slack modal.
"""

from __future__ import annotations

from typing import Any

from bot.buttons import ButtonAction, Kind
from bot.common import audit, clean_text, local_time
from bot.domain import MAX_NOTE, PactMeeting, PactRecording
from bot.messages import Button, MessageBuilder, bold, italic
from bot.pact.base import Turn
from bot.pact.guided import GuidedSchedule
from bot.pact.rules import FORMAT_LABELS, MAX_NEW_PRIORITIES, PUBLIC_WARNING
from bot.pact.service import (
    MAX_TITLE,
    MeetingRecord,
    PactError,
    PactService,
    parse_count,
)

# Button values with a meaning of their own (choices are 0, 1, 2 ...).
CANCEL, DONE, USE_REPORT, SAVE, RESTART = 9000, 9001, 9002, 9003, 9004


class PactChat:
    """The chair's side of PACT in chat: /meeting, /schedule and the recording conversation."""

    def __init__(self, service: PactService) -> None:
        self.service = service
        self.tz = service.tz
        self.guided = GuidedSchedule(service)

    # ----------------------------------------------------------------- entry points

    async def active(self, turn: Turn) -> PactRecording | None:
        """The chair's recording in progress, if any."""
        assert turn.person.id is not None
        return await turn.uow.pact.active_recording(turn.person.id)

    async def meeting_command(self, turn: Turn) -> None:
        """``/meeting``: carry on recording, or list the meetings waiting to be recorded."""
        rec = await self.active(turn)
        if rec is not None:
            await self._ask(turn, rec, note="Carrying on where you left off.")
            return
        pending = await self.service.to_record(turn.uow, turn.person)
        if not pending:
            b = MessageBuilder().line("No PACT meeting of yours is waiting to be recorded.")
            upcoming = await self.service.upcoming(turn.uow, turn.person)
            for m in upcoming[:3]:
                b.line(f"Next: {self._describe(m)}")
            if not upcoming:
                b.line("To schedule one: /schedule YYYY-MM-DD HH:MM FORMAT VENUE")
            await turn.reply(b.build())
            return
        for m in pending[:3]:
            await turn.reply(
                MessageBuilder()
                .line(bold("To record: "), self._describe(m))
                .row(*self.service.record_buttons(m))
                .build()
            )

    async def schedule_command(self, turn: Turn, args: str) -> None:
        """``/schedule [neighbourhood] YYYY-MM-DD HH:MM FORMAT VENUE``; ``/schedule`` alone (or
        with just a neighbourhood) asks for each in turn."""
        if len(args.split()) <= 1 and not (
            args.strip()[:1].isascii() and args.strip()[:1].isdigit()
        ):
            await self.guided.start(turn, args.strip())
            return
        try:
            text = await self.service.schedule_in_chat(turn.uow, turn.person, args)
        except PactError as exc:
            text = str(exc)
        await turn.reply(MessageBuilder().line(text).build())

    async def cancel(self, turn: Turn) -> bool:
        """``/cancel`` while recording or scheduling: stop (nothing is stored). False if
        neither."""
        if await self.guided.cancel(turn):
            return True
        rec = await self.active(turn)
        if rec is None:
            return False
        await self._stop(turn, rec, None)
        return True

    async def button(self, turn: Turn, action: ButtonAction, ref: str | None) -> None:
        """A tap on a PACT button."""
        if action.kind is Kind.PACT_RECORD:
            await self._start(turn, action.target, ref)
            return
        if action.kind is Kind.PACT_CANCELLED:
            try:
                text = await self.service.mark_cancelled(turn.uow, turn.person, action.target)
            except PactError as exc:
                turn.toast = str(exc)[:190]
                text = str(exc)
            await turn.reply(MessageBuilder().line(text).build(), edit_ref=ref)
            return
        rec = await turn.uow.pact.get_recording(action.target)
        if rec is None or rec.person_id != turn.person.id:
            turn.toast = "That button is not valid any more."
            return
        if rec.status != "active" or rec.seq != action.seq:
            turn.toast = "That question has moved on: please use the latest message."
            return
        await self._choice(turn, rec, action.value, ref)

    async def text(self, turn: Turn, raw: str) -> bool:
        """A typed answer; False when the chair is not recording or scheduling (not ours to
        answer)."""
        if await self.guided.text(turn, raw):
            return True
        rec = await self.active(turn)
        if rec is None:
            return False
        text = clean_text(raw)
        draft = dict(rec.draft)
        step = rec.step
        try:
            if step == "public":
                draft["public"] = parse_count(
                    text, "members of the public", self.service.config.pact.max_attendance
                )
                self._move(rec, draft, "new")
            elif step == "new":
                new = parse_count(text, "new attendees", self.service.config.pact.max_attendance)
                if new > draft["public"]:
                    raise PactError(
                        f"New attendees ({new}) cannot be more than the members of the public "
                        f"present ({draft['public']})."
                    )
                draft["new"] = new
                self._move(
                    rec, draft, "partners" if draft["invited"] else self._after_partners(draft)
                )
            elif step == "review_note":
                if not 3 <= len(text) <= MAX_NOTE:
                    raise PactError(f"Please say what was done in 3 to {MAX_NOTE} characters.")
                self._note(rec, draft, text)
            elif step == "priority":
                if len(draft["new_priorities"]) >= MAX_NEW_PRIORITIES:
                    raise PactError(self._too_many())
                if not 3 <= len(text) <= MAX_TITLE:
                    raise PactError(f"A priority needs 3 to {MAX_TITLE} characters.")
                draft["pending"] = text
                self._move(rec, draft, "owner")
            elif step == "confirm" and len(draft["new_priorities"]) >= MAX_NEW_PRIORITIES:
                raise PactError(self._too_many())
            else:
                await self._ask(turn, rec, note="Please use the buttons for this one.", new=True)
                return True
        except PactError as exc:
            await turn.reply(MessageBuilder().line(str(exc)).build())
            return True
        rec.updated_at = turn.now
        await self._ask(turn, rec)
        return True

    async def unsupported(self, turn: Turn, kind: str) -> bool:
        """A photo or sticker while recording: say so and ask again."""
        rec = await self.active(turn)
        if rec is None:
            return False
        await turn.reply(
            MessageBuilder().line(f"Sorry, I can only take typed text, not a {kind}.").build()
        )
        await self._ask(turn, rec, new=True)
        return True

    # ----------------------------------------------------------------- the flow

    @staticmethod
    def _too_many() -> str:
        return (
            f"A meeting sets at most {MAX_NEW_PRIORITIES} new priorities, so that one was not "
            "added. Carry it to the next meeting, or tap Start again to change the list."
        )

    async def _start(self, turn: Turn, meeting_id: int, ref: str | None) -> None:
        try:
            context = await self.service.context(turn.uow, turn.person, meeting_id)
        except PactError as exc:
            turn.toast = str(exc)[:190]
            await turn.reply(MessageBuilder().line(str(exc)).build())
            return
        rec = await self.active(turn)
        if rec is not None and rec.meeting_id == meeting_id:
            await self._ask(turn, rec, note="Carrying on where you left off.")
            return
        if rec is not None:
            rec.status, rec.updated_at = "cancelled", turn.now  # another meeting's draft
        assert turn.person.id is not None
        draft: dict[str, Any] = {
            "invited": [[pid, name] for pid, name in context.partners],
            "partners": [],
            "priorities": [
                [p.id, p.title, p.owner_team, p.report_back] for p in context.priorities
            ],
            "reviews": {},
            "i": 0,
            "new_priorities": [],
            "teams": [[k, n] for k, n in context.teams],
        }
        rec = PactRecording(
            meeting_id=meeting_id,
            person_id=turn.person.id,
            started_at=turn.now,
            updated_at=turn.now,
            draft=draft,
        )
        await turn.uow.pact.add_recording(rec)
        await audit(
            turn.uow,
            turn.now,
            f"person:{turn.person.id}",
            "pact.record.start",
            f"pact-meeting:{meeting_id}",
        )
        await self._ask(turn, rec, edit_ref=ref)

    @staticmethod
    def _move(rec: PactRecording, draft: dict[str, Any], step: str) -> None:
        rec.draft = draft  # re-assigned, never mutated in place, so the mapper sees it
        rec.step = step
        rec.seq += 1

    @staticmethod
    def _after_partners(draft: dict[str, Any]) -> str:
        return "review" if draft["priorities"] else "priority"

    def _note(self, rec: PactRecording, draft: dict[str, Any], note: str) -> None:
        pid = draft["priorities"][draft["i"]][0]
        reviews = dict(draft["reviews"])
        reviews[str(pid)] = [reviews[str(pid)][0], note]
        draft["reviews"] = reviews
        draft["i"] += 1
        nxt = "review" if draft["i"] < len(draft["priorities"]) else "priority"
        self._move(rec, draft, nxt)

    async def _choice(self, turn: Turn, rec: PactRecording, value: int, ref: str | None) -> None:
        draft = dict(rec.draft)
        step = rec.step
        if value == CANCEL:
            await self._stop(turn, rec, ref)
            return
        if step == "partners" and value == DONE:
            self._move(rec, draft, self._after_partners(draft))
        elif step == "partners" and 0 <= value < len(draft["invited"]):
            pid = draft["invited"][value][0]
            ticked = list(draft["partners"])
            draft["partners"] = [p for p in ticked if p != pid] if pid in ticked else [*ticked, pid]
            self._move(rec, draft, "partners")
        elif step == "review" and value in (0, 1):
            pid = draft["priorities"][draft["i"]][0]
            draft["reviews"] = {
                **draft["reviews"],
                str(pid): ["closed" if value == 0 else "carried", ""],
            }
            self._move(rec, draft, "review_note")
        elif step == "review_note" and value == USE_REPORT:
            report = draft["priorities"][draft["i"]][3]
            if not report:
                turn.toast = "The owner has not reported back: please type what was done."
                return
            self._note(rec, draft, report)
        elif step == "priority" and value == DONE:
            self._move(rec, draft, "confirm")
        elif step == "owner" and 0 <= value < len(draft["teams"]):
            title = draft.pop("pending", "")
            draft["new_priorities"] = [*draft["new_priorities"], [title, draft["teams"][value][0]]]
            full = len(draft["new_priorities"]) >= MAX_NEW_PRIORITIES
            self._move(rec, draft, "confirm" if full else "priority")
        elif step == "confirm" and value == RESTART:
            fresh = {**draft, "partners": [], "reviews": {}, "i": 0, "new_priorities": []}
            for key in ("public", "new", "pending"):
                fresh.pop(key, None)
            self._move(rec, fresh, "public")
        elif step == "confirm" and value == SAVE:
            await self._save(turn, rec, ref)
            return
        else:
            turn.toast = "That button is not valid here."
            return
        rec.updated_at = turn.now
        await self._ask(turn, rec, edit_ref=ref)

    async def _save(self, turn: Turn, rec: PactRecording, ref: str | None) -> None:
        d = rec.draft
        record = MeetingRecord(
            public=int(d["public"]),
            new=int(d["new"]),
            partners=[int(p) for p in d["partners"]],
            reviews=[(int(pid), v[0], v[1]) for pid, v in d["reviews"].items()],
            new_priorities=[(t, o) for t, o in d["new_priorities"]],
        )
        try:
            context = await self.service.context(turn.uow, turn.person, rec.meeting_id)
        except PactError as exc:
            rec.status, rec.updated_at = "cancelled", turn.now
            await turn.reply(MessageBuilder().line(str(exc)).build(), edit_ref=ref)
            return
        errors = await self.service.apply_record(turn.uow, turn.person, context, record)
        if errors:
            # The meeting's priorities changed meanwhile (or a count was edited elsewhere):
            # start the record again from the top with the current list.
            self._move(rec, {**d, "i": 0}, "public")
            await turn.reply(
                MessageBuilder()
                .line("That record could not be saved: " + "; ".join(errors.values()))
                .line("Let's go through it again.")
                .build()
            )
            await self._ask(turn, rec, new=True)
            return
        rec.status, rec.updated_at, rec.seq = "submitted", turn.now, rec.seq + 1
        turn.toast = "Saved. Thank you."
        meeting = context.meeting
        b = MessageBuilder().line(bold(f"Saved: {self._describe(meeting)}"))
        b.line(
            f"{record.public} members of the public ({record.new} new), "
            f"{len(record.partners)} of {len(context.partners)} partners."
        )
        for pid, decision, note in record.reviews:
            title = next(p[1] for p in d["priorities"] if p[0] == pid)
            b.line(f"You said: {title}. We did: {note} ({decision}).")
        for title, _ in record.new_priorities:
            b.line(f"New priority: {title}")
        b.line(
            italic(
                "Owner teams are told of new priorities and asked to report back before "
                "the next meeting."
            )
        )
        await turn.reply(b.build(), edit_ref=ref)

    async def _stop(self, turn: Turn, rec: PactRecording, ref: str | None) -> None:
        rec.status, rec.updated_at, rec.seq = "cancelled", turn.now, rec.seq + 1
        await turn.reply(
            MessageBuilder()
            .line("Recording stopped; nothing was saved. Send /meeting to start again.")
            .build(),
            edit_ref=ref,
        )

    def _describe(self, m: PactMeeting) -> str:
        return (
            f"{self.service.hood_name(m.neighbourhood)} PACT meeting, "
            f"{local_time(m.starts_at, self.tz)}, {m.venue} ({FORMAT_LABELS.get(m.format, m.format)})"
        )

    def _button(self, rec: PactRecording, label: str, value: int) -> Button:
        assert rec.id is not None
        return Button(
            label=label, data=ButtonAction(Kind.PACT_PICK, rec.id, rec.seq, value).encode()
        )

    async def _ask(
        self,
        turn: Turn,
        rec: PactRecording,
        *,
        note: str = "",
        edit_ref: str | None = None,
        new: bool = False,
    ) -> None:
        """Show the current step (editing the tapped message, or as a new message)."""
        if new:
            rec.seq += 1  # older copies of the question stop working
        d = rec.draft
        b = MessageBuilder()
        if note:
            b.line(italic(note))
        step = rec.step
        cancel = self._button(rec, "Cancel", CANCEL)
        if step == "public":
            m = await turn.uow.pact.get_meeting(rec.meeting_id)
            if m is not None:
                b.line(bold("Recording: "), self._describe(m))
            b.line("How many members of the public came? Type a number.")
            b.row(cancel)
        elif step == "new":
            b.line(
                f"Of the {d['public']}, how many came to a PACT meeting for the first time? "
                "Type a number (0 if none)."
            )
            b.row(cancel)
        elif step == "partners":
            b.line("Which partners were there? Tap each one, then Done.")
            for i, (pid, name) in enumerate(d["invited"]):
                mark = "✓ " if pid in d["partners"] else ""
                b.row(self._button(rec, f"{mark}{name}", i))
            b.row(self._button(rec, "Done", DONE), cancel)
        elif step in ("review", "review_note"):
            pid, title, owner, report = d["priorities"][d["i"]]
            teams = dict((k, n) for k, n in d["teams"])
            b.line(bold(f"Priority {d['i'] + 1} of {len(d['priorities'])}: "), title)
            b.line(f"Owner: {teams.get(owner, owner)}")
            b.line(f"They reported: {report}" if report else "The owner has not reported back.")
            if step == "review":
                b.line("Did the meeting close it, or carry it on?")
                b.row(self._button(rec, "Closed", 0), self._button(rec, "Carried", 1))
            else:
                b.line("What was done? (you said, we did) Type it for the record.")
                b.line(italic(PUBLIC_WARNING))
                if report:
                    b.row(self._button(rec, "Use their report", USE_REPORT))
            b.row(cancel)
        elif step == "priority":
            n = len(d["new_priorities"])
            b.line(f"New priority {n + 1} (at most {MAX_NEW_PRIORITIES}): type it, or tap No more.")
            b.row(self._button(rec, "No more new priorities", DONE), cancel)
        elif step == "owner":
            b.line(f"Which team owns \u201c{d.get('pending', '')}\u201d?")
            for i, (_, name) in enumerate(d["teams"]):
                b.row(self._button(rec, name, i))
            b.row(cancel)
        else:  # confirm
            b.line(bold("Please check the record"))
            b.line(f"Members of the public: {d['public']} ({d['new']} new)")
            names = [name for pid, name in d["invited"] if pid in d["partners"]]
            b.line(f"Partners present: {', '.join(names) if names else 'none'}")
            for pid, title, _, _ in d["priorities"]:
                decision, what = d["reviews"].get(str(pid), ["?", ""])
                b.line(f"{title}: {decision}. We did: {what}")
            teams = dict((k, n) for k, n in d["teams"])
            for title, owner in d["new_priorities"]:
                b.line(f"New: {title} ({teams.get(owner, owner)})")
            if not d["new_priorities"]:
                b.line("No new priorities.")
            b.line(italic(PUBLIC_WARNING))
            b.row(self._button(rec, "Save the record", SAVE))
            b.row(self._button(rec, "Start again", RESTART), cancel)
        await turn.reply(b.build(), edit_ref=edit_ref)
