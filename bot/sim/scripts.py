"""Scripted behaviour of simulated reporters (shared by the demo and the end-to-end tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.forms import FormDefinition

if TYPE_CHECKING:
    from bot.sim.fake_telegram import SimUser


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
