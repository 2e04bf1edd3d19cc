"""The versioned tension form: its definition, loading and validation of answers.

The definition is a TOML file (``tension_return.toml`` ships with tensionbot). It is validated by
pydantic at load time so a broken form fails at start, naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Question ids the rest of the product relies on (routing, summaries, consent).
REQUIRED_QUESTION_IDS = frozenset(
    {"ward", "category", "description", "basis", "level", "consent_contact", "consent_share"}
)


class FormError(Exception):
    """The form definition is invalid."""


class Option(BaseModel):
    """One choice of a choice question."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")
    label: str = Field(min_length=1, max_length=120)


class ShowIf(BaseModel):
    """Ask a question only when an earlier answer is one of ``values``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    question: str
    values: list[str]


class Question(BaseModel):
    """One question of the form."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    kind: Literal["choice", "text", "ward"]
    label: str = Field(min_length=1, max_length=60)
    prompt: str = Field(min_length=1, max_length=500)
    options: list[Option] = []
    optional: bool = False
    min_length: int = Field(default=1, ge=1)
    max_length: int | None = Field(default=None, ge=1)
    show_if: ShowIf | None = None

    @model_validator(mode="after")
    def _options_match_kind(self) -> Question:
        if self.kind == "choice":
            if len(self.options) < 2:
                raise ValueError(f"question {self.id!r}: a choice needs at least two options")
            if len({o.value for o in self.options}) != len(self.options):
                raise ValueError(f"question {self.id!r}: option values must be unique")
        elif self.options:
            raise ValueError(f"question {self.id!r}: only choice questions have options")
        return self


class FormDefinition(BaseModel):
    """The whole form."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(min_length=1, max_length=40)
    title: str
    intro: str
    gate_prompt: str
    emergency_notice: str
    prevent_notice: str
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> FormDefinition:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        missing = REQUIRED_QUESTION_IDS - set(ids)
        if missing:
            raise ValueError(f"missing required questions: {', '.join(sorted(missing))}")
        seen: set[str] = set()
        for q in self.questions:
            if q.show_if is not None:
                if q.show_if.question not in seen:
                    raise ValueError(
                        f"question {q.id!r}: show_if refers to {q.show_if.question!r}, "
                        "which is not an earlier question"
                    )
            seen.add(q.id)
        level = self.question("level")
        if level.kind != "choice" or [o.value for o in level.options] != list("12345"):
            raise ValueError("question 'level' must be a choice with values 1..5")
        return self

    def question(self, qid: str) -> Question:
        """The question with this id (KeyError if none)."""
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def index(self, qid: str) -> int:
        """Position of a question in the form."""
        return [q.id for q in self.questions].index(qid)

    def visible(self, question: Question, answers: dict[str, str]) -> bool:
        """Whether the question applies given the answers so far."""
        cond = question.show_if
        return cond is None or answers.get(cond.question) in cond.values

    def visible_questions(self, answers: dict[str, str]) -> list[Question]:
        """The questions that apply given the answers so far."""
        return [q for q in self.questions if self.visible(q, answers)]

    def next_unanswered(self, answers: dict[str, str]) -> Question | None:
        """The first applicable question not yet answered (or skipped), else None."""
        for q in self.visible_questions(answers):
            if q.id not in answers:
                return q
        return None

    def prune(self, answers: dict[str, str]) -> dict[str, str]:
        """Drop answers to questions that no longer apply (e.g. after an edit)."""
        keep = {q.id for q in self.visible_questions(answers)}
        return {k: v for k, v in answers.items() if k in keep}

    def display_value(self, question: Question, value: str) -> str:
        """The human label of a stored answer."""
        if value == "":
            return "(skipped)"
        if question.kind == "choice":
            for o in question.options:
                if o.value == value:
                    return o.label
        return value

    def canonical_json(self) -> str:
        """A stable JSON form (hashed to recognise a changed file with the same version)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """Hash of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def parse_form(data: dict[str, Any], *, source: str) -> FormDefinition:
    """Validate a parsed definition; errors name the source."""
    try:
        return FormDefinition.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise FormError(f"{source}: invalid form definition: {problems}") from None


def load_form(path: Path) -> FormDefinition:
    """Load and validate a form definition file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FormError(f"{path}: cannot read form definition: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormError(f"{path}: not valid TOML: {exc}") from None
    return parse_form(data, source=str(path))
