"""Data protection: retention, erasure and subject-access export (UK GDPR).

- :meth:`PrivacyService.tick` (a scheduler job) redacts free text older than
  ``privacy.retention_months`` and anonymises people marked inactive longer than
  ``privacy.personal_data_months``. Aggregate fields (ward, category, level, basis, period,
  counts) are never touched, so summaries stay the same.
- :meth:`PrivacyService.erase` anonymises one person and removes or redacts everything about them.
- :meth:`PrivacyService.export` gathers everything held about one person (subject access).

Every run is audited with ids and counts only. No SQL here: see ``storage/privacy.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.common import audit
from bot.config import Config
from bot.domain import Person
from bot.messages import OutgoingMessage, Span
from bot.ports import Purger, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
ERASED_DOMAIN = "erased.invalid"
#: Answers that are aggregate fields (also columns of ``reports``), kept by retention and erasure.
KEEP_KINDS = frozenset({"choice", "ward"})
_BATCH = 500
_STATE = "privacy.retention."  # + kind: the cut-off the last run reached (ISO)
#: Set while a purge left something for the next one; the next tick purges again.
_PURGE_PENDING = "privacy.purge_pending"
RETENTION_KINDS = (
    "reports",
    "action_events",
    "actions",
    "outbox",
    "pact_priorities",
    "conversations",
    "pact_recordings",
)


class PrivacyError(Exception):
    """A privacy request was refused (e.g. an unknown person)."""


@dataclass
class RetentionResult:
    """What one retention run redacted, by kind, and how many people it anonymised."""

    cutoff: datetime
    redacted: dict[str, int] = field(default_factory=dict)
    anonymised: int = 0

    @property
    def total(self) -> int:
        """Rows redacted, all kinds together."""
        return sum(self.redacted.values())


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
            f"person:{self.person_id}: name, email, Telegram and Slack ids, organisation and "
            "wards are anonymised",
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


#: What a redacted outbox payload becomes: still a valid message, so nothing that reads it breaks.
_REDACTED_MESSAGE: dict[str, Any] = OutgoingMessage(lines=[[Span(text=REDACTED)]]).model_dump(
    mode="json"
)


def _message_text(payload: dict[str, Any]) -> str:
    try:
        return OutgoingMessage.model_validate(payload).plain_text()
    except ValueError:
        return REDACTED


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _months_before(when: datetime, months: int) -> datetime:
    index = when.year * 12 + when.month - 1 - months
    year, month = divmod(index, 12)
    day = min(when.day, 28)
    return when.replace(year=year, month=month + 1, day=day)


class PrivacyService:
    """Retention, erasure and subject access."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        purger: Purger,
    ) -> None:
        self.config = config
        self.uow_factory = uow_factory
        self.clock = clock
        # Without a purge, erased text may survive in the database files (old row versions, the
        # write-ahead log) until the database reuses the space.
        self.purger = purger

    async def _purge(self) -> None:
        """Purge, and remember a purge that could not finish so that the next tick retries it
        (without that, old values would wait for the next erasure or redaction)."""
        complete = await self.purger.purge()
        async with self.uow_factory() as uow:
            pending = await uow.state.get(_PURGE_PENDING)
            if complete and pending:
                await uow.state.set(_PURGE_PENDING, "")
            elif not complete and not pending:
                await uow.state.set(_PURGE_PENDING, "1")
            await uow.commit()

    async def _purge_pending(self) -> bool:
        async with self.uow_factory() as uow:
            return bool(await uow.state.get(_PURGE_PENDING))

    # ----------------------------------------------------------------- retention

    def cutoff(self, now: datetime | None = None) -> datetime:
        """Free text older than this is redacted."""
        return _months_before(now or self.clock.now(), self.config.privacy.retention_months)

    async def tick(self, *, full: bool = False) -> RetentionResult:
        """Redact free text older than the retention period, then anonymise people inactive
        for longer than ``personal_data_months``. Idempotent: each kind continues from the
        cut-off the last run reached (``full``: look at every old row again)."""
        now = self.clock.now()
        result = RetentionResult(self.cutoff(now))
        async with self.uow_factory() as uow:
            forms: dict[int, set[str]] = {}
            for kind in RETENTION_KINDS:
                key = _STATE + kind
                mark = None if full else await uow.state.get(key)
                since = datetime.fromisoformat(mark) if mark else None
                if since is not None and since >= result.cutoff:
                    result.redacted[kind] = 0
                    continue
                result.redacted[kind] = await self._redact_kind(
                    uow, kind, result.cutoff, since, forms
                )
                await uow.state.set(key, result.cutoff.isoformat())
            await audit(
                uow,
                now,
                "retention",
                "privacy.retention",
                result.cutoff.date().isoformat(),
                full=full,
                **result.redacted,
            )
            await uow.commit()
        months = self.config.privacy.personal_data_months
        if months > 0:
            async with self.uow_factory() as uow:
                stale = await uow.privacy.inactive_people(_months_before(now, months))
            for person_id in stale:
                await self._erase(f"person:{person_id}", actor="retention")
                result.anonymised += 1
        if result.total or result.anonymised or await self._purge_pending():
            await self._purge()
        if result.total or result.anonymised:
            log.info(
                "retention: %d row(s) redacted, %d person(s) anonymised",
                result.total,
                result.anonymised,
            )
        return result

    async def _redact_kind(
        self,
        uow: UnitOfWork,
        kind: str,
        before: datetime,
        since: datetime | None,
        forms: dict[int, set[str]],
    ) -> int:
        count, after = 0, 0
        while True:
            rows = await uow.privacy.text_rows(
                kind, before=before, since=since, after_id=after, limit=_BATCH
            )
            for row_id, values in rows:
                changes = await self._redaction(uow, kind, values, forms)
                if changes:
                    await uow.privacy.set_fields(kind, row_id, changes)
                    count += 1
            if len(rows) < _BATCH:
                return count
            after = rows[-1][0]

    async def _redaction(
        self,
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
            keep = await self._kept_answers(uow, values["form_version_id"], forms)
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
            redacted = _REDACTED_MESSAGE
            return {"payload": redacted} if payload != redacted and hit(payload) else {}
        if kind == "pact_priorities":
            return {**text("report_back"), **text("outcome")} | (text("title") if only else {})
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

    async def _kept_answers(
        self, uow: UnitOfWork, form_id: int, forms: dict[int, set[str]]
    ) -> set[str]:
        if form_id not in forms:
            form = await uow.forms.get(form_id)
            questions = form.definition.get("questions", []) if form else []
            forms[form_id] = {
                str(q["id"]) for q in questions if str(q.get("kind", "text")) in KEEP_KINDS
            }
        return forms[form_id]

    # ----------------------------------------------------------------- erasure

    async def _person(self, uow: UnitOfWork, who: str) -> Person:
        person: Person | None
        if who.startswith("person:") and who[7:].isdigit():
            person = await uow.people.get(int(who[7:]))
        else:
            person = await uow.people.by_email(who.strip())
        if person is None or person.id is None:
            raise PrivacyError("no such person")
        return person

    @staticmethod
    def _addresses(person: Person) -> list[tuple[str, str]]:
        """Everywhere the person is or was reached, as (platform, id): chats and user ids."""
        out: list[tuple[str, str]] = []
        for a in person.addresses:
            out += [(a.platform, v) for v in dict.fromkeys((a.chat, a.address)) if v]
        out.append(("email", person.email))  # forms by email, with their personal web link
        return out

    @staticmethod
    def _identifiers(person: Person) -> list[str]:
        values = [person.name, person.email]
        values += [v for a in person.addresses for v in (a.address, a.chat) if v]
        return [v for v in values if v and len(v) >= 3]

    async def plan(self, who: str) -> ErasurePlan:
        """What :meth:`erase` would remove or anonymise (counts only; nothing changes)."""
        async with self.uow_factory() as uow:
            return await self._plan(uow, await self._person(uow, who))

    async def _plan(self, uow: UnitOfWork, person: Person) -> ErasurePlan:
        assert person.id is not None
        return ErasurePlan(
            person_id=person.id,
            reports=len(await uow.privacy.reports_of(person.id)),
            conversations=len(await uow.privacy.conversations_of(person.id)),
            pact_recordings=len(await uow.privacy.recordings_of(person.id)),
            invites=len(await uow.privacy.invites_of(person.id)),
            pact_meetings_chaired=len(await uow.pact.for_chair(person.id)),
            pact_meetings_attended=len(await uow.privacy.meetings_attended(person.id)),
            messages=len(await uow.privacy.messages_to(self._addresses(person))),
            deliveries=len(await uow.deliveries.for_person(person.id)),
        )

    async def erase(self, who: str, *, actor: str) -> ErasurePlan:
        """Anonymise a person (an email or ``person:<id>``) and remove or redact everything
        about them, in one transaction, then purge the old values from the database files.
        Aggregates (report fields, delivery statuses, PACT counts) are kept; the audit log is
        kept (it holds ids only)."""
        plan = await self._erase(who, actor=actor)
        await self._purge()
        return plan

    async def _erase(self, who: str, *, actor: str) -> ErasurePlan:
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            plan = await self._plan(uow, person)
            pid = plan.person_id
            ref = f"person:{pid}"
            idents = self._identifiers(person)
            addresses = self._addresses(person)
            forms: dict[int, set[str]] = {}
            # Their reports: every free-text answer; their actions' updates and notes.
            report_ids = set()
            for report in await uow.privacy.reports_of(pid):
                assert report.id is not None
                report_ids.add(report.id)
                values = {"answers": report.answers, "form_version_id": report.form_version_id}
                changes = await self._redaction(uow, "reports", values, forms)
                if changes:
                    report.answers = changes["answers"]
            action_ids = {
                a.id for rid in sorted(report_ids) for a in await uow.actions.for_report(rid)
            }
            for conv in await uow.privacy.conversations_of(pid):
                conv.draft, conv.tensions, conv.history = {}, [], []
                if conv.status == "active":
                    conv.status, conv.updated_at = "cancelled", now
            for rec in await uow.privacy.recordings_of(pid):
                rec.draft = {}
                if rec.status == "active":
                    rec.status, rec.updated_at = "cancelled", now
            removed = await uow.privacy.remove_links(pid, addresses)
            # Platform ids recorded as actors become the anonymous person reference.
            await uow.privacy.replace_actor(
                [*(a.address for a in person.addresses), person.email], ref
            )
            # Free text anywhere that is about them or names them.
            for kind in ("action_events", "actions", "outbox_all"):
                after = 0
                while True:
                    rows = await uow.privacy.text_rows(kind, after_id=after, limit=_BATCH)
                    for row_id, values in rows:
                        ours = (
                            (kind == "action_events" and values["action_id"] in action_ids)
                            or (kind == "actions" and values["report_id"] in report_ids)
                            or (kind == "outbox_all" and values["action_id"] in action_ids)
                        )
                        changes = await self._redaction(
                            uow, kind, values, forms, only=() if ours else idents
                        )
                        if changes:
                            await uow.privacy.set_fields(kind, row_id, changes)
                    if len(rows) < _BATCH:
                        break
                    after = rows[-1][0]
            for kind in ("reports", "pact_priorities", "conversations", "pact_recordings"):
                after = 0
                while True:
                    rows = await uow.privacy.text_rows(kind, after_id=after, limit=_BATCH)
                    for row_id, values in rows:
                        if kind == "reports" and row_id in report_ids:
                            continue
                        changes = await self._redaction(uow, kind, values, forms, only=idents)
                        if changes:
                            await uow.privacy.set_fields(kind, row_id, changes)
                    if len(rows) < _BATCH:
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
            await uow.commit()
        log.info("erased person %d", pid)
        return plan

    # ----------------------------------------------------------------- subject access

    async def export(self, who: str, *, actor: str) -> dict[str, Any]:
        """Everything held about one person (an email or ``person:<id>``), JSON-serialisable.
        The export itself is audited."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            assert person.id is not None
            pid = person.id
            ref = f"person:{pid}"
            reports = []
            for r in await uow.privacy.reports_of(pid):
                assert r.id is not None
                actions = []
                for a in await uow.actions.for_report(r.id):
                    assert a.id is not None
                    actions.append(
                        {
                            "team": a.team_key,
                            "state": a.state,
                            "outcome": a.outcome,
                            "outcome_note": a.outcome_note,
                            "created_at": _iso(a.created_at),
                            "closed_at": _iso(a.closed_at),
                            "timeline": [
                                {"at": _iso(e.at), "kind": e.kind, "text": e.text}
                                for e in await uow.actions.events(a.id)
                                if e.for_reporter
                            ],
                        }
                    )
                reports.append(
                    {
                        "reference": r.reference,
                        "created_at": _iso(r.created_at),
                        "period": r.period,
                        "source": r.source,
                        "ward": r.ward,
                        "category": r.category,
                        "level": r.level,
                        "basis": r.basis,
                        "status": r.status,
                        "consent_contact": r.consent_contact,
                        "consent_share": r.consent_share,
                        "answers": dict(r.answers),
                        "actions": actions,
                    }
                )
            deliveries = []
            for d in await uow.deliveries.for_person(pid):
                campaign = await uow.campaigns.get(d.campaign_id)
                deliveries.append(
                    {
                        "return": campaign.key if campaign else d.campaign_id,
                        "status": d.status,
                        "detail": d.detail,
                        "sent_at": _iso(d.sent_at),
                        "reminders": d.reminders,
                        "responded_at": _iso(d.responded_at),
                    }
                )

            def meeting(m: Any) -> dict[str, Any]:
                return {
                    "id": m.id,
                    "neighbourhood": m.neighbourhood,
                    "starts_at": _iso(m.starts_at),
                    "venue": m.venue,
                    "format": m.format,
                    "status": m.status,
                    "public_attendees": m.public_attendees,
                    "new_attendees": m.new_attendees,
                }

            data: dict[str, Any] = {
                "exported_at": _iso(now),
                "partnership": self.config.partnership.name,
                "profile": {
                    "id": pid,
                    "name": person.name,
                    "email": person.email,
                    "role": person.role,
                    "organisation": person.organisation,
                    "wards": list(person.wards),
                    "addresses": [
                        {
                            "platform": a.platform,
                            "address": a.address,
                            "chat": a.chat,
                            "linked_at": _iso(a.linked_at),
                        }
                        for a in person.addresses
                    ],
                    "linked_at": _iso(person.linked_at),
                    "blocked_at": _iso(person.blocked_at),
                    "active": person.active,
                    "created_at": _iso(person.created_at),
                    "updated_at": _iso(person.updated_at),
                },
                "invitations": [
                    {
                        "created_at": _iso(i.created_at),
                        "expires_at": _iso(i.expires_at),
                        "used_at": _iso(i.used_at),
                        "revoked_at": _iso(i.revoked_at),
                    }
                    for i in await uow.privacy.invites_of(pid)
                ],
                "deliveries": deliveries,
                "reports": reports,
                "conversations": [
                    {
                        "flow": c.flow,
                        "status": c.status,
                        "started_at": _iso(c.started_at),
                        "updated_at": _iso(c.updated_at),
                        "draft": dict(c.draft),
                        "tensions": [dict(t) for t in c.tensions],
                    }
                    for c in await uow.privacy.conversations_of(pid)
                ],
                "pact_meetings_chaired": [meeting(m) for m in await uow.pact.for_chair(pid)],
                "pact_meetings_attended": [
                    meeting(m) for m in await uow.privacy.meetings_attended(pid)
                ],
                "pact_recordings": [
                    {
                        "meeting_id": rec.meeting_id,
                        "status": rec.status,
                        "started_at": _iso(rec.started_at),
                        "draft": dict(rec.draft),
                    }
                    for rec in await uow.privacy.recordings_of(pid)
                ],
                "messages_to_them": [
                    {
                        "at": _iso(m.created_at),
                        "channel": m.channel,
                        "purpose": m.purpose,
                        "status": m.status,
                        "text": _message_text(m.payload),
                    }
                    for m in await uow.privacy.messages_to(self._addresses(person))
                ],
                "audit": [
                    {
                        "at": _iso(e.at),
                        "actor": e.actor,
                        "action": e.action,
                        "subject": e.subject,
                        "details": e.details,
                    }
                    for e in await uow.privacy.audit_about(
                        [ref, *(a.address for a in person.addresses)]
                    )
                ],
            }
            await audit(uow, now, actor, "person.export", ref, reports=len(reports))
            await uow.commit()
        return data
