"""The guided conversation: commands, buttons and text answers, every answer stored as it arrives.

A handler turns a platform event into one call here. Each call is one unit of work: it checks the
sender, drops a redelivered update, moves the conversation on, queues the replies in the outbox and
commits — so a crash at any point either loses the whole step (and the platform redelivers it) or
keeps all of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot import texts
from bot.actions.service import ActionService
from bot.boundaries import Boundaries, WardCheck, load_boundaries
from bot.buttons import BadPayload, ButtonAction, Kind
from bot.clock import Clock
from bot.common import Outcome, Sender, Waker, audit, clean_text, enqueue
from bot.config import Config
from bot.domain import (
    ANSWERED,
    Campaign,
    Conversation,
    DeliveryState,
    OutboxStatus,
    Person,
)
from bot.forms import FormDefinition, Question
from bot.forms.versions import FormService
from bot.messages import MessageBuilder, OutgoingMessage
from bot.pact.chat import PactChat
from bot.pact.service import PactService
from bot.people.identity import NotInvited, find, identify, refusal
from bot.people.service import PeopleService
from bot.ports import UnitOfWork, UnitOfWorkFactory
from bot.returns.reports import create_reports, record_nil

log = logging.getLogger(__name__)

REVIEW = "review"
EDIT = "edit"
_CONVERSATION_KINDS = frozenset(
    {
        Kind.ANSWER,
        Kind.SKIP,
        Kind.BACK,
        Kind.CANCEL,
        Kind.REVIEW_SUBMIT,
        Kind.REVIEW_EDIT,
        Kind.EDIT_FIELD,
        Kind.ADD_ANOTHER,
    }
)


class _Step:
    """Per-call context: the unit of work, the person, where to reply, and a reply counter."""

    def __init__(self, uow: UnitOfWork, person: Person, sender: Sender, now: datetime) -> None:
        self.uow = uow
        self.person = person
        self.sender = sender
        self.now = now
        self.replies = 0
        self.toast: str | None = None

    def key(self) -> str:
        self.replies += 1
        ident = self.sender.update_id if self.sender.update_id is not None else self.now.timestamp()
        return f"in:{self.sender.platform}:{ident}:{self.replies}"

    async def reply(self, message: OutgoingMessage, edit_ref: str | None = None) -> None:
        """Queue a reply to the sender's chat (editing ``edit_ref`` in place when given)."""
        await enqueue(
            self.uow,
            channel=self.sender.platform,
            recipient=self.sender.chat_id,
            message=message,
            key=self.key(),
            now=self.now,
            edit_ref=edit_ref,
        )


