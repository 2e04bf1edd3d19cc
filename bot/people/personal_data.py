"""Where one person's personal data is, and how a row's free text is redacted.

Shared by retention (:mod:`bot.people.retention`), erasure (:mod:`bot.people.erasure`) and subject
access (:mod:`bot.people.subject_access`): the person a request names, the addresses they were
reached at, and the redaction of one row's free text. No SQL here: see ``storage/privacy.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain import Person
from bot.messages import OutgoingMessage, Span
from bot.ports import FormerChat, UnitOfWork

REDACTED = "[redacted]"
#: Answers that are aggregate fields (also columns of ``reports``), kept by retention and erasure.
KEEP_KINDS = frozenset({"choice", "ward"})
#: Rows read per query when a run walks a whole table.
BATCH = 500


class PrivacyError(Exception):
    """A privacy request was refused (e.g. an unknown person)."""


#: What a redacted outbox payload becomes: still a valid message, so nothing that reads it breaks.
REDACTED_MESSAGE: dict[str, Any] = OutgoingMessage(lines=[[Span(text=REDACTED)]]).model_dump(
    mode="json"
)


async def find_person(uow: UnitOfWork, who: str) -> Person:
    """The person a request names: an email or ``person:<id>``."""
    person: Person | None
    if who.startswith("person:") and who[7:].isascii() and who[7:].isdigit():
        person = await uow.people.get(int(who[7:]))
    else:
        person = await uow.people.by_email(who.strip())
    if person is None or person.id is None:
        raise PrivacyError("no such person")
    return person


def addresses_of(person: Person) -> list[tuple[str, str]]:
    """Everywhere the person is or was reached, as (platform, id): chats and user ids."""
    out: list[tuple[str, str]] = []
    for a in person.addresses:
        out += [(a.platform, v) for v in dict.fromkeys((a.chat, a.address)) if v]
    out.append(("email", person.email))  # forms by email, with their personal web link
    return out


async def former_chats(uow: UnitOfWork, person: Person) -> list[FormerChat]:
    """The chats the person was reached at before a re-link (``invites --relink``) moved their
    account. Each move queued the "account moved" notice to the old chat, keyed by the
    invitation used (bot/people/service.py, ``relink:<invite id>``): that row is the record of
    the old chat and of when it stopped being theirs; their link there (the audit log's
    ``<platform>.link`` before the move) is when it started."""
    assert person.id is not None
    ref = f"person:{person.id}"
    invites = await uow.privacy.invites_of(person.id)
    notices = await uow.privacy.messages_keyed([f"relink:{i.id}" for i in invites])
    if not notices:
        return []
    links = [e for e in await uow.privacy.audit_about([ref]) if e.subject == ref]
    out: list[FormerChat] = []
    for notice in notices:
        until = notice.created_at
        linked = [e.at for e in links if e.action == f"{notice.channel}.link" and e.at < until]
        out.append(FormerChat(notice.channel, notice.recipient, max(linked, default=None), until))
    return out


def identifiers(person: Person, former: Sequence[FormerChat] = ()) -> list[str]:
    """What may name the person in free text (name, email, platform ids, ``former`` chats; 3
    characters or more)."""
    values = [person.name, person.email]
    values += [v for a in person.addresses for v in (a.address, a.chat) if v]
    values += [f.recipient for f in former]
    return [v for v in values if v and len(v) >= 3]


async def redaction(
    uow: UnitOfWork,
    kind: str,
    values: dict[str, Any],
    forms: dict[int, set[str]],
    *,
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """The changes that redact one row's free text (empty: nothing left to redact). With
    ``only``, text fields are redacted only when they contain one of those strings."""

    def hit(value: Any) -> bool:
        if not only:
            return True
        text = str(value).casefold()
        return any(s.casefold() in text for s in only if s)

    def text(name: str) -> dict[str, Any]:
        value = values[name]
        return {name: REDACTED} if value not in ("", REDACTED) and hit(value) else {}

    if kind == "reports":
        keep = await kept_answers(uow, values["form_version_id"], forms)
        answers: dict[str, str] = dict(values["answers"] or {})
        new = {
            k: (v if k in keep or v in ("", REDACTED) or not hit(v) else REDACTED)
            for k, v in answers.items()
        }
        return {"answers": new} if new != answers else {}
    if kind == "action_events":
        return text("text")
    if kind == "actions":
        return text("outcome_note")
    if kind in ("outbox", "outbox_all"):
        payload = values["payload"] or {}
        redacted = REDACTED_MESSAGE
        return {"payload": redacted} if payload != redacted and hit(payload) else {}
    if kind == "pact_priorities":
        return {**text("report_back"), **text("outcome")} | (text("title") if only else {})
    if kind == "pact_meetings":  # a venue typed freely, e.g. "<name>'s ward surgery"
        return text("venue") if only else {}
    if kind in ("conversations", "pact_recordings"):
        changes: dict[str, Any] = {}
        if values["draft"] and hit(values["draft"]):
            changes["draft"] = {}
        if kind == "conversations" and values["tensions"] and hit(values["tensions"]):
            changes["tensions"] = []
            changes["history"] = []
        if changes and values["status"] == "active":
            changes["status"] = "cancelled"
        return changes
    raise ValueError(f"unknown kind {kind!r}")


async def kept_answers(uow: UnitOfWork, form_id: int, forms: dict[int, set[str]]) -> set[str]:
    """A form version's answers that are aggregate fields (kept); cached in ``forms``."""
    if form_id not in forms:
        form = await uow.forms.get(form_id)
        questions = form.definition.get("questions", []) if form else []
        forms[form_id] = {
            str(q["id"]) for q in questions if str(q.get("kind", "text")) in KEEP_KINDS
        }
    return forms[form_id]
