"""A summary's figures as composed from the SQL aggregates (no free text, no names), and its
Markdown, drawn from the protected figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.summaries.disclosure import MARK, Released, release, shown
from bot.summaries.stats import Pocket
from bot.summaries.text import (
    comparison,
    hours_cell,
    mean_cell,
    pocket_sentence,
    police_missing,
    returns_row,
    unfiltered,
)

if TYPE_CHECKING:
    from bot.pact.rules import PactInsight


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
            out.append(f"\n_{unfiltered(self.ward, self.category, self.unfiltered)}_")
        if self.empty:
            out.append("\nNo tension reports and no hate-crime figures for this period.")
            if not self.police_imported:
                out.append(f"\n{police_missing(self.month, self.unit)}")
            return "\n".join(out) + "\n" + self._pact_markdown()
        out.append(f"\nTension reports: **{n(r.total)}** ({comparison(self.unit, r)})")
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
            out += [returns_row(row) for row in r.returns_by_role]
            out.append(
                "\nBy ward: a person who covers two wards is counted in each ward's row, so the "
                "ward rows add up to more than the total."
            )
            out.append("\n| ward" + head)
            out += [returns_row(row) for row in r.returns_by_ward]
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
                f"| {t} | {n(a)} | {n(o)} | {n(od)} | {n(e)} | {hours_cell(ack)} | {hours_cell(cl)} |"
                for t, a, o, od, e, ack, cl in r.actions
            ]
        if r.hate_crime_by_strand:
            out.append(
                "\nHate crime by strand: "
                + ", ".join(
                    f"{self.label(s)} {n(c)} (12-month mean {mean_cell(m)})"
                    for s, c, m in r.hate_crime_by_strand
                )
            )
        if r.hate_crime:
            out.append(
                "\n## Hate crime by ward (police figures)\n\n| ward | this " + self.unit + " | "
                "12-month mean |\n|---|---:|---:|"
            )
            out += [f"| {w} | {n(c)} | {mean_cell(m)} |" for w, c, m in r.hate_crime]
        out.append("\n## Pockets of concern\n")
        if not self.police_imported:
            out.append(f"{police_missing(self.month, self.unit)}\n")
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
