"""The summary of a month, a quarter or a year: tensions by category, ward, level and basis
against the previous period and the same period last year; hate crime by ward; pockets of
concern. Every number comes from a SQL aggregation (the figure queries of the unit of work);
:meth:`SummaryService.build` only regroups them into a :class:`~bot.summaries.model.Summary`
(the pure pieces in bot/summaries/assembly.py). A summary asked for in chat, or posted when a
return closes, is a neutral message with its charts attached, drawn by the :class:`Charts`
adapter the composition root gives (bot/ports.py); the platforms render it."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.common import audit, enqueue
from bot.config import TEAMS_PLATFORM, Config
from bot.forms.versions import FormService
from bot.messages import OutgoingMessage
from bot.people.identity import Who, find, refusal_text
from bot.ports import UnitOfWorkFactory
from bot.summaries.assembly import (
    actions_by_team,
    pockets_of_concern,
    return_counts,
    team_categories,
)
from bot.summaries.chat import SUMMARY_ROLES, SummaryRefused, headline, parse_filters
from bot.summaries.model import Breakdown, Summary
from bot.summaries.periods import parse_period, period_of, shift
from bot.summaries.ports import Charts
from bot.summaries.stats import BASELINE_MONTHS, SUSTAINED_MONTHS

if TYPE_CHECKING:
    from bot.pact.service import PactService

log = logging.getLogger(__name__)

GROUPS = ("category", "ward", "level", "basis")


class SummaryService:
    """Builds summaries (and records who asked for what)."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService,
        pact: PactService,
        *,
        charts: Charts,
    ) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock
        self.forms = forms
        self.pact = pact
        self.charts = charts

    async def ask(self, platform: str, user_id: str, text: str) -> OutgoingMessage:
        """A summary asked for in chat (``/summary`` on Telegram, ``/tensions`` on Slack): the
        headline with the charts attached, for the platform to render. SummaryRefused for a
        stranger, a role that may not see summaries, or filters not understood."""
        async with self.uow_factory() as uow:
            person = await find(uow, Who(platform, str(user_id)))
        if person is None or not person.active:
            raise SummaryRefused(self._stranger())  # nothing about strangers is stored
        return await answer(self, who=f"person:{person.id}", role=person.role, text=text)

    def with_charts(self, summary: Summary, message: OutgoingMessage) -> OutgoingMessage:
        """``message`` with the summary's charts attached (drawn by the charts adapter)."""
        attachments = self.charts.for_summary(summary)
        if not attachments:
            return message
        return message.model_copy(update={"attachments": attachments})

    def _stranger(self) -> str:
        log.info("refused a summary request from an unknown user")
        return refusal_text(self.config.partnership)

    async def build(
        self,
        month: str,
        *,
        actor: str,
        ward: str | None = None,
        category: str | None = None,
        names: bool = False,
    ) -> Summary:
        """The summary for ``month``: a month, a quarter (``2026-Q4``) or a year (``2026``),
        optionally of one ward and/or category. Each figure is for the whole period, against the
        previous period and the same period a year before."""
        period = parse_period(month)
        month = period.label
        if ward is not None:
            known = {w.casefold(): w for w in self.config.partnership.wards}
            if ward.casefold() not in known:
                raise ValueError(f"ward {ward!r} is not in partnership.wards")
            ward = known[ward.casefold()]
        k = len(period.months)
        before = period_of(shift(period.months[0], -12), 12)  # the 12 months before the period
        trailing = list(before.months)
        # The trend: the same period over the last year (13 months, 5 quarters, 2 years); its
        # first point is the same period last year, its last but one the previous period.
        trend_periods = [period.shift(-j) for j in range(12 // k, -1, -1)]
        previous, last_year = trend_periods[-2].label, trend_periods[0].label
        # Pockets compare the period with the 12 months before it (a month's sustained rises,
        # the last three months with the twelve before them).
        extra = SUSTAINED_MONTHS - 1 if k == 1 else 0
        history = [shift(period.months[0], -j) for j in range(BASELINE_MONTHS + extra, 0, -1)]
        bucket = {m: p.label for p in trend_periods for m in p.months}
        all_months = sorted(set(history) | set(bucket))
        async with self.uow_factory() as uow:
            f = uow.figures
            # Two reads of the trigger-kept count tables give every tension figure; the rest
            # below only regroups them (by period: a quarter's months add up to the quarter).
            monthly = await f.tension_cube(all_months)
            cube: Counter[tuple[str, str, str]] = Counter()
            for (m, w, c), n in monthly.items():
                if m in bucket:
                    cube[(bucket[m], w, c)] += n
            levels: Counter[tuple[str, str, str]] = Counter()
            wanted = [*trend_periods[-2].months, *period.months, *trend_periods[0].months]
            for (m, lv, basis), n in (
                await f.tension_levels(sorted(set(wanted)), ward, category)
            ).items():
                levels[(bucket[m], lv, basis)] += n
            by_group: dict[str, Counter[tuple[str, str]]] = {g: Counter() for g in GROUPS}
            tensions = Counter[tuple[str, str]]()
            by_month = Counter[tuple[str, str]]()
            matrix: dict[tuple[str, str], int] = {}
            # One pass over the cube for every figure regrouped from it.
            for (period_, ward_, category_), n in cube.items():
                tensions[(ward_, period_)] += n
                if ward is None or ward_ == ward:
                    by_month[(period_, category_)] += n  # the trend is the chosen ward's
                    if category is None or category_ == category:
                        by_group["ward"][(period_, ward_)] += n
                        by_group["category"][(period_, category_)] += n
                        if period_ == month:
                            matrix[(ward_, category_)] = n
            for (period_, lv, basis), n in levels.items():
                by_group["level"][(period_, lv)] += n
                by_group["basis"][(period_, basis)] += n
            totals = Counter[str]()
            for (period_, _), n in by_group["ward"].items():
                totals[period_] += n
            summary = Summary(
                month,
                ward,
                category,
                total=totals[month],
                previous_total=totals[previous],
                last_year_total=totals[last_year],
                threshold=self.config.summaries.suppress_below,
                false_discovery_rate=self.config.summaries.false_discovery_rate,
                team_categories=team_categories(self.config),
            )
            for by in GROUPS:
                counter = by_group[by]
                now_, prev_, year_ = (
                    {k: n for (p, k), n in counter.items() if p == m and n}
                    for m in (month, previous, last_year)
                )
                keys = sorted(
                    set(now_) | set(prev_) | set(year_), key=lambda k: (-now_.get(k, 0), k)
                )
                summary.breakdowns.append(
                    Breakdown(
                        by, [(k, now_.get(k, 0), prev_.get(k, 0), year_.get(k, 0)) for k in keys]
                    )
                )
            # The police figures once, by strand; the ward totals are their sums. A month with
            # no rows was not imported: missing, never 0.
            by_strand = await f.hate_crime_by_strand(all_months)
            imported = {m for m, _, _ in by_strand}
            crimes = Counter[tuple[str, str]]()
            for (m, w, _), count in by_strand.items():
                crimes[(w, m)] += count
                if k > 1 and m in period.months:
                    crimes[(w, month)] += count  # the period's total, under its label
            summary.police_imported = all(m in imported for m in period.months)
            summary.police_months = sum(1 for m in trailing if m in imported)
            summary.unit = period.unit
            form = (await self.forms.current(uow)).definition
            summary.labels = {o.value: o.label for o in form.question("category").options}
            summary.pockets = pockets_of_concern(
                self.config,
                list(period.months),
                history,
                monthly,
                by_strand,
                imported,
                ward,
                category,
            )
            wards = [ward] if ward else list(self.config.partnership.wards)
            if summary.police_imported:
                months_in = [m for m in trailing if m in imported]
                per = max(1, len(months_in))
                summary.hate_crime = sorted(
                    (
                        (
                            w,
                            crimes.get((w, month), 0),
                            sum(crimes.get((w, m), 0) for m in months_in) / per,
                        )
                        for w in wards
                        if crimes.get((w, month), 0)
                        or any(crimes.get((w, m), 0) for m in months_in)
                    ),
                    key=lambda x: (-x[1], x[0]),
                )
            returns_role: Counter[tuple[str, str]] = Counter()
            returns_ward: Counter[tuple[str, str]] = Counter()
            for m in period.months:  # a person asked in each month of a quarter counts each time
                returns_role.update(await f.returns_by(m, "role"))
                returns_ward.update(await f.returns_by(m, "ward"))
            summary.returns_by_role = return_counts(dict(returns_role))
            rows_ = summary.returns_by_role
            if rows_:
                rows_.append(
                    (
                        "all",
                        sum(r[1] for r in rows_),
                        sum(r[2] for r in rows_),
                        sum(r[3] for r in rows_),
                        sum(r[4] for r in rows_),
                    )
                )
            summary.returns_by_ward = [
                r for r in return_counts(dict(returns_ward)) if ward is None or r[0] == ward
            ]
            if ward is not None:
                summary.unfiltered.append("return rate by role (the whole partnership)")
            if category is not None:
                summary.unfiltered += [
                    "return rate (the monthly return is not by category)",
                    "hate crime (police figures are by strand, not category)",
                ]
            if ward is not None or category is not None:
                summary.unfiltered.append("PACT meetings (the whole partnership)")
            if names and k == 1:
                summary.outstanding = await f.outstanding(month)
            times = [row for m in period.months for row in await f.action_times(m)]
            summary.actions = actions_by_team(
                self.config, times, period.months[-1], self.clock.now(), ward, category
            )
            now_s: dict[str, int] = {}
            past_s: dict[str, int] = {}
            for (m, w, strand), count in by_strand.items():
                if (ward is None or w == ward) and (m in period.months or m in trailing):
                    target = now_s if m in period.months else past_s
                    target[strand] = target.get(strand, 0) + count
            if summary.police_imported:
                per = max(1, summary.police_months)
                summary.hate_crime_by_strand = sorted(
                    (
                        (s, now_s.get(s, 0), past_s.get(s, 0) / per)
                        for s in set(now_s) | set(past_s)
                    ),
                    key=lambda x: (-x[1], x[0]),
                )
            summary.months = [p.label for p in trend_periods]
            for category_ in sorted({c for p_, c in by_month if p_ in summary.months}):
                if category is None or category_ == category:
                    summary.trend[category_] = [
                        by_month.get((m, category_), 0) for m in summary.months
                    ]
            summary.matrix = matrix
            summary.tension_by_ward = {w: tensions.get((w, month), 0) for w in wards}
            await audit(
                uow,
                self.clock.now(),
                actor,
                "summary.view",
                month,
                ward=ward,
                category=category,
                names=names,
            )
            await uow.commit()
        last = period.months[-1]
        summary.pact = await self.pact.insight(
            shift(last, -11), last, change_date=self.pact.config.pact.review_date
        )
        return summary


async def summary_for(
    service: SummaryService,
    uow_factory: UnitOfWorkFactory,
    *,
    who: str,
    person_role: str | None,
    text: str,
    categories: dict[str, str],
) -> Summary:
    """An on-demand summary after the role check (refusals are logged and audited)."""
    now = service.clock.now()
    if person_role not in SUMMARY_ROLES:
        log.warning("refused a summary request from %s (role %s)", who, person_role)
        async with uow_factory() as uow:
            # Never the words typed after the command: they could name someone, and the audit
            # log is append-only, beyond erasure. Only whether there were any.
            await audit(uow, now, who, "summary.refused", filtered=bool(text.strip()))
            await uow.commit()
        raise SummaryRefused("Summaries are for the Prevent and Cohesion Officer and admins.")
    default = shift(f"{now.astimezone(service.config.partnership.tz):%Y-%m}", 0)
    try:
        request = parse_filters(
            text,
            default_month=default,
            wards=list(service.config.partnership.wards),
            categories=categories,
        )
    except ValueError as exc:
        raise SummaryRefused(str(exc)) from None
    return await service.build(
        request.month,
        actor=who,
        ward=request.ward,
        category=request.category,
        names=person_role == "admin",
    )


async def answer(
    service: SummaryService, *, who: str, role: str | None, text: str
) -> OutgoingMessage:
    """Role check, filters, summary, headline and charts for a chat command."""
    async with service.uow_factory() as uow:
        form = (await service.forms.current(uow)).definition if service.forms else None
    categories = {o.value: o.label for o in form.question("category").options} if form else {}
    summary = await summary_for(
        service, service.uow_factory, who=who, person_role=role, text=text, categories=categories
    )
    return service.with_charts(summary, headline(summary))


async def post_scheduled(service: SummaryService) -> list[str]:
    """After a monthly return closes, queue its summary (and charts) for the configured
    channels, once: the outbox key is per campaign and channel; when that month ends a quarter,
    the quarter's summary too, for ``summaries.quarterly_channels`` (the Community Cohesion
    Forum and the Contest Board meet quarterly). Returns the periods posted."""
    config = service.config
    if not config.summaries.channels and not config.summaries.quarterly_channels:
        return []
    now = service.clock.now()
    async with service.uow_factory() as uow:
        campaigns = [
            c
            for c in await uow.campaigns.closed_since(now - timedelta(days=7))
            if c.kind == "monthly"
        ]
        pending: list[tuple[str, list[str]]] = []
        for campaign in campaigns:
            if config.summaries.channels and (
                await uow.state.get(f"summary-posted:{campaign.key}") is None
            ):
                pending.append((campaign.period, list(config.summaries.channels)))
            if config.summaries.quarterly_channels and campaign.period.endswith(
                ("-03", "-06", "-09", "-12")
            ):
                quarter = period_of(shift(campaign.period, -2), 3)
                if await uow.state.get(f"summary-posted:{quarter.label}") is None:
                    pending.append((quarter.label, list(config.summaries.quarterly_channels)))
    keys = {c.period: c.key for c in campaigns}
    posted = []
    for label, channels in pending:
        summary = await service.build(label, actor="scheduler")
        message = service.with_charts(summary, headline(summary))
        key = keys.get(label, label)  # a month by its campaign, a quarter by its label
        async with service.uow_factory() as uow:
            for channel in channels:
                await enqueue(
                    uow,
                    channel=TEAMS_PLATFORM,
                    recipient=channel,
                    message=message,
                    key=f"summary:{key}:{channel}",
                    now=now,
                    purpose="summary",
                    priority=1,
                )
            await uow.state.set(f"summary-posted:{key}", now.isoformat())
            await uow.commit()
        posted.append(label)
    return posted
