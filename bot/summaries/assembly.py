"""How the summary's tables are put together from the rows the figure queries return: actions
by team with their working-hours medians, return counts by status, what each team may receive,
and every unit of the partnership tested for pockets of concern. Pure functions: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.config import Config
from bot.deadlines import working_hours
from bot.summaries.periods import shift
from bot.summaries.stats import Pocket, Series, find_pockets, km_median


@dataclass(frozen=True)
class _Action:
    level: int
    created: datetime
    acknowledged: datetime | None
    closed: datetime | None
    due: datetime | None


def actions_by_team(
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


def team_categories(config: Config) -> dict[str, tuple[frozenset[str] | None, bool]]:
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


def return_counts(counts: dict[tuple[str, str], int]) -> list[tuple[str, int, int, int, int]]:
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


def pockets_of_concern(
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
    tension = _margins(cube, "category")
    police = _margins(by_strand, "strand")
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


def _margins(counts: dict[tuple[str, str, str], int], by: str) -> dict[tuple[str, str, str], int]:
    """(month, ward, ``by``) counts summed by ward and by ``by``: (kind, unit, month) -> n.
    A plain dict and ``get`` (a Counter's missing-key path costs more, thousands of times)."""
    out: dict[tuple[str, str, str], int] = {}
    get = out.get
    for (p, w, other), n in counts.items():
        key = ("ward", w, p)
        out[key] = get(key, 0) + n
        key = (by, other, p)
        out[key] = get(key, 0) + n
    return out
