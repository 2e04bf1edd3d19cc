"""Subject access: everything held about one person, as JSON (UK GDPR).

The export itself is audited (ids and counts only). No SQL here: see ``storage/privacy.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.common import audit
from bot.messages import OutgoingMessage
from bot.people.personal_data import REDACTED, addresses_of, find_person, former_chats
from bot.ports import UnitOfWork


def _message_text(payload: dict[str, Any]) -> str:
    try:
        return OutgoingMessage.model_validate(payload).plain_text()
    except ValueError:
        return REDACTED


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export(
    uow: UnitOfWork, who: str, *, actor: str, now: datetime, partnership: str
) -> dict[str, Any]:
    """Everything held about one person (an email or ``person:<id>``), JSON-serialisable, and
    the export audited, in ``uow``; the caller commits."""
    person = await find_person(uow, who)
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
        "partnership": partnership,
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
        "pact_meetings_attended": [meeting(m) for m in await uow.privacy.meetings_attended(pid)],
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
            for m in await uow.privacy.messages_to(
                addresses_of(person), await former_chats(uow, person)
            )
        ],
        "audit": [
            {
                "at": _iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "details": e.details,
            }
            for e in await uow.privacy.audit_about([ref, *(a.address for a in person.addresses)])
        ],
    }
    await audit(uow, now, actor, "person.export", ref, reports=len(reports))
    return data
