"""Submitting tensions and nil returns: one path for every platform.

The Telegram conversation and the Slack form both end here, so a report made either way is the
same record, with the same reference scheme, audit entry, routing and delivery status.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import texts
from bot.actions.service import ActionService
from bot.clock import Clock
from bot.common import Waker, audit, clean_text, enqueue, local_time
from bot.config import Config
from bot.delivery.seen import SeenRequests, request_key
from bot.domain import ANSWERED, Campaign, DeliveryState, Person, Report
from bot.forms import FormDefinition
from bot.forms.versions import FormService
from bot.people.identity import NotInvited, Who, identify
from bot.ports import MessageLinks, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# How long a submitted form's key is remembered: far longer than any repeat of it can arrive
# (a signed Slack request is refused after five minutes).
SUBMISSION_LIFETIME = timedelta(hours=1)


async def create_reports(
    uow: UnitOfWork,
    *,
    person_id: int,
    source: str,
    campaign_id: int | None,
    form_version_id: int,
    tensions: Sequence[dict[str, str]],
    now: datetime,
    tz: ZoneInfo,
    actions: ActionService,
    urgent_answers_open: bool = False,
) -> list[Report]:
    """Store each tension as a report with its reference, route it, and mark the return answered.

    A report answering a return carries that return's period (December's return answered on 30
    November gives ``TR-2026-12-…``); an urgent report carries the month it arrives in."""
    campaign = await uow.campaigns.get(campaign_id) if campaign_id is not None else None
    period = campaign.period if campaign is not None else f"{now.astimezone(tz):%Y-%m}"
    prefix = f"TR-{period}"
    made: list[Report] = []
    for answers in tensions:
        number = await uow.reports.next_number(prefix)
        report = Report(
            reference=f"{prefix}-{number:04d}",
            person_id=person_id,
            source=source,
            campaign_id=campaign_id,
            ward=answers["ward"],
            category=answers["category"],
            level=int(answers["level"]),
            basis=answers["basis"],
            answers=dict(answers),
            consent_contact=answers.get("consent_contact") == "yes",
            consent_share=answers.get("consent_share") == "yes",
            form_version_id=form_version_id,
            created_at=now,
            period=period,
        )
        await uow.reports.add(report)
        made.append(report)
        # Never the free text: the audit log says who submitted what kind of report.
        await audit(
            uow,
            now,
            f"person:{person_id}",
            "report.submit",
            report.reference,
            source=source,
            ward=report.ward,
            category=report.category,
        )
    await actions.create_for_reports(uow, made, now)
    if campaign_id is not None:
        delivery = await uow.deliveries.get_for(campaign_id, person_id)
        if delivery is not None:
            delivery.move_to(DeliveryState.RESPONDED)
            delivery.responded_at = now
    elif urgent_answers_open:
        # An urgent report while a return is open is taking part in it ([schedule]
        # urgent_report_answers_return): nobody is chased for a return they have just answered.
        for campaign in await uow.campaigns.open():
            assert campaign.id is not None
            delivery = await uow.deliveries.get_for(campaign.id, person_id)
            if delivery is None or delivery.status in ANSWERED or now >= campaign.closes_at:
                continue
            delivery.move_to(DeliveryState.RESPONDED)
            delivery.responded_at = now
            await audit(uow, now, f"person:{person_id}", "return.answered_by_urgent", campaign.key)
    return made


async def record_nil(
    uow: UnitOfWork, *, person_id: int, campaign_id: int, now: datetime
) -> str | None:
    """A nil return. Returns why it was refused, or None when recorded (or already nil)."""
    delivery = await uow.deliveries.get_for(campaign_id, person_id)
    if delivery is None:
        return "That return was not sent to you."
    if delivery.status == DeliveryState.RESPONDED:
        return "You have already sent reports for this return."
    if delivery.status != DeliveryState.NIL:
        delivery.move_to(DeliveryState.NIL)
        delivery.responded_at = now
        campaign = await uow.campaigns.get(campaign_id)
        await audit(
            uow,
            now,
            f"person:{person_id}",
            "return.nil",
            campaign.key if campaign else str(campaign_id),
        )
    return None


def validate_answers(
    form: FormDefinition,
    raw: dict[str, str],
    wards: Sequence[str],
    max_text: int,
    links: MessageLinks | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Check a whole form's answers at once (the Slack modal). Returns (answers, errors by
    question id); the answers keep only questions that apply. A message link answering
    "Where exactly?" is checked by the platform's ``links`` (when it has them) and kept as a
    link."""
    answers: dict[str, str] = {}
    errors: dict[str, str] = {}
    for q in form.questions:
        value = clean_text(raw.get(q.id, "") or "")
        if not form.visible(q, answers):
            continue
        if not value:
            if q.optional:
                answers[q.id] = ""
            else:
                errors[q.id] = "Please answer this."
            continue
        if q.kind == "choice" and value not in {o.value for o in q.options}:
            errors[q.id] = "Please choose one of the options."
        elif q.kind == "ward" and value not in wards:
            errors[q.id] = "Please choose a ward."
        elif q.kind == "text":
            limit = min(max_text, q.max_length or 10**6)
            if len(value) > limit:
                errors[q.id] = f"Please keep this under {limit:,} characters."
            elif len(value) < q.min_length:
                errors[q.id] = f"Please give at least {q.min_length} characters."
            elif q.id == "location" and links is not None:
                link, why = links.check(value)
                if why is not None:
                    errors[q.id] = why
                value = link or value
        answers[q.id] = value
    return answers, errors


