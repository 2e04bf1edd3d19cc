"""Statistical disclosure control, attacked as a data protection officer would attack it.

For random monthly data, the summary's published outputs (every CSV/XLSX table, the Markdown
totals line and the data drawn in the three tension charts) are read back as numbers. Each
published number is a linear equation over the true counts (or, for a rounded mean, a pair of
inequalities); integer linear programming (scipy's ``milp``) then finds, for every count that is
small (1 or 2) and for every cell shown as suppressed, the smallest and largest value consistent
with everything published. The feasible range must be at least the threshold: no small count can
be recovered or pinned down by differencing totals, other periods, means or charts.

The attacker knows what the tables mean (the categories and wards, that a period's levels add up
to its total, which team handles which category) and that counts are non-negative integers; as
tau-Argus assumes by default, a hidden cell is only known to be >= 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from bot.summaries.model import Breakdown, Summary
from bot.summaries.periods import shift

T = 3  # summaries.suppress_below
WARDS = ["Park", "Penn", "Oxley"]
CATEGORIES = ["race", "religion", "protest_extremism"]
LEVELS = ["1", "2", "3"]
BASES = ["experienced", "heard"]
STRANDS = ["race_ethnicity", "religion_belief"]
ROLES = ["councillor", "community_leader"]
STATUSES = ["responded", "nil", "no_reply", "unreachable"]
MONTH = "2026-12"
MONTHS = [shift(MONTH, -k) for k in range(12, -1, -1)]  # index 0 = last year, 12 = this month
PERIODS = {12: "now", 11: "previous", 0: "last_year"}
BIG = 10_000

Expr = dict[int, int]


@dataclass
class Data:
    """The true counts, and the registry of LP variables they are made of."""

    values: list[int] = field(default_factory=list)

    def var(self, value: int) -> Expr:
        self.values.append(value)
        return {len(self.values) - 1: 1}

    def value(self, e: Expr) -> int:
        return sum(self.values[i] * c for i, c in e.items())


def add(*exprs: Expr) -> Expr:
    out: Expr = {}
    for e in exprs:
        for i, c in e.items():
            out[i] = out.get(i, 0) + c
    return out


COUNT = st.one_of(st.integers(0, 3), st.integers(0, 3), st.integers(0, 9))


@st.composite
def worlds(draw: Any) -> tuple[Data, Summary, dict[str, Any]]:
    d = Data()
    x: dict[tuple[int, str, str], Expr] = {}  # (month, ward, category) for the 3 periods shown
    for m in PERIODS:
        for w in WARDS:
            for c in CATEGORIES:
                x[(m, w, c)] = d.var(draw(COUNT))
    other: dict[tuple[int, str], Expr] = {
        (m, c): d.var(draw(COUNT)) for m in range(1, 11) for c in CATEGORIES
    }

    def cat(m: int, c: str) -> Expr:
        return add(*(x[(m, w, c)] for w in WARDS)) if m in PERIODS else other[(m, c)]

    ward = {(m, w): add(*(x[(m, w, c)] for c in CATEGORIES)) for m in PERIODS for w in WARDS}
    total = {m: add(*(ward[(m, w)] for w in WARDS)) for m in PERIODS}

    def split(n: int, keys: list[str]) -> list[int]:
        parts = [0] * len(keys)
        for _ in range(n):
            parts[draw(st.integers(0, len(keys) - 1))] += 1
        return parts

    # Levels and bases: variables whose sum the attacker knows is the period's total.
    level: dict[tuple[int, str], Expr] = {}
    basis: dict[tuple[int, str], Expr] = {}
    equal: list[tuple[Expr, Expr]] = []
    for m in PERIODS:
        n = d.value(total[m])
        for keys, into in ((LEVELS, level), (BASES, basis)):
            for k, v in zip(keys, split(n, keys), strict=True):
                into[(m, k)] = d.var(v)
            equal.append((add(*(into[(m, k)] for k in keys)), total[m]))
    crime = {(w, s): d.var(draw(COUNT)) for w in WARDS for s in STRANDS}
    year = {(w, s): d.var(draw(COUNT)) for w in WARDS for s in STRANDS}
    returns = {(r, s): d.var(draw(COUNT)) for r in ROLES for s in STATUSES}
    # The prevent team handles protest_extremism only (one action per report); cohesion the rest.
    teams = {"prevent": cat(12, "protest_extremism"), "cohesion": d.var(draw(COUNT))}

    v = d.value
    summary = Summary(
        MONTH,
        None,
        None,
        total=v(total[12]),
        previous_total=v(total[11]),
        last_year_total=v(total[0]),
    )
    for by, keys, get in (
        ("category", CATEGORIES, lambda m, k: cat(m, k)),
        ("ward", WARDS, lambda m, k: ward[(m, k)]),
        ("level", LEVELS, lambda m, k: level[(m, k)]),
        ("basis", BASES, lambda m, k: basis[(m, k)]),
    ):
        rows = [(k, v(get(12, k)), v(get(11, k)), v(get(0, k))) for k in keys]
        rows = [r for r in rows if any(r[1:])]
        summary.breakdowns.append(Breakdown(by, sorted(rows, key=lambda r: (-r[1], r[0]))))
    summary.months = list(MONTHS)
    summary.trend = {
        c: [v(cat(m, c)) for m in range(13)]
        for c in CATEGORIES
        if any(v(cat(m, c)) for m in range(13))
    }
    summary.matrix = {
        (w, c): v(x[(12, w, c)]) for w in WARDS for c in CATEGORIES if v(x[(12, w, c)])
    }
    summary.tension_by_ward = {w: v(ward[(12, w)]) for w in WARDS}
    now_w = {w: sum(v(crime[(w, s)]) for s in STRANDS) for w in WARDS}
    year_w = {w: sum(v(year[(w, s)]) for s in STRANDS) for w in WARDS}
    summary.hate_crime = sorted(
        ((w, now_w[w], year_w[w] / 12) for w in WARDS if now_w[w] or year_w[w]),
        key=lambda r: (-r[1], r[0]),
    )
    now_s = {s: sum(v(crime[(w, s)]) for w in WARDS) for s in STRANDS}
    year_s = {s: sum(v(year[(w, s)]) for w in WARDS) for s in STRANDS}
    summary.hate_crime_by_strand = sorted(
        ((s, now_s[s], year_s[s] / 12) for s in STRANDS if now_s[s] or year_s[s]),
        key=lambda r: (-r[1], r[0]),
    )
    rows_ = [(r, *(v(returns[(r, s)]) for s in STATUSES)) for r in ROLES]
    summary.returns_by_role = [*rows_, ("all", *(sum(r[i] for r in rows_) for i in range(1, 5)))]  # type: ignore[list-item]
    summary.actions = [(t, v(e), v(e), 0, 0, None, None) for t, e in sorted(teams.items()) if v(e)]
    summary.team_categories = {
        "prevent": (frozenset({"protest_extremism"}), False),
        "cohesion": (None, True),
    }
    exprs = {
        "cat": cat,
        "ward": ward,
        "total": total,
        "level": level,
        "basis": basis,
        "x": x,
        "crime": crime,
        "year": year,
        "returns": returns,
        "teams": teams,
        "equal": equal,
    }
    return d, summary, exprs


@dataclass
class Published:
    """What an attacker reads: equations, rounded means, and the places shown as suppressed."""

    equal: list[tuple[Expr, float]] = field(default_factory=list)
    between: list[tuple[Expr, float, float]] = field(default_factory=list)
    hidden: list[tuple[str, Expr]] = field(default_factory=list)

    def number(self, where: str, e: Expr, shown: Any) -> None:
        """A count as published: a number, or anything else (a marker, a blank) = suppressed."""
        if isinstance(shown, bool) or shown is None:
            self.hidden.append((where, e))
        elif isinstance(shown, int | float | np.integer | np.floating) and not math.isnan(shown):
            self.equal.append((e, float(shown)))
        elif isinstance(shown, str) and re.fullmatch(r"\d+", shown.strip()):
            self.equal.append((e, float(shown)))
        else:
            self.hidden.append((where, e))

    def mean(self, where: str, e: Expr, shown: Any, decimals: int, months: int = 12) -> None:
        """A mean over ``months`` published to ``decimals`` places: bounds its total."""
        if isinstance(shown, int | float) and not isinstance(shown, bool):
            half = 0.5 * 10**-decimals
            self.between.append((e, (shown - half) * months, (shown + half) * months))
        else:
            self.hidden.append((where, e))


def read(summary: Summary, ex: dict[str, Any]) -> Published:
    """Every number the summary publishes, as the attacker sees it."""
    from handlers.files.charts import (
        hate_crime_vs_tension,
        trend_by_category,
        ward_category_heatmap,
    )
    from handlers.files.spreadsheets import tables

    pub = Published()
    for a, b in ex["equal"]:
        pub.equal.append((add(a, {i: -c for i, c in b.items()}), 0.0))
    # The tables show the form's labels; the attacker reads them back to keys.
    keyed = {
        "tensions_by_category": {summary.label(k): k for k in CATEGORIES},
        "hate_crime_by_strand": {summary.label(k): k for k in STRANDS},
    }
    for name, (_, shown_rows) in tables(summary).items():
        back = keyed.get(name)
        rows = [[back[r[0]], *r[1:]] for r in shown_rows] if back else shown_rows
        shown_keys = {r[0] for r in rows}
        if name.startswith("tensions_by_"):
            by = name.removeprefix("tensions_by_")
            keys = {"category": CATEGORIES, "ward": WARDS, "level": LEVELS, "basis": BASES}[by]
            for row in rows:
                for m, shown in zip((12, 11, 0), row[1:4], strict=True):
                    e = (
                        ex["cat"](m, row[0])
                        if by == "category"
                        else ex["ward" if by == "ward" else by][(m, row[0])]
                    )
                    pub.number(f"{name}[{row[0]}][{m}]", e, shown)
            for k in set(keys) - shown_keys:  # a key left out had nothing in any period
                for m in (12, 11, 0):
                    e = (
                        ex["cat"](m, k)
                        if by == "category"
                        else ex["ward" if by == "ward" else by][(m, k)]
                    )
                    pub.equal.append((e, 0.0))
        elif name == "returns_by_role":
            for row in rows:
                for s, shown in zip(STATUSES, row[1:5], strict=True):
                    if row[0] == "all":
                        e = add(*(ex["returns"][(r, s)] for r in ROLES))
                    else:
                        e = ex["returns"][(row[0], s)]
                    pub.number(f"{name}[{row[0]}][{s}]", e, shown)
        elif name == "actions_by_team":
            for row in rows:
                for col, shown in zip(("actions", "open"), row[1:3], strict=True):
                    pub.number(f"{name}[{row[0]}][{col}]", ex["teams"][row[0]], shown)
            for t in set(ex["teams"]) - shown_keys:
                pub.equal.append((ex["teams"][t], 0.0))
        elif name in ("hate_crime_by_ward", "hate_crime_by_strand"):
            ward_table = name.endswith("ward")
            keys = WARDS if ward_table else STRANDS

            def part(key: str, k: str, ward_table: bool = ward_table) -> Expr:
                return add(*(e for ws, e in ex[key].items() if ws[0 if ward_table else 1] == k))

            for row in rows:
                now, year = part("crime", row[0]), part("year", row[0])
                pub.number(f"{name}[{row[0]}]", now, row[1])
                pub.mean(f"{name}[{row[0]}] mean", year, row[2], decimals=2)
            for k in set(keys) - shown_keys:
                for key in ("crime", "year"):
                    pub.equal.append((part(key, k), 0.0))
    # The Markdown's totals line.
    text = summary.markdown()
    if "No tension reports" in text:
        pub.equal.append((ex["total"][12], 0.0))
    line = next((ln for ln in text.splitlines() if ln.startswith("Tension reports:")), None)
    found = line and re.fullmatch(
        r"Tension reports: \*\*(.+?)\*\* \(previous month (.+?), same month last year (.+?)\)",
        line,
    )
    for m, shown in zip((12, 11, 0), found.groups() if found else (), strict=False):
        pub.number(f"total[{m}]", ex["total"][m], shown)
    # The charts, read from matplotlib's artists.
    # Charts show labels, not keys, and at most five lines, the rest summed as "Other".
    key_of = {summary.label(c): c for c in {*summary.trend, *(c for _, c in summary.matrix)}}
    ax = trend_by_category(summary).axes[0]
    drawn = [str(line2d.get_label()) for line2d in ax.get_lines()]
    others = [c for c in summary.trend if summary.label(c) not in drawn]
    for line2d in ax.get_lines():
        category = str(line2d.get_label())
        for m, y in enumerate(
            np.ma.filled(np.ma.masked_invalid(np.asarray(line2d.get_ydata(), dtype=float)), np.nan)
        ):
            if category == "Other":
                e = add(*(ex["cat"](m, c) for c in others))
            else:
                e = ex["cat"](m, key_of[category])
            pub.number(f"trend[{category}][{m}]", e, float(y))
    if summary.matrix:
        ax = ward_category_heatmap(summary).axes[0]
        wards = [t.get_text() for t in ax.get_yticklabels()]
        cats = [key_of[t.get_text()] for t in ax.get_xticklabels()]
        grid = np.ma.masked_invalid(np.ma.asarray(ax.images[0].get_array(), dtype=float))
        for i, w in enumerate(wards):
            for j, c in enumerate(cats):
                cell = grid[i, j]
                pub.number(
                    f"heat[{w}][{c}]",
                    ex["x"][(12, w, c)],
                    None if cell is np.ma.masked else float(cell),
                )
        for text in ax.texts:
            if text.get_transform() != ax.transData:
                continue  # a note about the chart, not a cell
            j, i = (round(p) for p in text.get_position())
            pub.number(
                f"heat text[{wards[i]}][{cats[j]}]",
                ex["x"][(12, wards[i], cats[j])],
                text.get_text(),
            )
    ax = hate_crime_vs_tension(summary).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    for container in ax.containers:
        for w, patch in zip(labels, container, strict=True):
            if container.get_label() == "hate crimes":
                e = add(*(e for (w2, _), e in ex["crime"].items() if w2 == w))
            else:
                e = ex["ward"][(12, w)]
            shown = None if patch.get_hatch() else patch.get_height()
            pub.number(f"bars[{container.get_label()}][{w}]", e, shown)
    return pub


def feasible_range(d: Data, pub: Published, e: Expr) -> tuple[int, int]:
    """The smallest and largest integer value of ``e`` consistent with everything published."""
    n = len(d.values)
    rows, lo, hi = [], [], []
    for expr, value in pub.equal:
        rows.append(expr)
        lo.append(value)
        hi.append(value)
    for expr, low, high in pub.between:
        rows.append(expr)
        lo.append(math.ceil(low - 1e-9))
        hi.append(math.floor(high + 1e-9))
    a = np.zeros((len(rows), n))
    for r, expr in enumerate(rows):
        for i, c in expr.items():
            a[r, i] += c
    c = np.zeros(n)
    for i, k in e.items():
        c[i] = k
    out = []
    for sign in (1, -1):
        res = milp(
            sign * c,
            constraints=LinearConstraint(a, lo, hi),
            integrality=np.ones(n),
            bounds=Bounds(0, BIG),
        )
        assert res.status == 0, res.message  # the truth is always feasible
        out.append(round(sign * res.fun))
    return out[0], out[1]


def small_counts(d: Data, ex: dict[str, Any]) -> list[tuple[str, Expr]]:
    """Every count the summary is about that is below the threshold (and not 0)."""
    found: list[tuple[str, Expr]] = []
    candidates: list[tuple[str, Expr]] = [
        *((f"x{k}", e) for k, e in ex["x"].items()),
        *((f"ward{k}", e) for k, e in ex["ward"].items()),
        *((f"total{k}", e) for k, e in ex["total"].items()),
        *((f"level{k}", e) for k, e in ex["level"].items()),
        *((f"basis{k}", e) for k, e in ex["basis"].items()),
        *((f"category{m},{c}", ex["cat"](m, c)) for m in range(13) for c in CATEGORIES),
        *((f"returns{k}", e) for k, e in ex["returns"].items()),
        *((f"team {k}", e) for k, e in ex["teams"].items()),
    ]
    for key in ("crime", "year"):
        for w in WARDS:
            candidates.append((f"{key} {w}", add(*(ex[key][(w, s)] for s in STRANDS))))
        for s in STRANDS:
            candidates.append((f"{key} {s}", add(*(ex[key][(w, s)] for w in WARDS))))
    for where, e in candidates:
        if 0 < d.value(e) < T:
            found.append((where, e))
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_no_small_count_can_be_recovered_from_anything_published(
    world: tuple[Data, Summary, dict[str, Any]],
) -> None:
    d, summary, ex = world
    pub = read(summary, ex)
    checked: dict[tuple[tuple[int, int], ...], str] = {}
    for where, e in [*small_counts(d, ex), *pub.hidden]:
        key = tuple(sorted(e.items()))
        if key in checked:
            continue
        checked[key] = where
        low, high = feasible_range(d, pub, e)
        assert low <= d.value(e) <= high
        assert high - low >= T, (
            f"{where} (true value {d.value(e)}) is pinned to {low}..{high} by what is published"
        )


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --- End to end: the real summary, built from the database, in every output. ---------------


async def _reports(s: Any, when: str, ward: str, category: str, n: int) -> None:
    """``n`` reports, routed to their teams' actions as the bot routes a submitted report."""
    from datetime import UTC, datetime

    from bot.domain import Report

    async with s.db.uow() as uow:
        form = await s.forms.current(uow)
        made = []
        for i in range(n):
            report = Report(
                reference=f"TR-{when}-{ward[:3]}{category[:3]}{i}",
                person_id=1,
                source="adhoc",
                ward=ward,
                category=category,
                level=2,
                basis="experienced",
                answers={},
                form_version_id=form.id,
                created_at=datetime.strptime(when + "-10", "%Y-%m-%d").replace(tzinfo=UTC),
                period=when,
            )
            await uow.reports.add(report)
            made.append(report)
        await s.actions.create_for_reports(uow, made, s.clock.now())
        await uow.commit()


