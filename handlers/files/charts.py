"""Charts for summaries, as PNG bytes (matplotlib's object API: no pyplot, no global state).

Builders return a ``Figure`` (so tests can inspect its series); :func:`png` renders one. An empty
period gets a figure that says so instead of empty axes. Every tension and hate-crime chart is
drawn from the summary's protected figures (``Summary.released``, bot/summaries/disclosure.py): a withheld
count is drawn as withheld, never as its value.
"""

from __future__ import annotations

import io
import math
from datetime import datetime
from typing import Protocol

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from bot.pact.rules import WEEKDAYS, PactInsight
from bot.summaries.disclosure import MARK
from bot.summaries.model import Summary

_SIZE = (9, 5)
# Okabe and Ito's palette, distinguishable with any common colour-vision deficiency (its yellow
# is left out: too pale on white); "Other" is grey.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
OTHER_COLOUR = "#999999"
MAX_SERIES = 5  # a chart with more lines than this cannot be read: the rest are "Other"


def luminance(colour: object) -> float:
    """WCAG relative luminance of a colour."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in to_rgb(colour))  # type: ignore[arg-type]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_colour(background: object) -> str:
    """Black or white, whichever contrasts more with ``background`` (WCAG contrast ratio)."""
    lum = luminance(background)
    return "black" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "white"


def _integer_axis(ax: Axes) -> None:
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def png(figure: Figure) -> bytes:
    """Render to PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _empty(title: str) -> Figure:
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, "No data for this period", ha="center", va="center", fontsize=14)
    return figure


def _hidden_note(ax: Axes, threshold: int) -> None:
    ax.text(
        1.0,
        -0.22,
        f"{MARK}: withheld (below {threshold}, or would reveal such a count)",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7,
        color="grey",
    )


def trend_by_category(summary: Summary, *, suppressed: bool = True) -> Figure:
    """Tension reports per month by category, the trailing 12 months and this one; a withheld
    month is a gap in its line, marked at the foot of the chart, never a value."""
    title = f"Tension reports by category, to {summary.month}"
    if not any(sum(v) for v in summary.trend.values()):
        return _empty(title)
    released = summary.released(suppressed)
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    hidden = False
    for (name, counts), colour in zip(_series(released.trend), PALETTE, strict=False):
        ys = [math.nan if v is None else float(v) for v in counts]
        label = "Other" if name is None else summary.label(name)
        colour = OTHER_COLOUR if name is None else colour
        (drawn,) = ax.plot(summary.months, ys, marker="o", label=label, color=colour)
        for month, v in zip(summary.months, counts, strict=True):
            if v is None:
                hidden = True
                ax.annotate(
                    MARK,
                    (month, 0),
                    xycoords=("data", "axes fraction"),
                    textcoords="offset points",
                    xytext=(0, 2),
                    ha="center",
                    fontsize=6,
                    color=drawn.get_color(),
                )
    ax.set_ylim(bottom=0)
    _integer_axis(ax)
    ax.set_title(title)
    ax.set_ylabel("reports")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize="small", ncols=2)
    if hidden:
        _hidden_note(ax, released.threshold)
    return figure


def _series(
    trend: dict[str, list[int | None]],
) -> list[tuple[str | None, list[int | None]]]:
    """At most :data:`MAX_SERIES` lines: the largest categories by their published totals (a
    withheld point counts as 0, so the order tells nothing about it), the rest summed as
    "Other" (``None``), a point of which is withheld when any of its parts is."""
    order = sorted(trend, key=lambda c: (-sum(v or 0 for v in trend[c]), c))
    if len(order) <= MAX_SERIES:
        return [(c, trend[c]) for c in order]
    keep, rest = order[: MAX_SERIES - 1], order[MAX_SERIES - 1 :]
    other: list[int | None] = []
    for i in range(len(trend[rest[0]])):
        parts = [trend[c][i] for c in rest]
        other.append(None if None in parts else sum(int(p or 0) for p in parts))
    return [*((c, trend[c]) for c in keep), (None, other)]