@dataclass(frozen=True)
class FormRequest:
    """What a platform needs to show the whole form at once (e.g. a Slack modal)."""

    campaign_id: int  # 0 for an ad hoc report
    title: str
    form: FormDefinition
    wards: list[str]


@dataclass(frozen=True)
class Home:
    """A reporter's overview (the Slack App Home)."""

    name: str
    open_returns: list[tuple[int, str, DeliveryState]]  # (campaign id, title, state)
    reports: list[tuple[str, str, str]]  # (reference, summary, state)


class ReportingRefused(Exception):
    """The person may not do this; the message says why, politely."""


class ReportingService:
    """Reporting from a platform that shows the whole form at once (Slack)."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        actions: ActionService,
        wake: Waker,
        seen: SeenRequests,
    ) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock
        self.forms, self.actions, self.wake = forms, actions, wake
        self.seen = seen
        self.tz = config.partnership.tz

    async def _person(self, uow: UnitOfWork, who: Who) -> Person:
        try:
            return await identify(uow, who, self.config.partnership)
        except NotInvited as refused:
            raise ReportingRefused(str(refused)) from None

    async def _open_campaign(
        self, uow: UnitOfWork, person: Person, campaign_id: int, now: datetime
    ) -> Campaign:
        campaign = await uow.campaigns.get(campaign_id)
        delivery = await uow.deliveries.get_for(campaign_id, person.id or 0) if campaign else None
        if campaign is None or delivery is None:
            raise ReportingRefused("That return was not sent to you.")
        if campaign.status != "open" or now >= campaign.closes_at:
            raise ReportingRefused(
                f"The {campaign.title} closed on {local_time(campaign.closes_at, self.tz)}. "
                "You can still report a tension from the app's Home tab."
            )
        if delivery.status == DeliveryState.RESPONDED:
            raise ReportingRefused("You have already sent reports for this return. Thank you.")
        return campaign

    async def form_request(self, who: Who, campaign_id: int) -> FormRequest:
        """The form to show (for a campaign, or ad hoc when ``campaign_id`` is 0)."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            if campaign_id:
                campaign = await self._open_campaign(uow, person, campaign_id, now)
                form = await self.forms.definition(uow, campaign.form_version_id)
                return FormRequest(campaign_id, campaign.title, form, self.config.partnership.wards)
            current = await self.forms.current(uow)
            return FormRequest(
                0, "Report a tension", current.definition, self.config.partnership.wards
            )

    async def submit(
        self,
        who: Who,
        campaign_id: int,
        raw: dict[str, str],
        *,
        once: tuple[str, ...] = (),
        links: MessageLinks | None = None,
    ) -> dict[str, str]:
        """Submit the whole form; returns errors by question id (empty when submitted).

        ``once`` identifies this submission (a modal's view id and hash): the same submission
        arriving again, from any process, is answered as submitted and makes no second report.
        It is recorded with the report, so a submission refused with errors can be corrected
        and sent again."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            assert person.id is not None
            campaign = (
                await self._open_campaign(uow, person, campaign_id, now) if campaign_id else None
            )
            form_id = campaign.form_version_id if campaign else (await self.forms.current(uow)).id
            form = await self.forms.definition(uow, form_id)
            answers, errors = validate_answers(
                form,
                raw,
                self.config.partnership.wards,
                self.config.form.max_text_length,
                links,
            )
            if errors:
                return errors
            if once and not await self.seen.record(
                uow, request_key("submission", *once), SUBMISSION_LIFETIME
            ):
                log.info("ignored a repeated submission of a form")
                return {}
            made = await create_reports(
                uow,
                person_id=person.id,
                source="monthly" if campaign else "adhoc",
                campaign_id=campaign.id if campaign else None,
                form_version_id=form_id,
                tensions=[answers],
                now=now,
                tz=self.tz,
                actions=self.actions,
                urgent_answers_open=self.config.schedule.urgent_report_answers_return,
            )
            await enqueue(
                uow,
                channel=who.platform,
                recipient=who.address,
                message=texts.submitted(made, form),
                key=f"{who.platform}-submit:{made[0].reference}",
                now=now,
            )
            await uow.commit()
        self.wake()
        return {}

    async def nil(self, who: Who, campaign_id: int) -> str:
        """A one-click nil return from Slack."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            assert person.id is not None
            campaign = await self._open_campaign(uow, person, campaign_id, now)
            refused = await record_nil(uow, person_id=person.id, campaign_id=campaign_id, now=now)
            await uow.commit()
        return refused or (
            f"Thank you: your nil return for the {campaign.title} is recorded. "
            "If something comes up, report it from the app's Home tab."
        )

    async def home(self, who: Who) -> Home:
        """The person's open returns and reports."""
        async with self.uow_factory() as uow:
            person = await self._person(uow, who)
            assert person.id is not None
            returns = []
            for campaign in await uow.campaigns.open():
                assert campaign.id is not None
                delivery = await uow.deliveries.get_for(campaign.id, person.id)
                if delivery is not None:
                    returns.append((campaign.id, campaign.title, delivery.status))
            form = (await self.forms.current(uow)).definition
            category = form.question("category")
            reports = [
                (
                    r.reference,
                    f"{r.ward} · {form.display_value(category, r.category)}",
                    await self.actions.states_for(uow, r),
                )
                for r in await uow.reports.for_person(person.id, limit=10)
            ]
            await audit(
                uow,
                self.clock.now(),
                f"person:{person.id}",
                "status.view",
                f"person:{person.id}",
                via="slack-home",
            )
            await uow.commit()
        return Home(person.name, returns, reports)
