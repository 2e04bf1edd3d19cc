"""The guided conversation: commands, buttons and text answers, every answer stored as it arrives.

A handler turns a platform event into one call here. Each call is one unit of work: it checks the
sender, drops a redelivered update, moves the conversation on, queues the replies in the outbox and
commits — so a crash at any point either loses the whole step (and the platform redelivers it) or
keeps all of it.

The form's steps (asking, moving on, back, cancel, submit) are in :mod:`bot.returns.steps`;
checking a typed, tapped or shared answer is in :mod:`bot.returns.answers`; the chair's PACT
turns go to :class:`bot.pact.chat.PactChat`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot import texts
from bot.actions.service import ActionService
from bot.buttons import BadPayload, ButtonAction, Kind
from bot.clock import Clock
from bot.common import Outcome, Sender, Waker, audit
from bot.config import Config
from bot.delivery.direct import DirectReplies
from bot.domain import ANSWERED, Campaign, DeliveryState, Person, Someone
from bot.forms.versions import FormService
from bot.messages import MessageBuilder
from bot.pact.chat import PactChat
from bot.pact.service import PactService
from bot.people.identity import NotInvited, arrival, find, refusal
from bot.people.service import PeopleService
from bot.ports import UnitOfWork, UnitOfWorkFactory
from bot.returns.answers import Answers
from bot.returns.reports import record_nil
from bot.returns.steps import EDIT, REVIEW, ChatTurn, FormSteps, current_question, move

log = logging.getLogger(__name__)


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
        direct: DirectReplies | None = None,
    ) -> None:
        self.config = config
        # Replies sent by this process right after the commit (bot/delivery/direct.py).
        self.direct = direct or DirectReplies()
        self.uow_factory = uow_factory
        self.clock = clock
        self.forms = forms
        self.people = people
        self.wake = wake
        self.tz = config.partnership.tz
        self.wards = config.partnership.wards
        self.actions = actions
        self.pact = pact
        self._pact = PactChat(pact)  # the chair's side of PACT in this chat
        self.steps = FormSteps(config, forms, actions)  # moving through the form
        self.answers = Answers(config, self.steps)  # checking an answer before it is kept

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

        async def schedule(step: ChatTurn) -> None:
            await self._pact.schedule_command(step, args)

        handlers: dict[str, Callable[[ChatTurn], Awaitable[None]]] = {
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

        async def handle(step: ChatTurn) -> None:
            await self._on_text(step, text)

        return await self._run(sender, handle)

    async def location(self, sender: Sender, latitude: float, longitude: float) -> Outcome:
        """A shared location: the answer to "Where exactly?" (question ``location``), kept
        only to about 100 m (three decimals of a degree: a street, never a doorstep), with a
        check against the ward chosen when there are ward boundaries. A point outside that
        ward is said, politely, with a button to change the ward; carrying on keeps it."""

        async def handle(step: ChatTurn) -> None:
            await self.answers.location(step, latitude, longitude)

        return await self._run(sender, handle)

    async def unsupported(self, sender: Sender, kind: str) -> Outcome:
        """A photo, voice note, sticker, file ... which the form cannot take."""

        async def handle(step: ChatTurn) -> None:
            if await self._pact.unsupported(step, kind):
                return
            conv = await step.uow.conversations.active_for(step.pid)
            msg = MessageBuilder().line(
                f"Sorry, I can only take typed text here, not a {kind}. "
                "Please describe it in words (and do not send photos of people)."
            )
            await step.reply(msg.build())
            if conv is not None:
                await self.steps.reask(step, conv)

        return await self._run(sender, handle)

    async def button(self, sender: Sender, data: str, message_ref: str | None) -> Outcome:
        """A tap on one of our buttons."""
        try:
            action = ButtonAction.decode(data)
        except BadPayload:
            # The platform only: the sender may be a stranger, whose id identifies them.
            log.warning("refused a malformed button payload on %s", sender.platform)
            return Outcome(toast="That button is not valid any more.")

        async def handle(step: ChatTurn) -> None:
            await self._on_button(step, action, message_ref)

        return await self._run(sender, handle)

    # ----------------------------------------------------------------- plumbing

    async def _run(self, sender: Sender, handler: Any, refuse: bool = True) -> Outcome:
        async with self.uow_factory() as uow:
            now = self.clock.now()
            try:
                person = await arrival(
                    uow, sender.who, sender.update_id, now, self.config.partnership
                )
            except NotInvited as refused:
                # Nothing about an unknown user is stored: not even the update id.
                return Outcome(toast=refused.short, direct=refusal(self.config.partnership))
            if person is None:
                log.info("ignored redelivered update %s", sender.update_id)
                return Outcome()
            if person.chat != str(sender.chat_id) or person.blocked_at is not None:
                await self._reachable(uow, sender)  # rare: the turns that change the person
            step = ChatTurn(
                uow,
                person,
                sender,
                now,
                self.direct.lease_until(),
                self.direct.in_flight(sender.platform, str(sender.chat_id)),
            )
            await handler(step)
            await uow.commit()
        # After the commit, with the connection back in the pool: the replies are recorded
        # as claimed by this process, so a crash from here on is settled by recovery.
        if uow.outbox.queued_pending:
            self.wake()
        self.direct.send(step.claimed)
        return Outcome(toast=step.toast)

    @classmethod
    async def _reachable(cls, uow: UnitOfWork, sender: Sender) -> None:
        """They wrote to us again: they are reachable (again) in this chat, and have not
        blocked the bot. The whole :class:`Person` is loaded for this alone."""
        person = await uow.people.by_address(sender.platform, str(sender.user_id))
        assert person is not None  # the speaker, read in this transaction
        address = person.address_on(sender.platform)
        if address is None or address.chat != str(sender.chat_id):
            await cls._move_chat(uow, person, sender)
        if person.blocked_at is not None:
            person.blocked_at = None

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

    # ----------------------------------------------------------------- commands

    async def _commands(self, uow: UnitOfWork, person: Someone) -> list[tuple[str, str]]:
        chair = await self.pact.chairs(uow, person)
        return texts.commands_for(person.role, chair=chair)

    async def _help(self, step: ChatTurn) -> None:
        form = await self.forms.current(step.uow)
        commands = await self._commands(step.uow, step.person)
        name = self.config.partnership.name
        await step.reply(texts.help_message(name, form.definition, commands))

    async def _unknown_command(self, step: ChatTurn) -> None:
        await step.reply(
            MessageBuilder()
            .line("I don't know that command. Send /help for what I can do.")
            .build(),
        )

    async def _status(self, step: ChatTurn) -> None:
        pid = step.pid
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
        await step.reply(texts.status_message(open_returns, reports, form, self.tz, states))

    async def _cancel_command(self, step: ChatTurn) -> None:
        if await self._pact.cancel(step):
            return
        conv = await step.uow.conversations.active_for(step.pid)
        if conv is None:
            await step.reply(MessageBuilder().line("There is nothing to cancel.").build())
            return
        await self.steps.cancel(step, conv, None)

    async def _recording(self, step: ChatTurn) -> bool:
        """True (after saying so) when the person is in the middle of recording a PACT meeting."""
        if await self._pact.active(step) is None:
            return False
        await step.reply(
            MessageBuilder()
            .line(
                "You are recording a PACT meeting: finish it first, or send /cancel to stop "
                "(/meeting shows where you are)."
            )
            .build(),
        )
        return True

    async def _report(self, step: ChatTurn) -> None:
        """An urgent (ad hoc) report; resumes a draft if one is open."""
        if await self._recording(step):
            return
        conv = await step.uow.conversations.active_for(step.pid)
        if conv is not None:
            note = "You have a report in progress, so we carry on with it."
            if conv.flow == "monthly" and not await self.steps.campaign_open(
                step, conv.campaign_id
            ):
                conv.flow, conv.campaign_id = "adhoc", None
                note = "That return has closed; your answers are kept as an urgent report."
            await self.steps.reask(step, conv, note=note)
            return
        form = await self.forms.current(step.uow)
        assert form.id is not None
        conv = await self.steps.new_conversation(step, "adhoc", None, form.id)
        intro = (
            MessageBuilder()
            .line(texts.bold("Report a tension"))
            .line(texts.italic(form.definition.emergency_notice))
            .build()
        )
        await step.reply(intro)
        await self.steps.ask(step, conv, form.definition)

    async def _return(self, step: ChatTurn) -> None:
        """Start or resume the open return for this person."""
        if await self._recording(step):
            return
        conv = await step.uow.conversations.active_for(step.pid)
        if conv is not None:
            await self.steps.reask(step, conv, note="Carrying on where you left off.")
            return
        for campaign in await step.uow.campaigns.open():
            assert campaign.id is not None
            delivery = await step.uow.deliveries.get_for(campaign.id, step.pid)
            if delivery is not None and delivery.status not in ANSWERED:
                form = await self.forms.definition(step.uow, campaign.form_version_id)
                await step.reply(texts.form_message(campaign, form, self.tz))
                return
        await step.reply(
            MessageBuilder()
            .line("There is no open return waiting for you. To report a tension now, send /report.")
            .build(),
        )

    # ----------------------------------------------------------------- buttons

    async def _on_button(self, step: ChatTurn, action: ButtonAction, ref: str | None) -> None:
        if action.kind in (Kind.PACT_RECORD, Kind.PACT_CANCELLED, Kind.PACT_PICK):
            await self._pact.button(step, action, ref)
            return
        if action.kind in (Kind.START, Kind.NIL):
            await self._on_campaign_button(step, action, ref)
            return
        if action.kind in (Kind.STILL, Kind.SORTED):
            reply = await self.actions.reporter_answer(
                step.uow, step.pid, action.target, action.kind is Kind.STILL, step.now
            )
            await step.reply(MessageBuilder().line(reply).build(), edit_ref=ref)
            return
        conv = await step.uow.conversations.get(action.target)
        if conv is None or conv.person_id != step.person.id:
            log.warning("refused a button for someone else's conversation")
            step.toast = "That button is not valid any more."
            return
        if action.kind is Kind.WARD and conv.status == "active":
            # Not tied to one question: the offer stands while the report is being written.
            await self.answers.change_ward(step, conv, action.value, ref)
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
        if conv.flow == "monthly" and not await self.steps.campaign_open(step, conv.campaign_id):
            await self.steps.closed(step, conv.campaign_id)
            return
        form = await self.steps.form_for(step, conv)
        match action.kind:
            case Kind.ANSWER:
                await self.answers.choice(step, conv, form, action.value, ref)
            case Kind.SKIP:
                q = current_question(conv, form)
                if q is None or not q.optional:
                    step.toast = "This question needs an answer."
                    return
                await self.steps.accept(step, conv, form, q, "", ref)
            case Kind.BACK:
                await self.steps.back(step, conv, form, ref)
            case Kind.CANCEL:
                await self.steps.cancel(step, conv, ref)
            case Kind.REVIEW_SUBMIT if conv.step == REVIEW:
                await self.steps.submit(step, conv, form, ref)
            case Kind.REVIEW_EDIT if conv.step == REVIEW:
                move(conv, EDIT, push=True)
                await step.reply(texts.edit_menu(conv, form), edit_ref=ref)
            case Kind.EDIT_FIELD if conv.step == EDIT:
                if not 0 <= action.value < len(form.questions):
                    step.toast = "That button is not valid any more."
                    return
                q = form.questions[action.value]
                if not form.visible(q, conv.draft):
                    step.toast = "That question does not apply any more."
                    return
                conv.editing = True
                move(conv, q.id, push=True)
                await self.steps.ask(step, conv, form, edit_ref=ref)
            case Kind.ADD_ANOTHER if conv.step == REVIEW:
                conv.tensions = [*conv.tensions, dict(conv.draft)]
                conv.draft = {}
                conv.history = []
                first = form.questions[0]
                move(conv, first.id, push=False)
                await self.steps.ask(
                    step,
                    conv,
                    form,
                    edit_ref=ref,
                    note=f"Tension {len(conv.tensions)} is saved. Now the next one.",
                )
            case _:
                step.toast = "That button is not valid here."

    async def _on_campaign_button(
        self, step: ChatTurn, action: ButtonAction, ref: str | None
    ) -> None:
        campaign = await step.uow.campaigns.get(action.target)
        pid = step.pid
        delivery = (
            await step.uow.deliveries.get_for(action.target, pid) if campaign is not None else None
        )
        if campaign is None or delivery is None:
            step.toast = "That return was not sent to you."
            return
        if not await self.steps.campaign_open(step, campaign.id):
            await self.steps.closed(step, campaign.id)
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
            await step.reply(texts.nil_recorded(campaign), edit_ref=ref)
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
                await self.steps.reask(step, active, note="Carrying on where you left off.")
                return
        assert campaign.id is not None
        conv = await self.steps.new_conversation(
            step, "monthly", campaign.id, campaign.form_version_id
        )
        if ref is not None:
            # The form's buttons have been answered: take them away.
            await step.reply(texts.form_started(campaign, form, self.tz), edit_ref=ref)
        await self.steps.ask(step, conv, form, edit_ref=None)

    # ----------------------------------------------------------------- text

    async def _on_text(self, step: ChatTurn, raw: str) -> None:
        if await self._pact.text(step, raw):
            return
        await self.answers.text(step, raw)
