"""Checking an answer before it is stored: a tapped choice, typed text, a shared location.

A typed answer is cleaned and held to the form's length limits; a tapped choice must be one the
question offers. A shared location answers only "Where exactly?" (question ``location``) and is
kept to about 100 m (a street, never a doorstep), checked against the ward chosen when there
are ward boundaries. A point outside that ward is said, politely, with a button to change the
ward; carrying on keeps it. A bad answer gets a clear message and the conversation stays put.
"""

from __future__ import annotations

import re

from bot import texts
from bot.boundaries import Boundaries, WardCheck, load_boundaries
from bot.common import clean_text
from bot.config import Config
from bot.domain import Conversation
from bot.forms import FormDefinition
from bot.messages import MessageBuilder
from bot.returns.steps import ChatTurn, FormSteps, current_question

_POINT = re.compile(r"(-?\d{1,2}\.\d{3}), (-?\d{1,3}\.\d{3})$")


def coarse_place(check: WardCheck, latitude: float, longitude: float) -> str:
    """A shared point as stored: the ward check (``in Park``, ``outside Park (looks like
    Heath Town)``, ``Park given, not checked``) and a coarse grid reference, rounded to three
    decimals of a degree (about 110 m north-south and 70 m east-west here): a street, never a
    doorstep."""
    return f"Shared location ({check.describe()}), to about 100 m: {latitude:.3f}, {longitude:.3f}"


class Answers:
    """Takes a reporter's answer to the current question, or says why not."""

    def __init__(self, config: Config, steps: FormSteps) -> None:
        self.config = config
        self.steps = steps
        self.wards = config.partnership.wards
        path = config.wards.boundaries_file
        # Checked when the configuration was loaded; read once here.
        self.boundaries: Boundaries | None = (
            load_boundaries(path, self.wards) if path is not None else None
        )

    async def text(self, step: ChatTurn, raw: str) -> None:
        """A typed answer to the current question."""
        conv = await step.uow.conversations.active_for(step.pid)
        if conv is None:
            await step.reply(
                MessageBuilder()
                .line("I'm not expecting an answer just now.")
                .line("Send /report to report a tension, /status for your reports, or /help.")
                .build(),
            )
            return
        if conv.flow == "monthly" and not await self.steps.campaign_open(step, conv.campaign_id):
            await self.steps.closed(step, conv.campaign_id)
            return
        form = await self.steps.form_for(step, conv)
        q = current_question(conv, form)
        if q is None or q.kind != "text":
            await self.steps.reask(step, conv, note="Please use the buttons for this one.")
            return
        text = clean_text(raw)
        limit = min(self.config.form.max_text_length, q.max_length or 10**6)
        if len(text) > limit:
            await step.reply(MessageBuilder().line(texts.too_long(len(text), limit)).build())
            return
        if len(text) < q.min_length:
            await step.reply(
                MessageBuilder()
                .line(f"Please give a little more detail (at least {q.min_length} characters).")
                .build(),
            )
            return
        await self.steps.retire_keyboard(step, conv)
        await self.steps.accept(step, conv, form, q, text, None)

    async def location(self, step: ChatTurn, latitude: float, longitude: float) -> None:
        """A shared location: the answer to "Where exactly?" only."""
        conv = await step.uow.conversations.active_for(step.pid)
        form = await self.steps.form_for(step, conv) if conv is not None else None
        q = current_question(conv, form) if conv and form else None
        if conv is None or form is None or q is None or q.id != "location":
            await step.reply(
                MessageBuilder()
                .line(
                    "Thank you: a shared location answers the “Where exactly” question "
                    "only. Please answer this one as asked."
                )
                .build(),
            )
            if conv is not None:
                await self.steps.reask(step, conv)
            return
        if conv.flow == "monthly" and not await self.steps.campaign_open(step, conv.campaign_id):
            await self.steps.closed(step, conv.campaign_id)
            return
        await self.steps.retire_keyboard(step, conv)
        check = self.check(latitude, longitude, conv.draft.get("ward", ""))
        if check.result == "outside":
            await step.reply(texts.outside_ward(check, conv, self.wards))
        await self.steps.accept(step, conv, form, q, coarse_place(check, latitude, longitude), None)

    async def choice(
        self, step: ChatTurn, conv: Conversation, form: FormDefinition, index: int, ref: str | None
    ) -> None:
        """A tapped option (or ward) for the current question."""
        q = current_question(conv, form)
        if q is None or q.kind == "text":
            step.toast = "Please type your answer."
            return
        values = [o.value for o in q.options] if q.kind == "choice" else self.wards
        if not 0 <= index < len(values):
            step.toast = "That button is not valid any more."
            return
        await self.steps.accept(step, conv, form, q, values[index], ref)

    def check(self, latitude: float, longitude: float, ward: str) -> WardCheck:
        """Where the point is against ``ward`` (not checked without boundaries or a ward)."""
        if self.boundaries is None or not ward:
            return WardCheck("not checked", ward, None)
        return self.boundaries.check(latitude, longitude, ward)

    async def change_ward(
        self, step: ChatTurn, conv: Conversation, index: int, ref: str | None
    ) -> None:
        """The reporter's point was outside the ward chosen: make it the ward it looks like."""
        if not 0 <= index < len(self.wards):
            step.toast = "That button is not valid any more."
            return
        ward = self.wards[index]
        if conv.draft.get("ward") == ward:
            step.toast = f"Already done: the ward is {ward}."
            return
        form = await self.steps.form_for(step, conv)
        draft = {**conv.draft, "ward": ward}
        point = _POINT.search(draft.get("location", ""))
        if point is not None:  # the stored check follows the ward (from the coarse point)
            lat, lon = float(point[1]), float(point[2])
            draft["location"] = coarse_place(self.check(lat, lon, ward), lat, lon)
        conv.draft = form.prune(draft)
        conv.updated_at = step.now
        done = MessageBuilder().line(f"The ward is now {ward}. Thank you.").build()
        await step.reply(done, edit_ref=ref)
        await self.steps.reask(step, conv)