SMALL = re.compile(r"^[12]$")


async def test_one_private_report_is_not_given_away_by_any_output(
    db_url: str, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from openpyxl import load_workbook

    from bot.clock import FakeClock
    from handlers.files.charts import ward_category_heatmap
    from handlers.files.spreadsheets import write
    from tests.helpers import PEOPLE_CSV, services_for
    from tests.test_actions import ROUTING, TEAMS

    clock = FakeClock(datetime(2026, 12, 20, tzinfo=UTC))
    async with services_for(db_url, clock, teams=TEAMS, routing=ROUTING) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        # One protest/extremism report (private: only the prevent team gets it) in Park,
        # beside enough of other categories that the totals are not small.
        await _reports(s, "2026-12", "Park", "protest_extremism", 1)
        await _reports(s, "2026-12", "Park", "race", 4)
        await _reports(s, "2026-12", "Penn", "race", 5)
        await _reports(s, "2026-12", "Penn", "religion", 3)
        await _reports(s, "2026-11", "Park", "protest_extremism", 2)
        await _reports(s, "2026-11", "Penn", "race", 6)
        summary = await s.summaries.build("2026-12", actor="admin")
        assert summary.actions[-1][:5] == ("prevent", 1, 1, 0, 0)
        assert summary.matrix[("Park", "protest_extremism")] == 1
        files = write(summary, tmp_path / "out")
        from bot.summaries.chat import headline

        chat = headline(summary).plain_text()  # what /tensions and the board channel get
        body = chat.split("\n", 1)[1]  # after the title, which has the month
        label = summary.label("protest_extremism")  # the form's label, not the key
        assert f"{label} [c]" in body and not re.search(r"\b[12]\b", body)

    out = tmp_path / "out"
    text = (out / "summary.md").read_text()
    assert "| Protest or extremist activity | [c] | [c] | 0 |" in text
    assert "| prevent | [c] | [c] | [c] | [c] | – | – |" in text
    assert "Tension reports: **13** (previous month 8," in text
    # Race (9) and religion (3) are withheld with it, or 13 - 9 - 3 would give the 1 away.
    assert (
        "| Race or ethnicity | [c] | [c] | 0 |" in text
        and "| Religion or faith | [c] | 0 | 0 |" in text
    )
    # Records began in November: one month of history is too little to call anything a
    # pocket (the months before are missing, not 0; a pocket's withheld baseline is checked
    # in tests/test_summary.py::test_charts_and_exports).
    assert "None: nothing is clearly above its usual level this month." in text
    # No table cell anywhere is 1 or 2, in the Markdown, the CSVs or the workbook.
    cells = [  # every count (the first column is the row's key: a ward, a level...)
        c.strip() for ln in text.splitlines() if ln.startswith("|") for c in ln.split("|")[2:]
    ]
    assert not [c for c in cells if SMALL.match(c)]
    tension_tables = [f for f in files if f.suffix == ".csv" and not f.name.startswith("pact_")]
    for f in tension_tables:
        counts = [v for row in f.read_text().splitlines() for v in row.split(",")[1:]]
        assert not [v for v in counts if SMALL.match(v)], f.name
    book = load_workbook(out / "tension-summary-2026-12.xlsx")
    for sheet in book.worksheets:
        for row in sheet.iter_rows(min_row=2, values_only=True):
            assert not [v for v in row[1:] if v in (1, 2, "1", "2")], (sheet.title, row)
    teams = {row[0]: row for row in book["actions_by_team"].iter_rows(values_only=True)}
    assert teams["prevent"][1:5] == ("[c]", "[c]", "[c]", "[c]")
    # The heat map writes no 1 or 2 and colours no withheld cell.
    ax = ward_category_heatmap(summary).axes[0]
    written = [t.get_text() for t in ax.texts if t.get_transform() == ax.transData]
    assert "[c]" in written and not [t for t in written if SMALL.match(t)]
    grid = ax.images[0].get_array()
    wards = [t.get_text() for t in ax.get_yticklabels()]
    cats = [t.get_text() for t in ax.get_xticklabels()]
    assert grid[wards.index("Park"), cats.index(summary.label("protest_extremism"))] is np.ma.masked


def test_a_pocket_of_concern_does_not_give_back_a_withheld_count_beside_it() -> None:
    """The review's attack: hate crime A=1, B=5 (a pocket, mean 0.5), C=9, race 15. With B
    withheld as A's complement, the pocket line's mean and p-value (or just "at least 3 and
    unusual") gave B back, and A = 15 - 9 - B = 1. A pocket's count is now published and the
    complement taken elsewhere."""
    from bot.summaries.stats import Pocket

    hc = [("A", 1, 4.0), ("B", 5, 0.5), ("C", 9, 6.0)]
    pocket = Pocket("B", "hate crimes", 5, 0.5, 0.0002)
    s = Summary(
        month="2026-01",
        ward=None,
        category=None,
        total=0,
        previous_total=0,
        last_year_total=0,
        hate_crime=hc,
        hate_crime_by_strand=[("race", 15, 10.5)],
        pockets=[pocket],
    )
    released = s.released()
    shown = {w: n for w, n, _ in released.hate_crime}
    assert shown["B"] == 5 and shown["A"] is None
    # A and C are withheld together: A + C = 15 - 5 = 10 leaves A anywhere from 1 to 9.
    assert shown["C"] is None
    ((p, observed, baseline, _),) = released.pockets
    assert p.ward == "B" and observed == 5 and baseline == 0.5
    markdown = s.markdown()
    assert "| A | [c] |" in markdown and "| C | [c] |" in markdown
