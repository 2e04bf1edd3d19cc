"""Charts for summaries, as PNG bytes (matplotlib's object API: no pyplot, no global state).

Builders return a ``Figure`` (so tests can inspect its series); :func:`png` renders one. An empty
period gets a figure that says so instead of empty axes.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib.figure import Figure

from bot.pact import WEEKDAYS, PactInsight
from bot.services.summary import Summary

_SIZE = (9, 5)


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


def trend_by_category(summary: Summary) -> Figure:
    """Tension reports per month by category, the trailing 12 months and this one."""
    title = f"Tension reports by category, to {summary.month}"
    if not any(sum(v) for v in summary.trend.values()):
        return _empty(title)
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    for category, counts in summary.trend.items():
        ax.plot(summary.months, counts, marker="o", label=category)
    ax.set_title(title)
    ax.set_ylabel("reports")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize="small", ncols=2)
    return figure


def ward_category_heatmap(summary: Summary) -> Figure:
    """This month's reports, ward by category."""
    title = f"Tension reports by ward and category, {summary.month}"
    if not summary.matrix:
        return _empty(title)
    wards = sorted({w for w, _ in summary.matrix})
    categories = sorted({c for _, c in summary.matrix})
    grid = [[summary.matrix.get((w, c), 0) for c in categories] for w in wards]
    figure = Figure(figsize=(max(6, len(categories) * 0.9 + 3), max(3, len(wards) * 0.4 + 2)))
    ax = figure.subplots()
    image = ax.imshow(grid, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(categories)), labels=categories, rotation=45, ha="right")
    ax.set_yticks(range(len(wards)), labels=wards)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=ax, label="reports")
    ax.set_title(title)
    return figure


def hate_crime_vs_tension(summary: Summary) -> Figure:
    """Hate crime (police figures) and tension reports by ward, this month."""
    title = f"Hate crime and tension reports by ward, {summary.month}"
    crimes = {w: n for w, n, _ in summary.hate_crime}
    wards = [w for w in summary.tension_by_ward if crimes.get(w) or summary.tension_by_ward[w]]
    if not wards:
        return _empty(title)
    figure = Figure(figsize=_SIZE)
    ax = figure.subplots()
    x = range(len(wards))
    ax.bar([i - 0.2 for i in x], [crimes.get(w, 0) for w in wards], width=0.4, label="hate crimes")
    ax.bar(
        [i + 0.2 for i in x],
        [summary.tension_by_ward[w] for w in wards],
        width=0.4,
        label="tension reports",
    )
    ax.set_xticks(list(x), labels=wards, rotation=45, ha="right")
    ax.set_title(title)
    ax.legend()
    return figure


def pact_attendance(insight: PactInsight) -> Figure:
    """PACT: attendance per meeting by neighbourhood, and attendance against each
    neighbourhood's usual by time slot, weekday and venue (1.0 = usual)."""
    title = f"PACT meetings, {insight.since} to {insight.until}"
    if insight.empty:
        return _empty(title)
    figure = Figure(figsize=(12, 8))
    (trend, slots), (days, venues) = figure.subplots(2, 2)
    for key, points in insight.trend().items():
        trend.plot(
            [when for when, _ in points],
            [n for _, n in points],
            marker="o",
            label=insight.label("neighbourhood", key),
        )
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
        bars = ax.barh(labels, [r.relative or 0 for r in rows], color="tab:blue")
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.bar_label(bars, labels=[f"n={r.meetings}" for r in rows], fontsize=7, padding=2)
        ax.set_title(f"Attendance vs usual, by {name}")
        ax.set_xlabel("x the neighbourhood's mean")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _pact(summary: Summary) -> Figure:
    assert summary.pact is not None
    return pact_attendance(summary.pact)


CHARTS: dict[str, Callable[[Summary], Figure]] = {
    "trend_by_category.png": trend_by_category,
    "ward_by_category.png": ward_category_heatmap,
    "hate_crime_vs_tension.png": hate_crime_vs_tension,
}


def charts_for(summary: Summary) -> dict[str, Callable[[Summary], Figure]]:
    """The charts a summary gets: the tension charts unless the period is empty, and the PACT
    chart when meetings were recorded."""
    out = {} if summary.empty else dict(CHARTS)
    if summary.pact is not None and not summary.pact.empty:
        out["pact_attendance.png"] = _pact
    return out