def ward_category_heatmap(summary: Summary, *, suppressed: bool = True) -> Figure:
    """This month's reports, ward by category; a withheld cell is blank and hatched, labelled
    with the mark, and has no colour."""
    title = f"Tension reports by ward and category, {summary.month}"
    if not summary.matrix:
        return _empty(title)
    released = summary.released(suppressed)
    wards = sorted({w for w, _ in summary.matrix})
    categories = sorted({c for _, c in summary.matrix})
    cells = [[released.matrix.get((w, c), 0) for c in categories] for w in wards]
    grid = np.ma.masked_invalid([[math.nan if v is None else v for v in row] for row in cells])
    figure = Figure(figsize=(max(6, len(categories) * 0.9 + 3), max(3, len(wards) * 0.4 + 2)))
    ax = figure.subplots()
    cmap = colormaps["Blues"].with_extremes(bad="white")
    top = max([1, *(v for row in cells for v in row if v is not None)])
    norm = Normalize(vmin=0, vmax=top)
    image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(
        range(len(categories)),
        labels=[summary.label(c) for c in categories],
        rotation=45,
        ha="right",
    )
    ax.set_yticks(range(len(wards)), labels=wards)
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            if value is None:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", color="grey", lw=0)
                )
                ax.text(j, i, MARK, ha="center", va="center", fontsize=8)
            elif value:
                colour = text_colour(cmap(norm(value)))  # readable on dark cells and light
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8, color=colour)
    bar = figure.colorbar(image, ax=ax, label="reports")
    bar.locator = MaxNLocator(integer=True)  # whole counts, not a 0.0-1.0 scale
    bar.update_ticks()
    ax.set_title(title)
    if any(v is None for row in cells for v in row):
        _hidden_note(ax, released.threshold)
    return figure


def hate_crime_vs_tension(summary: Summary, *, suppressed: bool = True) -> Figure:
    """Hate crime (police figures) and tension reports by ward, this month; a withheld count is
    an empty hatched bar labelled with the mark."""
    title = f"Hate crime and tension reports by ward, {summary.month}"
    raw = {w: n for w, n, _ in summary.hate_crime}
    wards = [w for w in summary.tension_by_ward if raw.get(w) or summary.tension_by_ward[w]]
    if not wards:
        return _empty(title)
    released = summary.released(suppressed)
    crimes = {w: n for w, n, _ in released.hate_crime}
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    x = range(len(wards))
    hidden = False
    for offset, label, values, colour in (
        (-0.2, "hate crimes", [crimes.get(w, 0) for w in wards], PALETTE[1]),
        (0.2, "tension reports", [released.tension_by_ward[w] for w in wards], PALETTE[0]),
    ):
        bars = ax.bar(
            [i + offset for i in x],
            [v or 0 for v in values],
            width=0.4,
            label=label,
            color=colour,
            edgecolor=colour,
        )
        for bar, v in zip(bars, values, strict=True):
            if v is None:
                hidden = True
                bar.set_hatch("//")
                bar.set_fill(False)
        ax.bar_label(bars, labels=[MARK if v is None else "" for v in values], fontsize=7)
    ax.set_xticks(list(x), labels=wards, rotation=45, ha="right")
    _integer_axis(ax)
    ax.set_title(title)
    ax.legend()
    if hidden:
        _hidden_note(ax, released.threshold)
    return figure


def pact_attendance(insight: PactInsight) -> Figure:
    """PACT: attendance per meeting by neighbourhood, and attendance against each
    neighbourhood's usual by time slot, weekday and venue (1.0 = usual)."""
    title = f"PACT meetings, {insight.since} to {insight.until}"
    if insight.empty:
        return _empty(title)
    figure = Figure(figsize=(12, 8))
    (trend, slots), (days, venues) = figure.subplots(2, 2)
    for (name, points), colour in zip(_pact_series(insight), PALETTE, strict=False):
        trend.plot(
            [when for when, _ in points],
            [n for _, n in points],
            marker="o",
            label="Other" if name is None else insight.label("neighbourhood", name),
            color=OTHER_COLOUR if name is None else colour,
        )
    _integer_axis(trend)
    trend.set_title("Members of the public per meeting")
    trend.tick_params(axis="x", rotation=45)
    trend.legend(fontsize="small")
    for ax, group, name in (
        (slots, "slot", "time slot"),
        (days, "weekday", "weekday"),
        (venues, "venue", "venue"),
    ):
        rows = [r for r in insight.by.get(group, []) if r.relative is not None]
        labels = [WEEKDAYS[int(r.key)][:3] if group == "weekday" else r.key for r in rows]
        bars = ax.barh(labels, [r.relative or 0 for r in rows], color=PALETTE[0])
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.bar_label(bars, labels=[f"n={r.meetings}" for r in rows], fontsize=7, padding=2)
        ax.set_title(f"Attendance vs usual, by {name}")
        ax.set_xlabel("x the neighbourhood's mean")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _pact_series(
    insight: PactInsight, most: int = 5
) -> list[tuple[str | None, list[tuple[datetime, float]]]]:
    """At most ``most`` lines: the neighbourhoods with most attendance, and when there are more,
    the rest as one 'Other' line (``None``) of their mean attendance per meeting by month."""
    series = insight.trend()
    if len(series) <= most:
        return [(k, [(w, float(n)) for w, n in v]) for k, v in series.items()]
    ranked = sorted(series, key=lambda k: (-sum(n for _, n in series[k]), k))
    out: list[tuple[str | None, list[tuple[datetime, float]]]] = [
        (k, [(w, float(n)) for w, n in series[k]]) for k in ranked[: most - 1]
    ]
    months: dict[datetime, list[int]] = {}
    for k in ranked[most - 1 :]:
        for when, n in series[k]:
            month = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            months.setdefault(month, []).append(n)
    out.append((None, [(m, sum(v) / len(v)) for m, v in sorted(months.items())]))
    return out


