"""The summary of a month, a quarter or a year: tensions by category, ward, level and basis
against the previous period and the same period last year; hate crime by ward; pockets of concern. Every number comes from a SQL
aggregation; this module only composes them. (Charts, Slack/Telegram delivery and the return-rate
tables build on this in later work.)"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.common import audit, enqueue
from bot.config import Config
from bot.messages import Attachment, MessageBuilder, OutgoingMessage, bold
from bot.people.identity import Who, find, refusal_text
from bot.ports import UnitOfWorkFactory
from bot.returns.deadlines import working_hours
from bot.returns.form_versions import FormService
from bot.summaries.disclosure import MARK, Released, release, return_rates, shown
from bot.summaries.stats import (
    BASELINE_MONTHS,
    SUSTAINED_MONTHS,
    Pocket,
    Series,
    find_pockets,
    km_median,
)

if TYPE_CHECKING:
    from bot.pact.rules import PactInsight
    from bot.pact.service import PactService

log = logging.getLogger(__name__)

GROUPS = ("category", "ward", "level", "basis")


def shift(month: str, months: int) -> str:
    """``2026-12`` shifted by ``months`` (may be negative)."""
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + (mon - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def validate_month(month: str) -> str:
    """Check ``YYYY-MM``; ValueError naming the value otherwise."""
    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValueError(f"period {month!r} is not of the form YYYY-MM") from None
    return month


@dataclass(frozen=True)
class Period:
    """A summary's period: a month (``2026-12``), a quarter (``2026-Q4``) or a year (``2026``)."""

    label: str
    months: tuple[str, ...]  # its calendar months, in order

    @property
    def unit(self) -> str:
        """ "month", "quarter" or "year": how the summary words it."""
        return {1: "month", 3: "quarter", 12: "year"}[len(self.months)]

    def shift(self, periods: int) -> Period:
        """The period ``periods`` periods later (earlier when negative)."""
        return period_of(shift(self.months[0], periods * len(self.months)), len(self.months))


def period_of(first_month: str, length: int) -> Period:
    """The period of ``length`` months (1, 3 or 12) starting at ``first_month``."""
    year, mon = (int(x) for x in first_month.split("-"))
    months = tuple(shift(first_month, k) for k in range(length))
    if length == 12:
        return Period(f"{year:04d}", months)
    if length == 3:
        return Period(f"{year:04d}-Q{(mon - 1) // 3 + 1}", months)
    return Period(first_month, months)


def parse_period(text: str) -> Period:
    """``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``; ValueError naming the value otherwise."""
    value = text.strip().upper()
    if len(value) == 4 and value.isdigit():
        return period_of(f"{value}-01", 12)
    if len(value) == 7 and value[4:6] == "-Q" and value[:4].isdigit() and value[6] in "1234":
        return period_of(f"{value[:4]}-{3 * int(value[6]) - 2:02d}", 3)
    try:
        validate_month(value)
    except ValueError:
        raise ValueError(
            f"period {text!r} is not of the form YYYY-MM, YYYY-Qn (a quarter) or YYYY (a year)"
        ) from None
    return period_of(value, 1)


@dataclass(frozen=True)
class Breakdown:
    """Counts for one grouping: this month, the previous month, the same month last year."""

    by: str
    rows: list[tuple[str, int, int, int]]  # (key, now, previous, last year)


