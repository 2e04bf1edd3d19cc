"""Statistical disclosure control of a summary: which of its figures are linked, and how each
is protected (the method, primary and secondary suppression of one table, is
bot/summaries/suppression.py). :class:`Released` is every figure as it may be published: Markdown,
chat text, CSV, XLSX and charts are all drawn from it, never from the raw summary."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.summaries.stats import Pocket
from bot.summaries.suppression import MARK, TOTAL, Key, Line, line, primary, protect, shown

__all__ = ["MARK", "Released", "release", "return_rates", "shown"]


Count = int | None  # a published count; None when withheld


class Rows(Protocol):
    """One grouping of a summary's tension counts (:class:`bot.summaries.model.Breakdown`)."""

    @property
    def by(self) -> str: ...
    @property
    def rows(self) -> Sequence[tuple[str, int, int, int]]: ...  # key, now, previous, last year


class Figures(Protocol):
    """The raw figures of a summary that :func:`release` protects, as
    :class:`bot.summaries.model.Summary` holds them (see its fields for what each is); typed
    here so that disclosure control depends on no summary module."""

    @property
    def total(self) -> int: ...
    @property
    def previous_total(self) -> int: ...
    @property
    def last_year_total(self) -> int: ...
    @property
    def breakdowns(self) -> Sequence[Rows]: ...
    @property
    def matrix(self) -> Mapping[tuple[str, str], int]: ...
    @property
    def tension_by_ward(self) -> Mapping[str, int]: ...
    @property
    def months(self) -> Sequence[str]: ...
    @property
    def trend(self) -> Mapping[str, Sequence[int]]: ...
    @property
    def hate_crime(self) -> Sequence[tuple[str, int, float]]: ...
    @property
    def hate_crime_by_strand(self) -> Sequence[tuple[str, int, float]]: ...
    @property
    def police_months(self) -> int: ...
    @property
    def pockets(self) -> Sequence[Pocket]: ...
    @property
    def false_discovery_rate(self) -> float: ...
    @property
    def returns_by_role(self) -> Sequence[tuple[str, int, int, int, int]]: ...
    @property
    def returns_by_ward(self) -> Sequence[tuple[str, int, int, int, int]]: ...
    @property
    def actions(self) -> Sequence[tuple[str, int, int, int, int, float | None, float | None]]: ...
    @property
    def team_categories(self) -> Mapping[str, tuple[frozenset[str] | None, bool]]: ...


@dataclass
class Released:
    """Every figure of a summary as it may be published (``None`` = withheld). Markdown, chat
    text, CSV, XLSX and charts are all drawn from this, never from the raw summary."""

    threshold: int
    suppressed: bool
    total: Count
    previous_total: Count
    last_year_total: Count
    breakdowns: list[tuple[str, list[tuple[str, Count, Count, Count]]]]
    matrix: dict[tuple[str, str], Count]  # (ward, category) -> this month
    tension_by_ward: dict[str, Count]
    trend: dict[str, list[Count]]  # category -> per month of ``summary.months``
    hate_crime: list[tuple[str, Count, float | None]]  # ward, this month, 12-month mean
    hate_crime_by_strand: list[tuple[str, Count, float | None]]
    pockets: list[tuple[Pocket, Count, float | None, str]]  # observed, baseline, p-value text
    returns_by_role: list[tuple[str, Count, Count, Count, Count]]
    returns_by_ward: list[tuple[str, Count, Count, Count, Count]]
    actions: list[tuple[str, Count, Count, Count, Count, float | None, float | None]]


def return_rates(
    responded: Count, nil: Count, no_reply: Count, unreachable: Count
) -> tuple[float | None, float | None]:
    """The return rate, (responded + nil) / people the form reached, and the same over everyone
    asked (unreachable people counted): from published counts only, so a rate beside a withheld
    count is withheld (it would give the count away); ``None`` also when nobody was asked."""
    if None in (responded, nil, no_reply, unreachable):
        return None, None
    answered = int(responded or 0) + int(nil or 0)
    reached = answered + int(no_reply or 0)
    asked = reached + int(unreachable or 0)
    return (answered / reached if reached else None, answered / asked if asked else None)


