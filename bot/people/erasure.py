"""Erasure: one person anonymised, and everything about them removed or redacted (UK GDPR).

Aggregates (report fields, delivery statuses, PACT counts) are kept; the audit log is kept (it
holds ids only). The service (:meth:`bot.people.privacy.PrivacyService.erase`) commits and then
purges the old values from the database files. No SQL here: see ``storage/privacy.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.common import audit
from bot.domain import Person
from bot.people.personal_data import (
    BATCH,
    addresses_of,
    find_person,
    former_chats,
    identifiers,
    redaction,
)
from bot.ports import UnitOfWork

ERASED_DOMAIN = "erased.invalid"


@dataclass
class ErasurePlan:
    """What an erasure removes or anonymises (counts), for the confirmation prompt."""

    person_id: int
    reports: int = 0
    conversations: int = 0
    pact_recordings: int = 0
    invites: int = 0
    pact_meetings_chaired: int = 0
    pact_meetings_attended: int = 0
    messages: int = 0
    deliveries: int = 0

    def lines(self) -> list[str]:
        """Human-readable lines (counts only)."""
        return [
            f"person:{self.person_id}: name, email, chat ids and addresses, organisation "
            "and wards are anonymised",
            f"{self.reports} report(s): free-text answers redacted (ward, category, level, "
            "basis and period kept for the statistics), with their action updates",
            f"{self.conversations} conversation(s) and {self.pact_recordings} PACT recording(s)"
            ": cancelled and emptied",
            f"{self.invites} invitation(s), {self.pact_meetings_attended} PACT attendance "
            f"record(s) and {self.messages} message(s) addressed to them: deleted",
            f"{self.pact_meetings_chaired} PACT meeting(s) chaired: kept, with the chair "
            "anonymised",
            f"{self.deliveries} return delivery record(s): kept (return rates), anonymised",
            "the audit log is kept: it holds only ids, never names or report text",
        ]


async def plan_for(uow: UnitOfWork, person: Person) -> ErasurePlan:
    """What erasing ``person`` removes or anonymises (counts only; nothing changes)."""
    assert person.id is not None
    return ErasurePlan(
        person_id=person.id,
        reports=len(await uow.privacy.reports_of(person.id)),
        conversations=len(await uow.privacy.conversations_of(person.id)),
        pact_recordings=len(await uow.privacy.recordings_of(person.id)),
        invites=len(await uow.privacy.invites_of(person.id)),
        pact_meetings_chaired=len(await uow.pact.for_chair(person.id)),
        pact_meetings_attended=len(await uow.privacy.meetings_attended(person.id)),
        messages=len(
            await uow.privacy.messages_to(addresses_of(person), await former_chats(uow, person))
        ),
        deliveries=len(await uow.deliveries.for_person(person.id)),
    )


async def erase(uow: UnitOfWork, who: str, *, actor: str, now: datetime) -> ErasurePlan:
    """Anonymise a person (an email or ``person:<id>``) and remove or redact everything about
    them, and audit it, in ``uow``; the caller commits."""
    person = await find_person(uow, who)
    plan = await plan_for(uow, person)
    pid = plan.person_id
    ref = f"person:{pid}"
    former = await former_chats(uow, person)  # before remove_links deletes what records them
    idents = identifiers(person, former)
    addresses = addresses_of(person)
    forms: dict[int, set[str]] = {}
    # Their reports: every free-text answer; their actions' updates and notes.
    report_ids = set()
    for report in await uow.privacy.reports_of(pid):
        assert report.id is not None
        report_ids.add(report.id)
        values = {"answers": report.answers, "form_version_id": report.form_version_id}
        changes = await redaction(uow, "reports", values, forms)
        if changes:
            report.answers = changes["answers"]
    action_ids = {a.id for rid in sorted(report_ids) for a in await uow.actions.for_report(rid)}
    for conv in await uow.privacy.conversations_of(pid):
        conv.draft, conv.tensions, conv.history = {}, [], []
        if conv.status == "active":
            conv.status, conv.updated_at = "cancelled", now
    for rec in await uow.privacy.recordings_of(pid):
        rec.draft = {}
        if rec.status == "active":
            rec.status, rec.updated_at = "cancelled", now
    removed = await uow.privacy.remove_links(pid, addresses, former)
    # Platform ids recorded as actors become the anonymous person reference.
    await uow.privacy.replace_actor([*(a.address for a in person.addresses), person.email], ref)
    # Free text anywhere that is about them or names them.
    for kind in ("action_events", "actions", "outbox_all"):
        after = 0
        while True:
            rows = await uow.privacy.text_rows(kind, after_id=after, limit=BATCH)
            for row_id, values in rows:
                ours = (
                    (kind == "action_events" and values["action_id"] in action_ids)
                    or (kind == "actions" and values["report_id"] in report_ids)
                    or (kind == "outbox_all" and values["action_id"] in action_ids)
                )
                changes = await redaction(uow, kind, values, forms, only=() if ours else idents)
                if changes:
                    await uow.privacy.set_fields(kind, row_id, changes)
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
    for kind in ("reports", "pact_priorities", "pact_meetings", "conversations", "pact_recordings"):
        after = 0
        while True:
            rows = await uow.privacy.text_rows(kind, after_id=after, limit=BATCH)
            for row_id, values in rows:
                if kind == "reports" and row_id in report_ids:
                    continue
                changes = await redaction(uow, kind, values, forms, only=idents)
                if changes:
                    await uow.privacy.set_fields(kind, row_id, changes)
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
    person.name = f"Erased person {pid}"
    person.email = f"erased-{pid}@{ERASED_DOMAIN}"
    person.organisation = ""
    person.wards = []
    person.addresses.clear()  # their rows in `addresses` are deleted
    person.linked_at = None
    person.blocked_at = None
    person.active = False
    person.updated_at = now
    await audit(
        uow,
        now,
        actor,
        "person.erase",
        ref,
        reports=plan.reports,
        conversations=plan.conversations,
        **removed,
    )
    return plan