@dataclass
class Summary:
    """Aggregates for one month (no free text, no names)."""

    month: str
    ward: str | None
    category: str | None
    total: int
    previous_total: int
    last_year_total: int
    breakdowns: list[Breakdown] = field(default_factory=list)
    hate_crime: list[tuple[str, int, float]] = field(default_factory=list)  # ward, count, baseline
    pockets: list[Pocket] = field(default_factory=list)
    # (role or ward, responded, nil, no reply, unreachable)
    returns_by_role: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    returns_by_ward: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    outstanding: list[str] = field(default_factory=list)  # names: admins' view only
    # (team, actions, open, overdue, escalated, median hours to acknowledge, to close)
    actions: list[tuple[str, int, int, int, int, float | None, float | None]] = field(
        default_factory=list
    )
    # (strand, this month, 12-month mean)
    hate_crime_by_strand: list[tuple[str, int, float]] = field(default_factory=list)
    months: list[str] = field(default_factory=list)  # the trailing 12 months and this one
    trend: dict[str, list[int]] = field(default_factory=dict)  # category -> count per month
    matrix: dict[tuple[str, str], int] = field(default_factory=dict)  # (ward, category) -> n
    tension_by_ward: dict[str, int] = field(default_factory=dict)
    pact: PactInsight | None = None  # PACT meetings over the 12 months to this one
    threshold: int = 3  # summaries.suppress_below: counts below it are withheld
    false_discovery_rate: float = 0.05  # summaries.false_discovery_rate: pockets' q
    police_imported: bool = True  # police figures imported for the month
    police_months: int = 12  # of the trailing 12 months, how many have police figures
    unfiltered: list[str] = field(default_factory=list)  # sections --ward/--category miss
    unit: str = "month"  # "month" | "quarter" | "year": the period's length
    labels: dict[str, str] = field(default_factory=dict)  # category key -> the form's label

    def label(self, key: str) -> str:
        """A category (or strand) as people read it: the form's label, else the key in words."""
        if key in self.labels:
            return self.labels[key]
        words = key.replace("_", " ")
        return words[:1].upper() + words[1:]

    def row_label(self, by: str, key: str) -> str:
        """A breakdown's row as people read it: categories by their label, others as they are."""
        return self.label(key) if by == "category" else key

    # team -> (the categories the routing rules may send it, None: any; whether only some of
    # their wards or levels), for disclosure control: a team's count is a sum of those counts
    team_categories: dict[str, tuple[frozenset[str] | None, bool]] = field(default_factory=dict)

    def released(self, suppressed: bool = True, threshold: int | None = None) -> Released:
        """Every figure as it may be published (bot/summaries/disclosure.py): small counts and anything
        that would reveal them withheld, unless ``suppressed`` is False."""
        return release(
            self,
            threshold=self.threshold if threshold is None else threshold,
            suppressed=suppressed,
        )

    @property
    def empty(self) -> bool:
        """Nothing reported and no hate-crime figures for the month."""
        return self.total == 0 and not any(n for _, n, _ in self.hate_crime)

    def markdown(self, threshold: int | None = None, suppressed: bool = True) -> str:
        """The summary as Markdown, from :meth:`released`: withheld figures shown as
        :data:`bot.summaries.disclosure.MARK` when ``suppressed``."""
        r = self.released(suppressed, threshold)
        n = shown
        scope = " · ".join(x for x in (self.ward, self.category) if x)
        out = [f"# Community tension summary, {self.month}" + (f" ({scope})" if scope else "")]
        if self.unfiltered:
            out.append(f"\n_{_unfiltered(self)}_")
        if self.empty:
            out.append("\nNo tension reports and no hate-crime figures for this period.")
            if not self.police_imported:
                out.append(f"\n{_police_missing(self.month, self.unit)}")
            return "\n".join(out) + "\n" + self._pact_markdown()
        out.append(f"\nTension reports: **{n(r.total)}** ({_comparison(self.unit, r)})")
        for by, rows in r.breakdowns:
            out.append(
                f"\n## By {by}\n\n| {by} | this {self.unit} | previous | last year |\n"
                "|---|---:|---:|---:|"
            )
            out += [
                f"| {self.row_label(by, k)} | {n(a)} | {n(p)} | {n(y)} |" for k, a, p, y in rows
            ]
        if r.returns_by_role:
            head = (
                " | responded | nil return | no reply | unreachable | return rate | "
                "return rate, unreachable counted |\n|---|---:|---:|---:|---:|---:|---:|"
            )
            out.append(
                "\n## Return rate\n\nThe return rate is the people who responded or sent a nil "
                "return, out of the people the form reached (responded, nil return, no reply); "
                "the second rate counts the people it could not reach too."
            )
            out.append("\n| role" + head)
            out += [_returns_row(row) for row in r.returns_by_role]
            out.append(
                "\nBy ward: a person who covers two wards is counted in each ward's row, so the "
                "ward rows add up to more than the total."
            )
            out.append("\n| ward" + head)
            out += [_returns_row(row) for row in r.returns_by_ward]
        if self.outstanding:
            out.append("\nStill outstanding (admins' view): " + ", ".join(self.outstanding))
        if r.actions:
            out.append(
                "\n## Actions by team\n\nOpen and overdue as at the end of the period. Times are "
                "working hours (working days, bank holidays excluded), medians estimated with "
                "actions still waiting counted for as long as they have waited (Kaplan-Meier); "
                "'–' when fewer than half have been acknowledged or closed yet.\n\n"
                "| team | actions | open | overdue | escalated | "
                "median working hours to acknowledge | median working hours to close |\n"
                "|---|---:|---:|---:|---:|---:|---:|"
            )
            out += [
                f"| {t} | {n(a)} | {n(o)} | {n(od)} | {n(e)} | {_h(ack)} | {_h(cl)} |"
                for t, a, o, od, e, ack, cl in r.actions
            ]
        if r.hate_crime_by_strand:
            out.append(
                "\nHate crime by strand: "
                + ", ".join(
                    f"{self.label(s)} {n(c)} (12-month mean {_mean(m)})"
                    for s, c, m in r.hate_crime_by_strand
                )
            )
        if r.hate_crime:
            out.append(
                "\n## Hate crime by ward (police figures)\n\n| ward | this " + self.unit + " | "
                "12-month mean |\n|---|---:|---:|"
            )
            out += [f"| {w} | {n(c)} | {_mean(m)} |" for w, c, m in r.hate_crime]
        out.append("\n## Pockets of concern\n")
        if not self.police_imported:
            out.append(f"{_police_missing(self.month, self.unit)}\n")
        if r.pockets:
            out += [f"- {pocket_sentence(*x[:3], self.unit)}" for x in r.pockets]
        else:
            out.append(f"None: nothing is clearly above its usual level this {self.unit}.")
        out.append(
            "\n_A rise is called a pocket of concern only when it is very unlikely to be chance, "
            "allowing for how much these figures usually vary from month to month and for how "
            "many wards, categories and strands were looked at; months with no figures are left "
            "out, not counted as none. The figures behind each one are in the exports; the "
            "method is in docs/STATISTICS.md._"
        )
        if suppressed:
            out.append(
                f"\n_{MARK}: withheld, a count below {r.threshold} or a figure that would reveal "
                "one (statistical disclosure control: see docs/DATA_PROTECTION.md)._"
            )
        return "\n".join(out) + "\n" + self._pact_markdown()

    def _pact_markdown(self) -> str:
        from bot.pact.rules import markdown

        return "" if self.pact is None else "\n" + markdown(self.pact)


