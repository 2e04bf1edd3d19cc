"""The monthly form's steps: where a conversation is, moving it on, and showing each question.

A conversation walks the form's visible questions one at a time, then a review (Submit, Edit,
Add another) and, from there, an edit menu. Every move bumps ``seq``, so a button on an older
copy of a question is refused as stale; ``history`` is the way Back goes. Submitting turns the
draft (and any tensions added before it) into reports in the same unit of work.

:class:`ChatTurn` is one inbound chat event being handled: the unit of work, the person, where
to reply and a reply counter that makes each queued reply's idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot import texts
from bot.actions.service import ActionService
from bot.buttons import BadPayload, ButtonAction, Kind
from bot.common import Sender, audit, enqueue
from bot.config import Config
from bot.domain import Conversation, OutboxMessage, OutboxStatus, Speaker
from bot.forms import FormDefinition, Question
from bot.forms.versions import FormService
from bot.messages import OutgoingMessage
from bot.ports import UnitOfWork
from bot.returns.reports import create_reports

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


class ChatTurn:
    """Per-call context: the unit of work, the person, where to reply, and a reply counter."""

    def __init__(
        self,
        uow: UnitOfWork,
        person: Speaker,
        sender: Sender,
        now: datetime,
        lease_until: datetime | None = None,
        in_flight: Sequence[int] = (),
    ) -> None:
        self.uow = uow
        self.person = person
        self.sender = sender
        self.now = now
        self.replies = 0
        self.toast: str | None = None
        # With a lease, replies are queued already claimed by this process and sent right
        # after the commit (bot/delivery/direct.py); without, the dispatcher sends them.
        self.lease_until = lease_until
        self.claimed: list[OutboxMessage] = []
        self._in_flight = list(in_flight)  # replies to this chat still being sent, before these

    def key(self) -> str:
        """The idempotency key of the next reply queued in this turn."""
        self.replies += 1
        ident = self.sender.update_id if self.sender.update_id is not None else self.now.timestamp()
        return f"in:{self.sender.platform}:{ident}:{self.replies}"

    async def reply(self, message: OutgoingMessage, edit_ref: str | None = None) -> None:
        """Queue a reply to the sender's chat (editing ``edit_ref`` in place when given)."""
        if self.lease_until is not None:
            row = await self.uow.outbox.add_claimed(
                OutboxMessage(
                    channel=self.sender.platform,
                    recipient=str(self.sender.chat_id),
                    payload=message.model_dump(mode="json"),
                    idempotency_key=self.key(),
                    created_at=self.now,
                    next_attempt_at=None,
                    edit_ref=edit_ref,
                ),
                self.lease_until,
                [*self._in_flight, *(r.id for r in self.claimed if r.id is not None)],
            )
            if row is not None and row.status == OutboxStatus.SENDING.value:
                self.claimed.append(row)
            return
        await enqueue(
            self.uow,
            channel=self.sender.platform,
            recipient=self.sender.chat_id,
            message=message,
            key=self.key(),
            now=self.now,
            edit_ref=edit_ref,
        )

    @property
    def pid(self) -> int:
        """The id of the person this turn is for."""
        assert self.person.id is not None
        return self.person.id


def current_question(conv: Conversation, form: FormDefinition) -> Question | None:
    """The question the conversation is on (None at the review or the edit menu)."""
    if conv.step in (REVIEW, EDIT):
        return None
    try:
        return form.question(conv.step)
    except KeyError:
        return None


def move(conv: Conversation, to: str, *, push: bool) -> None:
    """Go to step ``to`` (remembering where we were for Back when ``push``)."""
    if push:
        conv.history = [*conv.history, conv.step]
    conv.step = to
    conv.seq += 1