def _any_table(rows: Mapping[str, int], cols: Mapping[str, int]) -> dict[Key, int]:
    """A table with these margins (north-west corner rule); the sums must be equal."""
    left_r, left_c = dict(rows), dict(cols)
    out: dict[Key, int] = {}
    for r in sorted(left_r):
        for c in sorted(left_c):
            n = min(left_r[r], left_c[c])
            if n:
                out[(r, c)] = n
                left_r[r] -= n
                left_c[c] -= n
    return out


def _published_order(row: tuple[str, Count, *tuple[Any, ...]]) -> tuple[int, str]:
    return (-(row[1] or 0), row[0])


def release(summary: Figures, *, threshold: int, suppressed: bool = True) -> Released:
    """Protect every figure of ``summary`` (see the module's docstring), or, with
    ``suppressed=False`` (the system administrator's ``--no-suppress``), show them as they are.

    The linked structure: this month's ward x category table with its margins (the heat map,
    the by-ward and by-category columns, the bar chart's tension bars, the trend's last point);
    each other period's breakdowns as one-way tables of that period's total (the comparison
    columns, the trend's other points); levels and bases likewise; hate crime by ward and by
    strand, this month and over the 12 months (means), as one-way tables of their common
    total; return rates by role with their "all" row; actions by team cell by cell (they have
    no totals), with a team's median times withheld with its count. A period's total is never
    withheld as a complement, so it is withheld exactly when it is small.
    """
    t = threshold if suppressed else 1  # below 1 is nothing: --no-suppress shows all

    def plain(v: int) -> Count:
        return primary(v, t)

    groups = {b.by: b.rows for b in summary.breakdowns}
    totals = {1: summary.total, 2: summary.previous_total, 3: summary.last_year_total}

    def column(by: str, index: int) -> dict[str, int]:
        return {r[0]: int(r[index]) for r in groups.get(by, []) if r[index]}

    def one_way(
        values: Mapping[str, int], total: int | None = None, keep: Collection[str] = ()
    ) -> Line:
        """A breakdown; its total is published when it is the period's (or ``None``: the
        total can be worked out, as for hate crime, so treat it as published)."""
        values = {k: v for k, v in values.items() if v}
        shown_total = total is None or sum(values.values()) == total
        return line(values, threshold=t, total_shown=shown_total, keep=keep)

    # A pocket of concern names its ward and is at least min_count: its count is published
    # (kept out of the complements), so that naming it cannot narrow a withheld figure beside
    # it (issue 11's review: a withheld pocket count with its mean and p-value gave it back).
    spikes = [p for p in summary.pockets if p.kind == "spike" and p.by == "ward"]
    tension_pockets = {p.ward for p in spikes if p.source != "hate crimes"}
    crime_pockets = {p.ward for p in spikes if p.source == "hate crimes"}

    # This month: the two-way table ward x category with its margins.
    wards = sorted({w for w, _ in summary.matrix} | set(column("ward", 1)))
    cats = sorted({c for _, c in summary.matrix} | set(column("category", 1)))
    grid = protect(
        summary.matrix,
        rows=wards,
        cols=cats,
        threshold=t,
        keep={(TOTAL, TOTAL)} | {(w, TOTAL) for w in tension_pockets},
    )
    two_way = (
        bool(summary.matrix)
        and all(grid.values.get((w, TOTAL), 0) == v for w, v in column("ward", 1).items())
        and all(grid.values.get((TOTAL, c), 0) == v for c, v in column("category", 1).items())
    )
    lines = {
        (by, i): one_way(
            column(by, i), totals[i], tension_pockets if (by, i) == ("ward", 1) else ()
        )
        for by in groups
        for i in (1, 2, 3)
        if not (two_way and i == 1 and by in ("ward", "category"))
    }

    def get(by: str, index: int, key: str) -> Count:
        if two_way and index == 1 and by == "ward":
            return grid.row_total(key)
        if two_way and index == 1 and by == "category":
            return grid.col_total(key)
        return lines[(by, index)].get(key)

    # Rows are ordered by what is published (a withheld count sorts as 0): an order by the
    # true counts would tell which of two withheld cells is larger.
    breakdowns = [
        (
            by,
            sorted(
                ((r[0], get(by, 1, r[0]), get(by, 2, r[0]), get(by, 3, r[0])) for r in rows),
                key=_published_order,
            ),
        )
        for by, rows in groups.items()
    ]
    matrix = {k: grid.get(*k) for k in summary.matrix}

    # The trend: a month shown in the comparison columns with the same figures keeps their
    # protection; any other month is a one-way table of its (workable-out) total.
    months = summary.months
    columns: list[dict[str, Count]] = []
    for m, _ in enumerate(months):
        values = {c: counts[m] for c, counts in summary.trend.items()}
        period = {len(months) - 1: 1, len(months) - 2: 2, 0: 3}.get(m)
        same = period is not None and "category" in groups
        if same and period is not None:
            published = column("category", period)
            same = set(published) <= set(values) and all(
                values[c] == published.get(c, 0) for c in values
            )
        if same and period is not None:
            columns.append({c: get("category", period, c) for c in values})
        else:
            own = one_way(values)
            columns.append({c: own.get(c) for c in values})
    trend = {c: [col[c] for col in columns] for c in summary.trend}

    # The bar chart's tension bars: this month's ward margins when they are the same figures.
    if all(grid.values.get((w, TOTAL), 0) == v for w, v in summary.tension_by_ward.items()) and (
        set(wards) <= set(summary.tension_by_ward)
    ):
        tension_by_ward = {w: grid.row_total(w) for w in summary.tension_by_ward}
    else:
        own = one_way(summary.tension_by_ward, keep=tension_pockets)
        tension_by_ward = {w: own.get(w) for w in summary.tension_by_ward}

    # Hate crime: by ward and by strand share their (workable-out) total, this month and over
    # the year; a mean is published only with its total.
    def crime(
        wards_: Sequence[tuple[str, int, float]], strands: Sequence[tuple[str, int, float]]
    ) -> tuple[list[tuple[str, Count, float | None]], list[tuple[str, Count, float | None]]]:
        """Hate crime by ward and by strand are the two margins of a ward x strand table that
        is not published, this month and over the year; a mean only with its total."""
        out: dict[str, dict[str, Count]] = {}
        months = summary.police_months  # a mean is over the months imported, not always 12
        for name, get in (("now", lambda r: r[1]), ("year", lambda r: round(r[2] * months))):
            a = {r[0]: get(r) for r in wards_}
            b = {r[0]: get(r) for r in strands}
            pockets_here = crime_pockets if name == "now" else set()
            if sum(a.values()) != sum(b.values()):  # not margins of one table
                one, two = one_way(a, keep=pockets_here), one_way(b)
                out[name + "w"] = {k: one.get(k) for k in a}
                out[name + "s"] = {k: two.get(k) for k in b}
                continue
            table = protect(
                _any_table(a, b),
                rows=sorted(a),
                cols=sorted(b),
                threshold=t,
                grand_total=False,
                cells_shown=False,
                keep={(w, TOTAL) for w in pockets_here},
            )
            out[name + "w"] = {k: table.row_total(k) for k in a}
            out[name + "s"] = {k: table.col_total(k) for k in b}
        by_ward = [
            (k, out["noww"][k], None if out["yearw"][k] is None else m) for k, _, m in wards_
        ]
        by_strand = [
            (k, out["nows"][k], None if out["years"][k] is None else m) for k, _, m in strands
        ]
        return by_ward, by_strand

    hate_crime, by_strand = crime(summary.hate_crime, summary.hate_crime_by_strand)
    hate_crime.sort(key=_published_order)
    by_strand.sort(key=_published_order)

    # Pockets: the count is the published one; the baseline (a mean over the baseline months)
    # and the p-value, which would give it away, only when that total cannot pin down a
    # withheld month or reveal a small count over the other months. A sustained rise's
    # three-month total and baseline cover months published nowhere else: shown only with
    # --no-suppress.
    crimes = {w: (c, m) for w, c, m in hate_crime}
    strands = {s_: (c, m) for s_, c, m in by_strand}
    rows_by = {by: {r[0]: r for r in rows} for by, rows in breakdowns}
    pockets: list[tuple[Pocket, Count, float | None, str]] = []
    for p in summary.pockets:
        baseline: float | None
        if not suppressed:
            observed, baseline = p.observed, p.baseline
        elif p.kind != "spike":
            observed, baseline = None, None
        elif p.source == "hate crimes":
            table = crimes if p.by == "ward" else strands
            observed, baseline = table.get(p.ward, (plain(p.observed), None))
        else:
            row = rows_by.get(p.by, {}).get(p.ward, (p.ward, None, None, None))
            if p.by == "ward":
                observed = tension_by_ward.get(p.ward, row[1])
            else:
                observed = row[1]
            year = round(p.baseline * p.months)
            # The year includes the previous month and last year's: shown only beside those
            # two as published figures, and only if the other months are 0 or not small.
            rest = None if None in row[2:4] else year - int(row[2] or 0) - int(row[3] or 0)
            baseline = p.baseline if rest is not None and (rest == 0 or rest >= t) else None
        if observed is None:
            # Withheld after all (only kept figures were left to withhold): its mean and
            # p-value would give it back, so neither is shown.
            baseline = None
        text = (
            f"{p.p_value:.2g}" if baseline is not None else f"<= {summary.false_discovery_rate:g}"
        )
        pockets.append((p, observed, baseline, text))
    pockets.sort(key=lambda x: (x[2] is None, x[0].p_value if x[2] is not None else 0, x[0].ward))

    # Return rates: roles x status with the "all" row as column totals; wards cell by cell
    # (a person may belong to several wards, so they add up to nothing published).
    roles = [r for r in summary.returns_by_role if r[0] != "all"]
    statuses = ["responded", "nil", "no_reply", "unreachable"]
    rates = protect(
        {(r[0], s): int(r[i + 1]) for r in roles for i, s in enumerate(statuses)},
        rows=[r[0] for r in roles],
        cols=statuses,
        threshold=t,
        row_totals=False,
        grand_total=False,
        keep=(),
    )
    returns_by_role: list[tuple[str, Count, Count, Count, Count]] = []
    for r in summary.returns_by_role:
        a, b, c, d = (rates.get(r[0], s) if r[0] != "all" else rates.col_total(s) for s in statuses)
        returns_by_role.append((r[0], a, b, c, d))
    returns_by_ward = [
        (r[0], plain(r[1]), plain(r[2]), plain(r[3]), plain(r[4])) for r in summary.returns_by_ward
    ]
    # Actions by team: a team's count is a sum of tension counts fixed by the routing rules
    # (a team that handles only a private category has that category's count), so a team's
    # figures are withheld with any figure of a category it may receive; and when small.
    hidden_totals = {c for c in cats if grid.col_total(c) is None}
    if trend and columns:  # a ward's summary: the partnership's month is the trend's last point
        hidden_totals |= {c for c, v in columns[-1].items() if v is None}
    hidden_cells = hidden_totals | {c for (_, c), v in matrix.items() if v is None}
    if any(v is None for _, rows in breakdowns if _ == "level" for _, v, _, _ in rows):
        hidden_cells |= set(cats) | set(summary.trend)
    if grid.total is None:
        hidden_totals |= set(cats) | set(summary.trend)
    actions: list[tuple[str, Count, Count, Count, Count, float | None, float | None]] = []
    for team, n, open_, overdue, escalated, ack, close in summary.actions:
        receives, narrow = summary.team_categories.get(team, (None, True))
        hidden_here = hidden_cells if narrow else hidden_totals
        linked = bool(hidden_here) and (receives is None or bool(hidden_here & receives))
        count = None if linked and suppressed else plain(n)
        known = count is not None  # a small team's median times describe one or two actions
        open_n, overdue_n, escalated_n = (
            plain(v) if known else None for v in (open_, overdue, escalated)
        )
        actions.append(
            (
                team,
                count,
                open_n,
                overdue_n,
                escalated_n,
                ack if known else None,
                close if known else None,
            )
        )
    return Released(
        threshold=threshold,
        suppressed=suppressed,
        total=plain(summary.total),
        previous_total=plain(summary.previous_total),
        last_year_total=plain(summary.last_year_total),
        breakdowns=breakdowns,
        matrix=matrix,
        tension_by_ward=tension_by_ward,
        trend=trend,
        hate_crime=hate_crime,
        hate_crime_by_strand=by_strand,
        pockets=pockets,
        returns_by_role=returns_by_role,
        returns_by_ward=returns_by_ward,
        actions=actions,
    )