def _unfiltered(summary: Summary) -> str:
    scope = " and ".join(x for x in (summary.ward, summary.category) if x)
    return f"Not limited to {scope}: " + "; ".join(summary.unfiltered) + "."


@dataclass(frozen=True)
class _Action:
    level: int
    created: datetime
    acknowledged: datetime | None
    closed: datetime | None
    due: datetime | None


def _actions(
    config: Config,
    rows: list[
        tuple[str, str, int, str, str, datetime, datetime | None, datetime | None, datetime | None]
    ],
    month: str,
    now: datetime,
    ward: str | None,
    category: str | None,
) -> list[tuple[str, int, int, int, int, float | None, float | None]]:
    """Actions by team on the month's reports (of the chosen ward and category): open and
    overdue as at the end of the period (or now, if it has not ended); Kaplan-Meier medians of
    working hours to acknowledge and to close, actions still waiting censored at now."""
    year, mon = (int(x) for x in shift(month, 1).split("-"))
    end = min(now, datetime(year, mon, 1, tzinfo=config.partnership.tz))
    teams: dict[str, list[_Action]] = {}
    for team, _, level, w, c, created, acked, closed, due in rows:
        if (ward is None or w == ward) and (category is None or c == category):
            teams.setdefault(team, []).append(_Action(level, created, acked, closed, due))

    def median(actions: list[_Action], acknowledged: bool) -> float | None:
        done: list[float] = []
        waiting: list[float] = []
        for a in actions:
            at = a.acknowledged if acknowledged else a.closed
            hours = working_hours(config, a.created, at if at is not None else now)
            (done if at is not None else waiting).append(hours)
        return km_median(done, waiting)

    def after_end(at: datetime | None) -> bool:
        return at is None or at > end

    return [
        (
            team,
            len(actions),
            sum(1 for a in actions if after_end(a.closed)),
            sum(
                1
                for a in actions
                if after_end(a.acknowledged)
                and after_end(a.closed)
                and a.due is not None
                and a.due < end
            ),
            sum(1 for a in actions if a.level > 0),
            median(actions, True),
            median(actions, False),
        )
        for team, actions in sorted(teams.items())
    ]