class FormSteps:
    """Starting, moving on, asking, going back, cancelling and submitting a conversation."""

    def __init__(self, config: Config, forms: FormService, actions: ActionService) -> None:
        self.config = config
        self.forms = forms
        self.actions = actions
        self.tz = config.partnership.tz
        self.wards = config.partnership.wards

    async def form_for(self, step: ChatTurn, conv: Conversation) -> FormDefinition:
        """The form version the conversation was started on."""
        return await self.forms.definition(step.uow, conv.form_version_id)

    async def campaign_open(self, step: ChatTurn, campaign_id: int | None) -> bool:
        """True when the return ``campaign_id`` still takes answers."""
        if campaign_id is None:
            return False
        campaign = await step.uow.campaigns.get(campaign_id)
        return campaign is not None and campaign.status == "open" and step.now < campaign.closes_at

    async def closed(self, step: ChatTurn, campaign_id: int | None) -> None:
        """Say that the return has closed."""
        campaign = await step.uow.campaigns.get(campaign_id) if campaign_id else None
        step.toast = "This return has closed."
        if campaign is not None:
            await step.reply(texts.campaign_closed(campaign, self.tz))

    async def new_conversation(
        self, step: ChatTurn, flow: str, campaign_id: int | None, form_version_id: int
    ) -> Conversation:
        """A new conversation on the form's first question."""
        form = await self.forms.definition(step.uow, form_version_id)
        conv = Conversation(
            person_id=step.pid,
            flow=flow,
            form_version_id=form_version_id,
            campaign_id=campaign_id,
            started_at=step.now,
            updated_at=step.now,
            step=form.questions[0].id,
        )
        await step.uow.conversations.add(conv)
        return conv

    async def ask(
        self,
        step: ChatTurn,
        conv: Conversation,
        form: FormDefinition,
        edit_ref: str | None = None,
        note: str = "",
    ) -> None:
        """Show the current step: a question, the review or the edit menu."""
        conv.updated_at = step.now
        if conv.step == REVIEW:
            msg = texts.review_message(conv, form, note=note)
        elif conv.step == EDIT:
            msg = texts.edit_menu(conv, form)
        else:
            msg = texts.question_message(conv, form, form.question(conv.step), self.wards, note)
        await step.reply(msg, edit_ref=edit_ref)

    async def reask(self, step: ChatTurn, conv: Conversation, note: str = "") -> None:
        """Show the current question again as a new message (buttons near the bottom)."""
        conv.seq += 1  # older copies of the question stop working
        await self.ask(step, conv, await self.form_for(step, conv), note=note)

    async def accept(
        self,
        step: ChatTurn,
        conv: Conversation,
        form: FormDefinition,
        q: Question,
        value: str,
        ref: str | None,
    ) -> None:
        """Store a checked answer and ask the next unanswered question (or show the review)."""
        conv.draft = form.prune({**conv.draft, q.id: value})
        nxt = form.next_unanswered(conv.draft)
        if nxt is None:
            # Back from the review walks back through the answers in form order.
            conv.history = [v.id for v in form.visible_questions(conv.draft)]
            conv.editing = False
            conv.step, conv.seq = REVIEW, conv.seq + 1
        else:
            move(conv, nxt.id, push=True)
        await self.ask(step, conv, form, edit_ref=ref)

    async def back(
        self, step: ChatTurn, conv: Conversation, form: FormDefinition, ref: str | None
    ) -> None:
        """Go back one step (skipping questions an answer since made not apply)."""
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
        await self.ask(step, conv, form, edit_ref=ref)

    async def retire_keyboard(self, step: ChatTurn, conv: Conversation) -> None:
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
        await step.reply(message.model_copy(update={"buttons": []}), last.result_ref)

    async def cancel(self, step: ChatTurn, conv: Conversation, ref: str | None) -> None:
        """Cancel the conversation: nothing is sent."""
        conv.status = "cancelled"
        conv.updated_at = step.now
        conv.seq += 1
        await audit(
            step.uow,
            step.now,
            f"person:{step.pid}",
            "conversation.cancel",
            f"conversation:{conv.id}",
        )
        await step.reply(texts.cancelled(conv), edit_ref=ref)

    async def submit(
        self, step: ChatTurn, conv: Conversation, form: FormDefinition, ref: str | None
    ) -> None:
        """Turn the draft (and any tensions added before it) into reports."""
        missing = form.next_unanswered(conv.draft)
        if missing is not None:
            move(conv, missing.id, push=True)
            await self.ask(step, conv, form, edit_ref=ref, note="One more answer is needed.")
            return
        made = await create_reports(
            step.uow,
            person_id=step.pid,
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
        await step.reply(texts.submitted(made, form), edit_ref=ref)