class ConversationService:
    """Everything a reporter can do in chat."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        people: PeopleService,
        actions: ActionService,
        pact: PactService,
        wake: Waker,
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        self.forms = forms
        self.people = people
        self.wake = wake
        self.tz = config.partnership.tz
        self.wards = config.partnership.wards
        path = config.wards.boundaries_file
        # Checked when the configuration was loaded; read once here.
        self.boundaries: Boundaries | None = (
            load_boundaries(path, self.wards) if path is not None else None
        )
        self.actions = actions
        self.pact = pact
        self._pact = PactChat(pact)  # the chair's side of PACT in this chat

    # ----------------------------------------------------------------- entry points

    async def start(self, sender: Sender, token: str | None) -> Outcome:
        """``/start`` with or without an invitation token."""
        if token:
            result = await self.people.link(sender, token)
            if result.person is None:
                return Outcome(direct=MessageBuilder().line(result.message).build())
            self.wake()
            return Outcome()
        return await self._run(sender, self._help, refuse=True)

    async def command(self, sender: Sender, name: str, args: str = "") -> Outcome:
        """``/help``, ``/report``, ``/status``, ``/cancel``, ``/return``; for PACT chairs
        ``/meeting`` (record a meeting) and ``/schedule ...`` (schedule one)."""

        async def schedule(step: _Step) -> None:
            await self._pact.schedule_command(step, args)

        handlers: dict[str, Callable[[_Step], Awaitable[None]]] = {
            "help": self._help,
            "report": self._report,
            "status": self._status,
            "cancel": self._cancel_command,
            "return": self._return,
            "meeting": self._pact.meeting_command,
            "schedule": schedule,
        }
        handler = handlers.get(name)
        if handler is None:
            return await self._run(sender, self._unknown_command)
        return await self._run(sender, handler)

    async def menus(
        self, platform: str
    ) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
        """The command menus on ``platform``: everyone's (a reporter's commands), and chat ->
        commands for each person there who may use more (chairs, the Prevent officer,
        admins)."""
        default = texts.commands_for("", chair=False)
        extra: dict[str, list[tuple[str, str]]] = {}
        async with self.uow_factory() as uow:
            for person in await uow.people.all():
                address = person.address_on(platform)
                if person.active and address is not None and address.chat is not None:
                    commands = await self._commands(uow, person)
                    if commands != default:
                        extra[address.chat] = commands
        return default, extra

    async def menu_for(self, sender: Sender) -> list[tuple[str, str]] | None:
        """The command menu of the person in this chat when it is more than everyone's (None:
        everyone's, or not a person we know)."""
        async with self.uow_factory() as uow:
            person = await find(uow, sender.who)
            if person is None:
                return None
            commands = await self._commands(uow, person)
        return None if commands == texts.commands_for("", chair=False) else commands

    async def text(self, sender: Sender, text: str) -> Outcome:
        """A free-text message."""

        async def handle(step: _Step) -> None:
            await self._on_text(step, text)

        return await self._run(sender, handle)

    async def location(self, sender: Sender, latitude: float, longitude: float) -> Outcome:
        """A shared location: the answer to "Where exactly?" (question ``location``), kept
        only to about 100 m (three decimals of a degree: a street, never a doorstep), with a
        check against the ward chosen when there are ward boundaries. A point outside that
        ward is said, politely, with a button to change the ward; carrying on keeps it."""

        async def handle(step: _Step) -> None:
            conv = await step.uow.conversations.active_for(self._pid(step))
            form = await self._form_for(step, conv) if conv is not None else None
            q = self._current_question(conv, form) if conv and form else None
            if conv is None or form is None or q is None or q.id != "location":
                await self._reply(
                    step,
                    MessageBuilder()
                    .line(
                        "Thank you: a shared location answers the “Where exactly” question "
                        "only. Please answer this one as asked."
                    )
                    .build(),
                )
                if conv is not None:
                    await self._reask(step, conv)
                return
            if conv.flow == "monthly" and not await self._campaign_open(step, conv.campaign_id):
                await self._closed(step, conv.campaign_id)
                return
            await self._retire_keyboard(step, conv)
            check = self._check(latitude, longitude, conv.draft.get("ward", ""))
            if check.result == "outside":
                await self._reply(step, texts.outside_ward(check, conv, self.wards))
            await self._accept(step, conv, form, q, coarse_place(check, latitude, longitude), None)

        return await self._run(sender, handle)

    async def unsupported(self, sender: Sender, kind: str) -> Outcome:
        """A photo, voice note, sticker, file ... which the form cannot take."""

        async def handle(step: _Step) -> None:
            if await self._pact.unsupported(step, kind):
                return
            conv = await step.uow.conversations.active_for(self._pid(step))
            msg = MessageBuilder().line(
                f"Sorry, I can only take typed text here, not a {kind}. "
                "Please describe it in words (and do not send photos of people)."
            )
            await self._reply(step, msg.build())
            if conv is not None:
                await self._reask(step, conv)

        return await self._run(sender, handle)

    async def button(self, sender: Sender, data: str, message_ref: str | None) -> Outcome:
        """A tap on one of our buttons."""
        try:
            action = ButtonAction.decode(data)
        except BadPayload:
            log.warning("refused a malformed button payload from telegram user %s", sender.user_id)
            return Outcome(toast="That button is not valid any more.")

        async def handle(step: _Step) -> None:
            await self._on_button(step, action, message_ref)

        return await self._run(sender, handle)

    # ----------------------------------------------------------------- plumbing

    async def _run(self, sender: Sender, handler: Any, refuse: bool = True) -> Outcome:
        async with self.uow_factory() as uow:
            try:
                person = await identify(uow, sender.who, self.config.partnership)
            except NotInvited as refused:
                # Nothing about an unknown user is stored: not even the update id.
                return Outcome(toast=refused.short, direct=refusal(self.config.partnership))
            now = self.clock.now()
            if sender.update_id is not None and await uow.inbound.seen(
                sender.platform, sender.update_id, now
            ):
                log.info("ignored redelivered update %s", sender.update_id)
                return Outcome()
            address = person.address_on(sender.platform)
            if address is None or address.chat != str(sender.chat_id):
                # They wrote to us again: they are reachable (again) in this chat.
                await self._move_chat(uow, person, sender)
            if person.blocked_at is not None:
                person.blocked_at = None
            step = _Step(uow, person, sender, now)
            await handler(step)
            await uow.commit()
        if step.replies:
            self.wake()
        return Outcome(toast=step.toast)

    @staticmethod
    async def _move_chat(uow: UnitOfWork, person: Person, sender: Sender) -> None:
        """The person's replies go to the chat they wrote from (taken from whoever had it)."""
        chat = str(sender.chat_id)
        holder = await uow.people.by_chat(sender.platform, chat)
        if holder is not None and holder is not person:
            held = holder.address_on(sender.platform)
            if held is not None:
                held.chat = None
            await uow.people.flush()  # the chat is unique per platform: free it first
        person.set_address(sender.platform, str(sender.user_id), chat)

    @staticmethod
    def _pid(step: _Step) -> int:
        assert step.person.id is not None
        return step.person.id

    @staticmethod
    async def _reply(step: _Step, message: OutgoingMessage, edit_ref: str | None = None) -> None:
        await step.reply(message, edit_ref)

    async def _form_for(self, step: _Step, conv: Conversation) -> FormDefinition:
        return await self.forms.definition(step.uow, conv.form_version_id)

    # ----------------------------------------------------------------- commands

    async def _commands(self, uow: UnitOfWork, person: Person) -> list[tuple[str, str]]:
        chair = await self.pact.chairs(uow, person)
        return texts.commands_for(person.role, chair=chair)

    async def _help(self, step: _Step) -> None:
        form = await self.forms.current(step.uow)
        commands = await self._commands(step.uow, step.person)
        name = self.config.partnership.name
        await self._reply(step, texts.help_message(name, form.definition, commands))

    async def _unknown_command(self, step: _Step) -> None:
        await self._reply(
            step,
            MessageBuilder()
            .line("I don't know that command. Send /help for what I can do.")
            .build(),
        )

    async def _status(self, step: _Step) -> None:
        pid = self._pid(step)
        open_returns: list[tuple[Campaign, str]] = []
        for campaign in await step.uow.campaigns.open():
            assert campaign.id is not None
            delivery = await step.uow.deliveries.get_for(campaign.id, pid)
            if delivery is not None:
                open_returns.append((campaign, delivery.status))
        reports = await step.uow.reports.for_person(pid, limit=10)
        states = {}
        for report in reports:
            states[report.reference] = await self.actions.states_for(step.uow, report)
        form = (await self.forms.current(step.uow)).definition
        await audit(step.uow, step.now, f"person:{pid}", "status.view", f"person:{pid}")
        await self._reply(step, texts.status_message(open_returns, reports, form, self.tz, states))

    async def _cancel_command(self, step: _Step) -> None:
        if await self._pact.cancel(step):
            return
        conv = await step.uow.conversations.active_for(self._pid(step))
        if conv is None:
            await self._reply(step, MessageBuilder().line("There is nothing to cancel.").build())
            return
        await self._cancel(step, conv, None)

    async def _recording(self, step: _Step) -> bool:
        """True (after saying so) when the person is in the middle of recording a PACT meeting."""
        if await self._pact.active(step) is None:
            return False
        await self._reply(
            step,
            MessageBuilder()
            .line(
                "You are recording a PACT meeting: finish it first, or send /cancel to stop "
                "(/meeting shows where you are)."
            )
            .build(),
        )
        return True

    async def _report(self, step: _Step) -> None:
        """An urgent (ad hoc) report; resumes a draft if one is open."""
        if await self._recording(step):
            return
        conv = await step.uow.conversations.active_for(self._pid(step))
        if conv is not None:
            note = "You have a report in progress, so we carry on with it."
            if conv.flow == "monthly" and not await self._campaign_open(step, conv.campaign_id):
                conv.flow, conv.campaign_id = "adhoc", None
                note = "That return has closed; your answers are kept as an urgent report."
            await self._reask(step, conv, note=note)
            return
        form = await self.forms.current(step.uow)
        assert form.id is not None
        conv = await self._new_conversation(step, "adhoc", None, form.id)
        intro = (
            MessageBuilder()
            .line(texts.bold("Report a tension"))
            .line(texts.italic(form.definition.emergency_notice))
            .build()
        )
        await self._reply(step, intro)
        await self._ask(step, conv, form.definition)

    async def _return(self, step: _Step) -> None:
        """Start or resume the open return for this person."""
        if await self._recording(step):
            return
        conv = await step.uow.conversations.active_for(self._pid(step))
        if conv is not None:
            await self._reask(step, conv, note="Carrying on where you left off.")
            return
        for campaign in await step.uow.campaigns.open():
            assert campaign.id is not None
            delivery = await step.uow.deliveries.get_for(campaign.id, self._pid(step))
            if delivery is not None and delivery.status not in ANSWERED:
                form = await self.forms.definition(step.uow, campaign.form_version_id)
                await self._reply(step, texts.form_message(campaign, form, self.tz))
                return
        await self._reply(
            step,
            MessageBuilder()
            .line("There is no open return waiting for you. To report a tension now, send /report.")
            .build(),
        )

    # ----------------------------------------------------------------- buttons

    async def _on_button(self, step: _Step, action: ButtonAction, ref: str | None) -> None:
        if action.kind in (Kind.PACT_RECORD, Kind.PACT_CANCELLED, Kind.PACT_PICK):
            await self._pact.button(step, action, ref)
            return
        if action.kind in (Kind.START, Kind.NIL):
            await self._on_campaign_button(step, action, ref)
            return
        if action.kind in (Kind.STILL, Kind.SORTED):
            reply = await self.actions.reporter_answer(
                step.uow, self._pid(step), action.target, action.kind is Kind.STILL, step.now
            )
            await self._reply(step, MessageBuilder().line(reply).build(), edit_ref=ref)
            return
        conv = await step.uow.conversations.get(action.target)
        if conv is None or conv.person_id != step.person.id:
            log.warning("refused a button for someone else's conversation")
            step.toast = "That button is not valid any more."
            return
        if action.kind is Kind.WARD and conv.status == "active":
            # Not tied to one question: the offer stands while the report is being written.
            await self._change_ward(step, conv, action.value, ref)
            return
        if conv.status != "active" or conv.seq != action.seq:
            # A second tap, or a tap on an answered message: nothing changes, but say so.
            step.toast = {
                "submitted": "Already sent: thank you. /status shows your reports.",
                "cancelled": "Already cancelled: nothing was sent.",
            }.get(
                conv.status, "Already answered: that question has moved on, see the latest message."
            )
            return
        if conv.flow == "monthly" and not await self._campaign_open(step, conv.campaign_id):
            await self._closed(step, conv.campaign_id)
            return
        form = await self._form_for(step, conv)
        match action.kind:
            case Kind.ANSWER:
                await self._on_choice(step, conv, form, action.value, ref)
            case Kind.SKIP:
                q = self._current_question(conv, form)
                if q is None or not q.optional:
                    step.toast = "This question needs an answer."
                    return
                await self._accept(step, conv, form, q, "", ref)
            case Kind.BACK:
                await self._back(step, conv, form, ref)
            case Kind.CANCEL:
                await self._cancel(step, conv, ref)
            case Kind.REVIEW_SUBMIT if conv.step == REVIEW:
                await self._submit(step, conv, form, ref)
            case Kind.REVIEW_EDIT if conv.step == REVIEW:
                self._move(conv, EDIT, push=True)
                await self._reply(step, texts.edit_menu(conv, form), edit_ref=ref)
            case Kind.EDIT_FIELD if conv.step == EDIT:
                if not 0 <= action.value < len(form.questions):
                    step.toast = "That button is not valid any more."
                    return
                q = form.questions[action.value]
                if not form.visible(q, conv.draft):
                    step.toast = "That question does not apply any more."
                    return
                conv.editing = True
                self._move(conv, q.id, push=True)
                await self._ask(step, conv, form, edit_ref=ref)
            case Kind.ADD_ANOTHER if conv.step == REVIEW:
                conv.tensions = [*conv.tensions, dict(conv.draft)]
                conv.draft = {}
                conv.history = []
                first = form.questions[0]
                self._move(conv, first.id, push=False)
                await self._ask(
                    step,
                    conv,
                    form,
                    edit_ref=ref,
                    note=f"Tension {len(conv.tensions)} is saved. Now the next one.",
                )
            case _:
                step.toast = "That button is not valid here."

    async def _on_campaign_button(self, step: _Step, action: ButtonAction, ref: str | None) -> None:
        campaign = await step.uow.campaigns.get(action.target)
        pid = self._pid(step)
        delivery = (
            await step.uow.deliveries.get_for(action.target, pid) if campaign is not None else None
        )
        if campaign is None or delivery is None:
            step.toast = "That return was not sent to you."
            return
        if not await self._campaign_open(step, campaign.id):
            await self._closed(step, campaign.id)
            return
        form = await self.forms.definition(step.uow, campaign.form_version_id)
        active = await step.uow.conversations.active_for(pid)
        if action.kind is Kind.NIL:
            assert campaign.id is not None
            if delivery.status == DeliveryState.NIL:
                step.toast = "Already recorded: your nil return is in. Thank you."
                return
            if delivery.status == DeliveryState.RESPONDED:
                step.toast = "Already done: you have sent reports for this return. Thank you."
                return
            refused = await record_nil(
                step.uow, person_id=pid, campaign_id=campaign.id, now=step.now
            )
            if refused is not None:
                step.toast = refused
                return
            if active is not None and active.campaign_id == campaign.id:
                active.status = "cancelled"
                active.updated_at = step.now
            step.toast = "Nil return recorded. Thank you."
            await self._reply(step, texts.nil_recorded(campaign), edit_ref=ref)
            return
        # START
        if active is not None:
            if active.campaign_id != campaign.id and active.flow == "monthly":
                active.status = "cancelled"  # an older return's draft; this one supersedes it
                active.updated_at = step.now
            elif active.campaign_id == campaign.id:
                # A second tap of "Report a tension": the question is already below it.
                step.toast = "Already started: the question is below. /return shows it again."
                return
            else:
                await self._reask(step, active, note="Carrying on where you left off.")
                return
        assert campaign.id is not None
        conv = await self._new_conversation(step, "monthly", campaign.id, campaign.form_version_id)
        if ref is not None:
            # The form's buttons have been answered: take them away.
            await self._reply(step, texts.form_started(campaign, form, self.tz), edit_ref=ref)
        await self._ask(step, conv, form, edit_ref=None)

    async def _on_choice(
        self, step: _Step, conv: Conversation, form: FormDefinition, index: int, ref: str | None
    ) -> None:
        q = self._current_question(conv, form)
        if q is None or q.kind == "text":
            step.toast = "Please type your answer."
            return
        values = [o.value for o in q.options] if q.kind == "choice" else self.wards
        if not 0 <= index < len(values):
            step.toast = "That button is not valid any more."
            return
        await self._accept(step, conv, form, q, values[index], ref)

    # ----------------------------------------------------------------- text

    async def _on_text(self, step: _Step, raw: str) -> None:
        if await self._pact.text(step, raw):
            return
        conv = await step.uow.conversations.active_for(self._pid(step))
        if conv is None:
            await self._reply(
                step,
                MessageBuilder()
                .line("I'm not expecting an answer just now.")
                .line("Send /report to report a tension, /status for your reports, or /help.")
                .build(),
            )
            return
        if conv.flow == "monthly" and not await self._campaign_open(step, conv.campaign_id):
            await self._closed(step, conv.campaign_id)
            return
        form = await self._form_for(step, conv)
        q = self._current_question(conv, form)
        if q is None or q.kind != "text":
            await self._reask(step, conv, note="Please use the buttons for this one.")
            return
        text = clean_text(raw)
        limit = min(self.config.form.max_text_length, q.max_length or 10**6)
        if len(text) > limit:
            await self._reply(step, MessageBuilder().line(texts.too_long(len(text), limit)).build())
            return
        if len(text) < q.min_length:
            await self._reply(
                step,
                MessageBuilder()
                .line(f"Please give a little more detail (at least {q.min_length} characters).")
                .build(),
            )
            return
        await self._retire_keyboard(step, conv)
        await self._accept(step, conv, form, q, text, None)

    async def _retire_keyboard(self, step: _Step, conv: Conversation) -> None:
        """Take the buttons off the question a typed answer just answered, so only the newest
        question has live buttons (the old ones would only be refused as stale)."""
        last = await step.uow.outbox.last_reply(step.sender.platform, str(step.sender.chat_id))
        if last is None or last.status != OutboxStatus.SENT.value or last.result_ref is None:
            return
        message = OutgoingMessage.model_validate(last.payload)
        if not message.buttons:
            return
        try:
            targets = {ButtonAction.decode(b.data).target for row in message.buttons for b in row}
            kinds = {ButtonAction.decode(b.data).kind for row in message.buttons for b in row}
        except BadPayload:
            return
        if targets != {conv.id} or not kinds <= _CONVERSATION_KINDS:
            return
        await self._reply(step, message.model_copy(update={"buttons": []}), last.result_ref)

    # ----------------------------------------------------------------- the flow

    async def _campaign_open(self, step: _Step, campaign_id: int | None) -> bool:
        if campaign_id is None:
            return False
        campaign = await step.uow.campaigns.get(campaign_id)
        return campaign is not None and campaign.status == "open" and step.now < campaign.closes_at

    async def _closed(self, step: _Step, campaign_id: int | None) -> None:
        campaign = await step.uow.campaigns.get(campaign_id) if campaign_id else None
        step.toast = "This return has closed."
        if campaign is not None:
            await self._reply(step, texts.campaign_closed(campaign, self.tz))

    async def _new_conversation(
        self, step: _Step, flow: str, campaign_id: int | None, form_version_id: int
    ) -> Conversation:
        form = await self.forms.definition(step.uow, form_version_id)
        conv = Conversation(
            person_id=self._pid(step),
            flow=flow,
            form_version_id=form_version_id,
            campaign_id=campaign_id,
            started_at=step.now,
            updated_at=step.now,
            step=form.questions[0].id,
        )
        await step.uow.conversations.add(conv)
        return conv

    @staticmethod
    def _current_question(conv: Conversation, form: FormDefinition) -> Question | None:
        if conv.step in (REVIEW, EDIT):
            return None
        try:
            return form.question(conv.step)
        except KeyError:
            return None

    @staticmethod
    def _move(conv: Conversation, to: str, *, push: bool) -> None:
        if push:
            conv.history = [*conv.history, conv.step]
        conv.step = to
        conv.seq += 1

    async def _ask(
        self,
        step: _Step,
        conv: Conversation,
        form: FormDefinition,
        edit_ref: str | None = None,
        note: str = "",
    ) -> None:
        conv.updated_at = step.now
        if conv.step == REVIEW:
            msg = texts.review_message(conv, form, note=note)
        elif conv.step == EDIT:
            msg = texts.edit_menu(conv, form)
        else:
            msg = texts.question_message(conv, form, form.question(conv.step), self.wards, note)
        await self._reply(step, msg, edit_ref=edit_ref)

    async def _reask(self, step: _Step, conv: Conversation, note: str = "") -> None:
        """Show the current question again as a new message (buttons near the bottom)."""
        conv.seq += 1  # older copies of the question stop working
        await self._ask(step, conv, await self._form_for(step, conv), note=note)

    async def _accept(
        self,
        step: _Step,
        conv: Conversation,
        form: FormDefinition,
        q: Question,
        value: str,
        ref: str | None,
    ) -> None:
        conv.draft = form.prune({**conv.draft, q.id: value})
        nxt = form.next_unanswered(conv.draft)
        if nxt is None:
            # Back from the review walks back through the answers in form order.
            conv.history = [v.id for v in form.visible_questions(conv.draft)]
            conv.editing = False
            conv.step, conv.seq = REVIEW, conv.seq + 1
        else:
            self._move(conv, nxt.id, push=True)
        await self._ask(step, conv, form, edit_ref=ref)

    async def _back(
        self, step: _Step, conv: Conversation, form: FormDefinition, ref: str | None
    ) -> None:
        if not conv.history:
            step.toast = "This is the first question."
            return
        previous = conv.history[-1]
        conv.history = conv.history[:-1]
        if previous not in (REVIEW, EDIT) and (
            previous not in {q.id for q in form.visible_questions(conv.draft)}
        ):
            previous = REVIEW if form.next_unanswered(conv.draft) is None else conv.step
        if previous == REVIEW:
            conv.editing = False
            conv.history = [v.id for v in form.visible_questions(conv.draft)]
        conv.step, conv.seq = previous, conv.seq + 1
        await self._ask(step, conv, form, edit_ref=ref)

    def _check(self, latitude: float, longitude: float, ward: str) -> WardCheck:
        if self.boundaries is None or not ward:
            return WardCheck("not checked", ward, None)
        return self.boundaries.check(latitude, longitude, ward)

    async def _change_ward(
        self, step: _Step, conv: Conversation, index: int, ref: str | None
    ) -> None:
        """The reporter's point was outside the ward chosen: make it the ward it looks like."""
        if not 0 <= index < len(self.wards):
            step.toast = "That button is not valid any more."
            return
        ward = self.wards[index]
        if conv.draft.get("ward") == ward:
            step.toast = f"Already done: the ward is {ward}."
            return
        form = await self._form_for(step, conv)
        draft = {**conv.draft, "ward": ward}
        point = _POINT.search(draft.get("location", ""))
        if point is not None:  # the stored check follows the ward (from the coarse point)
            lat, lon = float(point[1]), float(point[2])
            draft["location"] = coarse_place(self._check(lat, lon, ward), lat, lon)
        conv.draft = form.prune(draft)
        conv.updated_at = step.now
        done = MessageBuilder().line(f"The ward is now {ward}. Thank you.").build()
        await self._reply(step, done, edit_ref=ref)
        await self._reask(step, conv)

    async def _cancel(self, step: _Step, conv: Conversation, ref: str | None) -> None:
        conv.status = "cancelled"
        conv.updated_at = step.now
        conv.seq += 1
        await audit(
            step.uow,
            step.now,
            f"person:{self._pid(step)}",
            "conversation.cancel",
            f"conversation:{conv.id}",
        )
        await self._reply(step, texts.cancelled(conv), edit_ref=ref)

    async def _submit(
        self, step: _Step, conv: Conversation, form: FormDefinition, ref: str | None
    ) -> None:
        missing = form.next_unanswered(conv.draft)
        if missing is not None:
            self._move(conv, missing.id, push=True)
            await self._ask(step, conv, form, edit_ref=ref, note="One more answer is needed.")
            return
        made = await create_reports(
            step.uow,
            person_id=self._pid(step),
            source=conv.flow,
            campaign_id=conv.campaign_id,
            form_version_id=conv.form_version_id,
            tensions=[*conv.tensions, conv.draft],
            now=step.now,
            tz=self.tz,
            actions=self.actions,
            urgent_answers_open=self.config.schedule.urgent_report_answers_return,
        )
        conv.status = "submitted"
        conv.updated_at = step.now
        conv.seq += 1
        step.toast = "Submitted. Thank you."
        await self._reply(step, texts.submitted(made, form), edit_ref=ref)


_POINT = re.compile(r"(-?\d{1,2}\.\d{3}), (-?\d{1,3}\.\d{3})$")


def coarse_place(check: WardCheck, latitude: float, longitude: float) -> str:
    """A shared point as stored: the ward check (``in Park``, ``outside Park (looks like
    Heath Town)``, ``Park given, not checked``) and a coarse grid reference, rounded to three
    decimals of a degree (about 110 m north-south and 70 m east-west here): a street, never a
    doorstep."""
    return f"Shared location ({check.describe()}), to about 100 m: {latitude:.3f}, {longitude:.3f}"