def _police_missing(month: str, unit: str = "month") -> str:
    return (
        f"Police hate-crime figures for {month} have not been imported yet, so hate crimes "
        f"are not compared with the usual this {unit}."
    )


def _comparison(unit: str, r: Released) -> str:
    if unit == "year":  # the previous year is the same period last year
        return f"previous year {shown(r.previous_total)}"
    return f"previous {unit} {shown(r.previous_total)}, same {unit} last year {shown(r.last_year_total)}"


def _name(p: Pocket) -> str:
    """The unit as a person reads it: a ward, a category, a hate-crime strand."""
    label = p.ward.replace("_", " ")
    if p.by == "category":
        return f"{label[:1].upper()}{label[1:]} (category)"
    if p.by == "strand":
        return f"{label[:1].upper()}{label[1:]} hate crime"
    return label


def _usual(baseline: float, unit: str = "month") -> str:
    if baseline < 0.05:
        return "where there are usually none"
    if baseline < 0.75:
        return f"against fewer than one a {unit} usually"
    return f"against about {round(baseline)} a {unit} usually"


def pocket_sentence(
    p: Pocket, observed: int | None, baseline: float | None, unit: str = "month"
) -> str:
    """One pocket of concern in plain English (no p-values): from the protected figures.
    ``baseline`` is per month; a quarter's or year's usual level is that many months' worth."""
    if baseline is not None:
        baseline *= {"month": 1, "quarter": 3, "year": 12}[unit]
    what = "hate crimes" if p.source == "hate crimes" else "tension reports"
    chance = "very unlikely" if baseline is not None and p.p_value < 0.001 else "unlikely"
    if p.kind == "sustained":
        usual = "" if baseline is None else f" ({_usual(baseline).removeprefix('against ')})"
        return (
            f"{_name(p)}: {what} above the usual level{usual} for three months running; this "
            f"is {chance} to be chance."
        )
    if observed is None:
        return (
            f"{_name(p)}: more {what} than usual this {unit} (the figures are withheld to "
            "protect small numbers); this is unlikely to be chance."
        )
    usual = (
        "well above the usual level (withheld to protect small numbers)"
        if baseline is None
        else _usual(baseline, unit)
    )
    return f"{_name(p)}: {observed} {what} this {unit} {usual}; this is {chance} to be chance."


def _returns_row(row: tuple[str, int | None, int | None, int | None, int | None]) -> str:
    key, *counts = row
    rates = return_rates(*counts)
    return f"| {key} | " + " | ".join([*map(shown, counts), *map(_percent, rates)]) + " |"


def _percent(rate: float | None) -> str:
    return MARK if rate is None else f"{100 * rate:.0f}%"


def _h(hours: float | None) -> str:
    return "–" if hours is None else f"{hours:.1f}"


def _mean(mean: float | None) -> str:
    return MARK if mean is None else f"{mean:.1f}"


