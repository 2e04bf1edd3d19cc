"""Scripted behaviour of simulated reporters (shared by the demo and the end-to-end tests)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.forms import FormDefinition

if TYPE_CHECKING:
    from sim.fake_slack import FakeSlack, SlackMessage, SlackUser
    from sim.fake_telegram import SimUser


def _first_words(text: str, n: int = 6) -> str:
    return " ".join(text.split()[:n])


async def answer_question(user: SimUser, form: FormDefinition, qid: str, value: str) -> None:
    """Wait for question ``qid`` and answer it (a button label, typed text, or Skip for '')."""
    q = form.question(qid)
    await user.wait_for(_first_words(q.prompt))
    if q.kind == "text":
        if value:
            await user.send_text(value)
        else:
            await user.press("Skip")
    elif q.kind == "ward":
        await user.press(value)
    else:
        label = next(o.label for o in q.options if o.value == value)
        await user.press(label)


async def fill_tension(
    user: SimUser, form: FormDefinition, answers: dict[str, str], start_at: str | None = None
) -> None:
    """Answer every applicable question of one tension (from ``start_at`` on), then wait for
    the review screen."""
    questions = form.visible_questions(answers)
    if start_at is not None:
        questions = questions[[q.id for q in questions].index(start_at) :]
    for q in questions:
        await answer_question(user, form, q.id, answers.get(q.id, ""))
    await user.wait_for("Please check")


def tension(
    ward: str, category: str, description: str, level: str = "2", **more: str
) -> dict[str, str]:
    """A complete set of answers with sensible defaults."""
    answers = {
        "ward": ward,
        "category": category,
        "description": description,
        "location": "",
        "since": "",
        "basis": "experienced",
        "level": level,
        "media": "social",
        "impact": "",
        "already_reported": "no",
        "consent_contact": "yes",
        "consent_share": "no",
    }
    answers.update(more)
    return answers


async def until(predicate: Any, timeout: float = 60.0) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that (the timeout is
    generous: it only bounds a failure, and a busy machine may take seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise TimeoutError("the simulated Slack never showed what was expected")


async def team_post(slack: FakeSlack, channel: str, reference: str) -> SlackMessage:
    """Wait for the team's message about a report (``reference`` may be any text in it)."""
    return await until(
        lambda: next((m for m in slack.top_level(channel) if reference in m.text), None)
    )


async def officer_step(
    slack: FakeSlack,
    officer: SlackUser,
    channel: str,
    reference: str,
    action_id: str,
    values: dict[str, dict[str, Any]] | None = None,
) -> None:
    """An officer clicks a button on the team's message (and fills its modal, if any), then
    waits until the message shows the change."""
    post = await team_post(slack, channel, reference)
    # The officer's own modals only: other teams' officers open theirs at the same time.
    before, views = post.updates, len(slack.views_opened(officer.user_id))
    await officer.click(post, action_id)
    if values is not None:
        view = await until(lambda: slack.views_opened(officer.user_id)[views:])
        _, body = await officer.submit_view(view[0], values)
        if body is not None:
            raise AssertionError(f"the modal was refused: {body}")
    await until(lambda: post.updates > before)


def text_value(block: str, value: str) -> dict[str, dict[str, Any]]:
    """Modal state for a plain text input."""
    return {block: {block: {"type": "plain_text_input", "value": value}}}


def select_value(block: str, value: str) -> dict[str, dict[str, Any]]:
    """Modal state for a static select."""
    return {block: {block: {"type": "static_select", "selected_option": {"value": value}}}}


def tick_value(block: str) -> dict[str, dict[str, Any]]:
    """Modal state for a ticked checkbox."""
    return {block: {block: {"type": "checkboxes", "selected_options": [{"value": "yes"}]}}}
