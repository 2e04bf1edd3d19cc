"""The summary's sentences: comparisons, pockets of concern in plain English, and the cells of
its tables, all from the protected figures (bot/summaries/disclosure.py)."""

from __future__ import annotations

from bot.summaries.disclosure import MARK, Released, return_rates, shown
from bot.summaries.stats import Pocket


def unfiltered(ward: str | None, category: str | None, sections: list[str]) -> str:
    """Which sections a summary of one ward or category does not narrow to it."""
    scope = " and ".join(x for x in (ward, category) if x)
    return f"Not limited to {scope}: " + "; ".join(sections) + "."


def police_missing(month: str, unit: str = "month") -> str:
    """Why hate crime is not compared this period: the police figures are not in yet."""
    return (
        f"Police hate-crime figures for {month} have not been imported yet, so hate crimes "
        f"are not compared with the usual this {unit}."
    )


def comparison(unit: str, r: Released) -> str:
    """The total against the previous period and the same period last year."""
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


def returns_row(row: tuple[str, int | None, int | None, int | None, int | None]) -> str:
    """A return-rate table row in Markdown: the counts and both rates (withheld as the mark)."""
    key, *counts = row
    rates = return_rates(*counts)
    return f"| {key} | " + " | ".join([*map(shown, counts), *map(_percent, rates)]) + " |"


def _percent(rate: float | None) -> str:
    return MARK if rate is None else f"{100 * rate:.0f}%"


def hours_cell(value: float | None) -> str:
    """Working hours to one decimal; "–" when there is no median yet."""
    return "–" if value is None else f"{value:.1f}"


def mean_cell(value: float | None) -> str:
    """A 12-month mean to one decimal, or the mark when withheld."""
    return MARK if value is None else f"{value:.1f}"