def _team_categories(config: Config) -> dict[str, tuple[frozenset[str] | None, bool]]:
    """What each team may receive under the routing rules: its categories (None: any) and
    whether only some wards or levels of them."""
    cats: dict[str, frozenset[str] | None] = {}
    narrow: dict[str, bool] = {}
    for rule in config.routing.rules:
        for team in rule.teams:
            before = cats.get(team, frozenset())
            if "*" in rule.categories or before is None:
                cats[team] = None
            else:
                cats[team] = before | frozenset(rule.categories)
            some = "*" not in rule.wards or rule.min_level > 1
            narrow[team] = narrow.get(team, False) or some
    if config.routing.default_team is not None:
        # The default team gets what no rule matched: linked to everything, cell by cell.
        cats[config.routing.default_team] = None
        narrow[config.routing.default_team] = True
    return {team: (c, narrow[team]) for team, c in cats.items()}


def _returns(counts: dict[tuple[str, str], int]) -> list[tuple[str, int, int, int, int]]:
    def get(key: str, *statuses: str) -> int:
        return sum(counts.get((key, s), 0) for s in statuses)

    return [
        (
            k,
            get(k, "responded"),
            get(k, "nil"),
            get(k, "queued", "sent", "uncertain"),
            get(k, "unreachable"),
        )
        for k in sorted({k for k, _ in counts})
    ]


def _pockets(
    config: Config,
    period: list[str],
    history: list[str],
    cube: dict[tuple[str, str, str], int],
    by_strand: dict[tuple[str, str, str], int],
    imported: set[str],
    ward: str | None,
    category: str | None,
) -> list[Pocket]:
    """Every unit of the partnership tested (the family for the false discovery rate is the
    whole period's), then those the filters ask about kept. Tension months before the first
    report on record are missing; police months not imported are missing. A quarter or a year
    is tested as a whole against the 12 months before it."""
    months = [*history, *period]
    first = min((p for p, _, _ in cube), default=period[0])
    tension: Counter[tuple[str, str, str]] = Counter()
    for (p, w, c), n in cube.items():
        tension[("ward", w, p)] += n
        tension[("category", c, p)] += n
    police: Counter[tuple[str, str, str]] = Counter()
    for (p, w, s), n in by_strand.items():
        police[("ward", w, p)] += n
        police[("strand", s, p)] += n
    wards = list(config.partnership.wards)
    series: list[Series] = []
    for source, table, observed in (
        ("tension reports", tension, {m for m in months if m >= first}),
        ("hate crimes", police, imported),
    ):
        units = {("ward", w) for w in wards} | {(by, u) for by, u, _ in table if by != "ward"}
        for by, unit in sorted(units):
            counts = [table.get((by, unit, m), 0) if m in observed else None for m in months]
            series.append(Series(source, by, unit, counts))
    found = find_pockets(series, q=config.summaries.false_discovery_rate, window=len(period))
    return [
        p
        for p in found
        if (ward is None or (p.by == "ward" and p.ward == ward))
        and (category is None or (p.by == "category" and p.ward == category))
    ]


