"""The form definition: the shipped file validates; broken definitions are refused clearly."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from bot.config import DEFAULT_FORM_PATH
from bot.forms import FormError, load_form, parse_form


def _raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_FORM_PATH.read_text())


def test_shipped_form_has_the_domain_questions() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    ids = [q.id for q in form.questions]
    for required in (
        "ward",
        "category",
        "description",
        "location",
        "since",
        "basis",
        "level",
        "media",
        "impact",
        "already_reported",
        "external_ref",
        "consent_contact",
        "consent_share",
    ):
        assert required in ids
    assert [o.value for o in form.question("basis").options] == [
        "experienced",
        "evidenced",
        "potential",
    ]
    assert "999" in form.emergency_notice and "101" in form.emergency_notice
    assert len(form.question("category").options) == 11


def test_conditional_question_and_pruning() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    answers = {"already_reported": "no"}
    assert "external_ref" not in [q.id for q in form.visible_questions(answers)]
    answers = {"already_reported": "police", "external_ref": "CR/123"}
    assert form.prune(answers) == answers
    assert form.prune({**answers, "already_reported": "no"}) == {"already_reported": "no"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["questions"].pop(0), "missing required questions: ward"),
        (lambda d: d["questions"].append(dict(d["questions"][0])), "unique"),
        (lambda d: d["questions"][1].update(options=[]), "at least two options"),
        (
            lambda d: d["questions"][1]["options"].append({"value": "race", "label": "x"}),
            "option values must be unique",
        ),
        (
            lambda d: d["questions"][10].update(show_if={"question": "nope", "values": ["x"]}),
            "not an earlier question",
        ),
        (lambda d: d.pop("emergency_notice"), "emergency_notice"),
    ],
)
def test_bad_definitions_are_refused(mutate: Any, message: str) -> None:
    data = copy.deepcopy(_raw())
    mutate(data)
    with pytest.raises(FormError, match=message):
        parse_form(data, source="form.toml")


def test_hash_is_stable_and_sensitive() -> None:
    a = parse_form(_raw(), source="a")
    b = parse_form(_raw(), source="b")
    assert a.sha256() == b.sha256()
    data = _raw()
    data["questions"][0]["prompt"] = "Which ward?"
    assert parse_form(data, source="c").sha256() != a.sha256()


async def test_changed_form_needs_a_new_version(db_url: str) -> None:
    from datetime import UTC, datetime

    from bot.clock import FakeClock
    from bot.forms.versions import FormService
    from tests.helpers import services_for

    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        data = _raw()
        data["questions"][0]["prompt"] = "Which ward, please?"
        changed = FormService(parse_form(data, source="changed"), clock)
        async with s.db.uow() as uow:
            with pytest.raises(FormError, match=r"version is still '2026\.1'"):
                await changed.current(uow)
        data["version"] = "2026.2"
        bumped = FormService(parse_form(data, source="bumped"), clock)
        async with s.db.uow() as uow:
            current = await bumped.current(uow)
            await uow.commit()
        # The old version stays readable for the campaigns that used it.
        async with s.db.uow() as uow:
            old = await s.forms.current(uow)
            assert old.id != current.id
            assert (await bumped.definition(uow, old.id)).question(
                "ward"
            ).prompt == "Which ward is this in?"


async def test_two_processes_starting_at_once_store_the_form_once(db_url: str) -> None:
    """Regression: the bot and a CLI command starting together both inserted the form version
    and one of them crashed on the unique constraint."""
    import asyncio
    from datetime import UTC, datetime

    from bot.clock import FakeClock
    from bot.forms.versions import FormService
    from storage.database import Database

    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    databases = [Database(db_url), Database(db_url)]

    async def start(db: Database) -> int:
        service = FormService(load_form(DEFAULT_FORM_PATH), clock)
        async with db.uow() as uow:
            current = await service.current(uow)
            await asyncio.sleep(0.05)  # hold the transaction open while the other one inserts
            await uow.commit()
        return current.id

    try:
        ids = await asyncio.gather(*(start(db) for db in databases))
        assert ids[0] == ids[1]
    finally:
        for db in databases:
            await db.dispose()