def _pact(summary: Summary, *, suppressed: bool = True) -> Figure:
    # PACT head counts are not protected: see docs/DATA_PROTECTION.md.
    assert summary.pact is not None
    return pact_attendance(summary.pact)


class Chart(Protocol):
    """A chart builder: the summary's protected figures (or, for the system administrator's
    ``--no-suppress``, its raw ones) as a figure."""

    def __call__(self, summary: Summary, *, suppressed: bool = True) -> Figure: ...


CHARTS: dict[str, Chart] = {
    "trend_by_category.png": trend_by_category,
    "ward_by_category.png": ward_category_heatmap,
    "hate_crime_vs_tension.png": hate_crime_vs_tension,
}


def describe(name: str, summary: Summary) -> str:
    """Alt text for a chart (Slack's ``alt_txt``, at most 1,000 characters): what it shows,
    from the summary's protected figures only (a withheld figure is never described)."""
    released = summary.released()
    if name == "trend_by_category.png":
        drawn = _series(released.trend)
        names = ", ".join("Other" if c is None else summary.label(c) for c, _ in drawn)
        latest = "; ".join(
            f"{'Other' if c is None else summary.label(c)} {MARK if v[-1] is None else v[-1]}"
            for c, v in drawn
        )
        text = (
            f"Line chart of tension reports per {summary.unit} by category, "
            f"{summary.months[0]} to {summary.months[-1]}: {names}. Latest: {latest}. "
            f"{MARK} is withheld (a gap in its line)."
        )
    elif name == "ward_by_category.png":
        text = (
            f"Heat map of tension reports in {summary.month}, wards in rows and categories in "
            "columns, darker for more; each cell is labelled with its count, or "
            f"{MARK} where withheld. The same figures are in the summary's tables."
        )
    elif name == "hate_crime_vs_tension.png":
        crimes = "; ".join(f"{w} {MARK if n is None else n}" for w, n, _ in released.hate_crime[:5])
        text = (
            f"Bar chart of police-recorded hate crimes and tension reports by ward, "
            f"{summary.month}. Most hate crimes: {crimes or 'none'}."
        )
    elif name == "pact_attendance.png" and summary.pact is not None:
        text = pact_description(summary.pact)
    else:
        text = name.removesuffix(".png").replace("_", " ")
    return text[:1000]


def pact_description(insight: PactInsight) -> str:
    """Alt text for the PACT chart (head counts at public meetings: not protected)."""
    return (
        f"PACT meetings {insight.since} to {insight.until}: members of the public at each "
        "meeting by neighbourhood (line chart; beyond five, the rest as Other), and attendance against each neighbourhood's "
        "usual by time slot, weekday and venue (bar charts, 1.0 = usual, with the number of "
        "meetings behind each bar)."
    )


def charts_for(summary: Summary) -> dict[str, Chart]:
    """The charts a summary gets: the tension charts unless the period is empty, and the PACT
    chart when meetings were recorded."""
    out = {} if summary.empty else dict(CHARTS)
    if summary.pact is not None and not summary.pact.empty:
        out["pact_attendance.png"] = _pact
    return out
