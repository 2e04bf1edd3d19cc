"""``campaign status``: each person's outcome in one campaign (answered, nil, no reply, awaiting,
unreachable and why, reminders and follow-ups)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.common import audit
from bot.domain import Delivery, DeliveryState
from bot.ports import UnitOfWorkFactory
from bot.returns.periods import CampaignError


@dataclass(frozen=True)
class PersonStatus:
    """One line of ``campaign status``."""

    name: str
    role: str
    wards: list[str]
    linked: bool
    outcome: str  # responded | nil | no_reply | awaiting | queued | unreachable
    detail: str
    tensions: int
    reminders: int
    sent_at: str | None
    responded_at: str | None
    followed_up_at: str | None = None  # the uncertain form was sent again then


@dataclass(frozen=True)
class CampaignStatus:
    """The whole picture of one campaign."""

    key: str
    title: str
    kind: str
    period: str
    status: str
    form_version: str
    opens_at: str
    closes_at: str
    reminders_done: int
    reminders_planned: int
    counts: dict[str, int]
    people: list[PersonStatus]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


async def campaign_status(
    uow_factory: UnitOfWorkFactory, now: datetime, campaign_id: int, *, actor: str
) -> CampaignStatus:
    """Per-person outcome of one campaign (``campaign status``); audited."""
    async with uow_factory() as uow:
        campaign = await uow.campaigns.get(campaign_id)
        if campaign is None:
            raise CampaignError(f"no campaign {campaign_id}")
        form = await uow.forms.get(campaign.form_version_id)
        deliveries = await uow.deliveries.for_campaign(campaign_id)
        tensions = await uow.reports.count_by_campaign_person(campaign_id)
        people = {p.id: p for p in await uow.people.all()}
        rows: list[PersonStatus] = []
        counts: dict[str, int] = {}
        closed = campaign.status == "closed"
        for d in deliveries:
            p = people[d.person_id]
            outcome, detail = _outcome(d, closed)
            counts[outcome] = counts.get(outcome, 0) + 1
            if d.reminders:
                counts["reminded"] = counts.get("reminded", 0) + 1
            if d.followed_up_at:
                counts["followed_up"] = counts.get("followed_up", 0) + 1
            rows.append(
                PersonStatus(
                    name=p.name,
                    role=p.role,
                    wards=list(p.wards),
                    linked=p.linked,
                    outcome=outcome,
                    detail=detail,
                    tensions=tensions.get(d.person_id, 0),
                    reminders=d.reminders,
                    sent_at=d.sent_at.isoformat() if d.sent_at else None,
                    responded_at=d.responded_at.isoformat() if d.responded_at else None,
                    followed_up_at=d.followed_up_at.isoformat() if d.followed_up_at else None,
                )
            )
        await audit(uow, now, actor, "campaign.status", campaign.key)
        await uow.commit()
    rows.sort(key=lambda r: (r.outcome, r.name))
    return CampaignStatus(
        key=campaign.key,
        title=campaign.title,
        kind=campaign.kind,
        period=campaign.period,
        status=campaign.status,
        form_version=form.version if form else "?",
        opens_at=campaign.opens_at.isoformat(),
        closes_at=campaign.closes_at.isoformat(),
        reminders_done=campaign.reminders_done,
        reminders_planned=len(campaign.reminder_times),
        counts=counts,
        people=rows,
    )


def _outcome(d: Delivery, closed: bool) -> tuple[str, str]:
    # [email] fallback: where the form went instead of the person's own platform.
    instead = f"form sent by email instead ({d.fallback})" if d.fallback is not None else ""
    if d.status == DeliveryState.RESPONDED:
        return "responded", instead
    if d.status == DeliveryState.NIL:
        return "nil", instead
    if d.status == DeliveryState.UNREACHABLE:
        return "unreachable", d.detail
    if d.status == DeliveryState.QUEUED:
        return ("no_reply" if closed else "queued"), "form not yet sent"
    detail = (
        f"delivery uncertain ({d.detail or 'process stopped mid-send'})"
        if d.status == DeliveryState.UNCERTAIN
        else ""
    )
    if instead:
        detail = (detail + "; " if detail else "") + instead
    if d.followed_up_at is not None:
        detail = (detail + "; " if detail else "") + "followed up (form sent again)"
    return ("no_reply" if closed else "awaiting"), detail