class SummaryService:
    """Builds summaries (and records who asked for what)."""

    def __init__(
        self,
        config: Config,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        forms: FormService | None = None,
        pact: PactService | None = None,
    ) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock
        self.forms = forms
        self.pact = pact

    async def for_telegram(self, user_id: int, text: str) -> SummaryAnswer:
        """``/summary`` on Telegram."""
        async with self.uow_factory() as uow:
            person = await find(uow, Who("telegram", str(user_id)))
        if person is None:
            raise SummaryRefused(self._stranger())  # nothing about strangers is stored
        return await answer(self, who=f"person:{person.id}", role=person.role, text=text)

    async def for_slack(self, slack_user_id: str, text: str) -> SummaryAnswer:
        """``/tensions`` on Slack."""
        async with self.uow_factory() as uow:
            person = await find(uow, Who("slack", slack_user_id))
        if person is None:
            raise SummaryRefused(self._stranger())
        return await answer(self, who=f"person:{person.id}", role=person.role, text=text)

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
            chosen: dict[tuple[str, str, str], int] = {
                key: n
                for key, n in cube.items()
                if (ward is None or key[1] == ward) and (category is None or key[2] == category)
            }
            by_group: dict[str, Counter[tuple[str, str]]] = {g: Counter() for g in GROUPS}
            for (period_, ward_, category_), n in chosen.items():
                by_group["ward"][(period_, ward_)] += n
                by_group["category"][(period_, category_)] += n
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
                team_categories=_team_categories(self.config),
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
            tensions = Counter[tuple[str, str]]()
            by_month = Counter[tuple[str, str]]()
            for (period_, ward_, category_), n in cube.items():
                tensions[(ward_, period_)] += n
                if ward is None or ward_ == ward:  # the trend is the chosen ward's
                    by_month[(period_, category_)] += n
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
            if self.forms is not None:
                form = (await self.forms.current(uow)).definition
                summary.labels = {o.value: o.label for o in form.question("category").options}
            summary.pockets = _pockets(
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
            summary.returns_by_role = _returns(dict(returns_role))
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
                r for r in _returns(dict(returns_ward)) if ward is None or r[0] == ward
            ]
            if ward is not None:
                summary.unfiltered.append("return rate by role (the whole partnership)")
            if category is not None:
                summary.unfiltered += [
                    "return rate (the monthly return is not by category)",
                    "hate crime (police figures are by strand, not category)",
                ]
            if self.pact is not None and (ward is not None or category is not None):
                summary.unfiltered.append("PACT meetings (the whole partnership)")
            if names and k == 1:
                summary.outstanding = await f.outstanding(month)
            times = [row for m in period.months for row in await f.action_times(m)]
            summary.actions = _actions(
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
            summary.matrix = {
                (w, c): n
                for (p, w, c), n in cube.items()
                if p == month
                and (ward is None or w == ward)
                and (category is None or c == category)
            }
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
        if self.pact is not None:
            last = period.months[-1]
            summary.pact = await self.pact.insight(
                shift(last, -11), last, change_date=self.pact.config.pact.review_date
            )
        return summary


class SummaryRefused(Exception):
    """Not allowed, or the request could not be understood; the message says why."""


SUMMARY_ROLES = frozenset({"prevent_officer", "admin"})


@dataclass(frozen=True)
class SummaryRequest:
    """Parsed filters of an on-demand summary."""

    month: str
    ward: str | None
    category: str | None


def parse_filters(
    text: str, *, default_month: str, wards: list[str], categories: dict[str, str]
) -> SummaryRequest:
    """``[YYYY-MM] [ward] [category]`` in any order; a ward or category may be several words.
    Anything not understood is named in the error."""
    rest = " ".join(text.split())
    month = default_month
    words = rest.split(" ") if rest else []
    for word in list(words):
        monthly = len(word) == 7 and word[4] == "-" and word.replace("-", "").isdigit()
        quarterly = len(word) == 7 and word[4:6].upper() == "-Q" and word[:4].isdigit()
        yearly = len(word) == 4 and word.isdigit()
        if monthly or quarterly or yearly:
            month = parse_period(word).label
            words.remove(word)
    rest = " ".join(words).casefold()
    found: dict[str, str] = {}
    names = [(w.casefold(), "ward", w) for w in wards]
    names += [(label.casefold(), "category", value) for value, label in categories.items()]
    names += [(value.casefold(), "category", value) for value in categories]
    for name, kind, value in sorted(names, key=lambda x: -len(x[0])):
        if kind not in found and f" {name} " in f" {rest} ":
            found[kind] = value
            rest = f" {rest} ".replace(f" {name} ", " ", 1).strip()
    if rest.strip():
        raise SummaryRefused(
            f"I did not understand {rest.strip()!r}: give a period (YYYY-MM, YYYY-Qn or YYYY), "
            "a ward and/or a category"
        )
    return SummaryRequest(month, found.get("ward"), found.get("category"))


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
            await audit(uow, now, who, "summary.refused", text[:100])
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


@dataclass(frozen=True)
class SummaryAnswer:
    """What a chat command answers: a short neutral message and the charts as PNGs."""

    message: OutgoingMessage
    charts: list[tuple[str, bytes, str]]  # file name, PNG, alt text


def headline(summary: Summary, threshold: int | None = None) -> OutgoingMessage:
    """The summary in a few lines for chat (aggregates only, protected: bot/summaries/disclosure.py)."""
    scope = " · ".join(x for x in (summary.ward, summary.category) if x)
    b = MessageBuilder().line(
        bold(f"Community tension summary, {summary.month}" + (f" ({scope})" if scope else ""))
    )
    if summary.empty:
        b.line("No tension reports and no hate-crime figures for this period.")
        if not summary.police_imported:
            b.line(_police_missing(summary.month, summary.unit))
        return _pact_headline(b, summary).build()
    r = summary.released(threshold=threshold)
    n = shown
    if summary.unfiltered:
        b.line(_unfiltered(summary))
    b.line(f"Tension reports: {n(r.total)} ({_comparison(summary.unit, r)})")
    categories = dict(r.breakdowns).get("category", [])
    top = [f"{summary.label(k)} {n(a)}" for k, a, _, _ in categories if a != 0][:5]
    if top:
        b.line("Top categories: " + ", ".join(top))
    if r.hate_crime:
        b.line("Hate crimes: " + ", ".join(f"{w} {n(c)}" for w, c, _ in r.hate_crime[:5]))
    if not summary.police_imported:
        b.line(_police_missing(summary.month, summary.unit))
    if r.pockets:
        b.line(bold("Pockets of concern:"))
        for x in r.pockets:
            b.line(f"• {pocket_sentence(*x[:3], summary.unit)}")
    else:
        b.line("No pockets of concern: nothing is clearly above its usual level.")
    return _pact_headline(b, summary).build()


def _pact_headline(b: MessageBuilder, summary: Summary) -> MessageBuilder:
    """The PACT findings (which times and venues draw people), when meetings were recorded."""
    if summary.pact is None or summary.pact.empty:
        return b
    from bot.pact.rules import findings

    b.line(bold(f"PACT meetings ({summary.pact.since} to {summary.pact.until}):"))
    for line in findings(summary.pact):
        b.line(f"• {line}")
    return b


async def answer(
    service: SummaryService, *, who: str, role: str | None, text: str
) -> SummaryAnswer:
    """Role check, filters, summary, headline and charts for a chat command."""
    async with service.uow_factory() as uow:
        form = (await service.forms.current(uow)).definition if service.forms else None
    categories = {o.value: o.label for o in form.question("category").options} if form else {}
    summary = await summary_for(
        service, service.uow_factory, who=who, person_role=role, text=text, categories=categories
    )
    from bot.charts import charts_for, describe, png  # matplotlib only when a chart is made

    charts = [
        (name, png(build(summary)), describe(name, summary))
        for name, build in charts_for(summary).items()
    ]
    return SummaryAnswer(headline(summary), charts)


async def post_scheduled(service: SummaryService, *, channel_kind: str = "slack") -> list[str]:
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
        message = _with_charts(summary, headline(summary))
        key = keys.get(label, label)  # a month by its campaign, a quarter by its label
        async with service.uow_factory() as uow:
            for channel in channels:
                await enqueue(
                    uow,
                    channel=channel_kind,
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


def _with_charts(summary: Summary, message: OutgoingMessage) -> OutgoingMessage:
    """The message with the summary's charts attached (matplotlib loaded only here)."""
    from bot.charts import charts_for, describe, png

    charts = charts_for(summary)
    if not charts:
        return message
    return message.model_copy(
        update={
            "attachments": [
                Attachment(
                    filename=name,
                    title=name.removesuffix(".png").replace("_", " "),
                    data=png(build(summary)),
                    alt_text=describe(name, summary),
                )
                for name, build in charts.items()
            ]
        }
    )
