"""Summary exports for the board report: Markdown, one CSV per table, one XLSX workbook, charts.

:func:`tables` and :func:`pact_tables` are plain rows; openpyxl and matplotlib are loaded by
:func:`write`, when the files are made."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.pact.rules import RESOLUTION_TARGET, PactInsight, resolution_rate
from bot.summaries.disclosure import MARK, return_rates
from bot.summaries.model import Summary
from handlers.files import cells


def tables(
    summary: Summary, suppressed: bool = True
) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the summary: name -> (header, rows), drawn from the protected figures
    (bot/summaries/disclosure.py: a withheld figure is written as its mark)."""
    r = summary.released(suppressed)

    def n(value: int | float | None) -> int | float | str:
        return MARK if value is None else value

    out: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for by, rows in r.breakdowns:
        out[f"tensions_by_{by}"] = (
            [by, "this_month", "previous_month", "same_month_last_year"],
            [[summary.row_label(by, k), n(a), n(p), n(y)] for k, a, p, y in rows],
        )
    # Return rate = (responded + nil) / reached (responded, nil, no reply); the second counts
    # the unreachable too. By ward a person in two wards is in both rows (the rows overlap).
    header = [
        "responded",
        "nil_return",
        "no_reply",
        "unreachable",
        "return_rate_of_reached",
        "return_rate_of_all_asked",
    ]

    def rated(v: list[int | None]) -> list[Any]:
        rates = return_rates(v[0], v[1], v[2], v[3])
        return [*map(n, v), *(n(None if x is None else round(x, 4)) for x in rates)]

    out["returns_by_role"] = (["role", *header], [[k, *rated(v)] for k, *v in r.returns_by_role])
    out["returns_by_ward"] = (
        ["ward_person_counted_in_each_of_their_wards", *header],
        [[k, *rated(v)] for k, *v in r.returns_by_ward],
    )
    out["actions_by_team"] = (
        [
            "team",
            "actions",
            "open",
            "overdue",
            "escalated",
            "median_hours_to_acknowledge",
            "median_hours_to_close",
        ],
        [[t, n(a), n(o), n(od), n(e), ack, cl] for t, a, o, od, e, ack, cl in r.actions],
    )
    out["hate_crime_by_strand"] = (
        ["strand", "this_month", "twelve_month_mean"],
        [
            [summary.label(s), n(c), n(None if m is None else round(m, 2))]
            for s, c, m in r.hate_crime_by_strand
        ],
    )
    out["hate_crime_by_ward"] = (
        ["ward", "this_month", "twelve_month_mean"],
        [[w, n(c), n(None if m is None else round(m, 2))] for w, c, m in r.hate_crime],
    )
    # For analysts: the figures and method behind each plain-English sentence (docs/STATISTICS.md).
    method = {
        "spike": "exact conditional test of this month against the baseline months' total "
        "(binomial; beta-binomial with the family's quasi-Poisson dispersion phi > 1), "
        "Benjamini-Hochberg across all the month's tests",
        "sustained": "the same test of the last three months' total against the 12 observed "
        "months before them, each of the three above the baseline mean",
    }
    out["pockets_of_concern"] = (
        [
            "unit",
            "by",
            "source",
            "kind",
            "observed",
            "baseline_months",
            "baseline_mean",
            "p_value",
            "fdr_adjusted_p",
            "dispersion_phi",
            "false_discovery_rate",
            "method",
        ],
        [
            [
                p.ward,
                p.by,
                p.source,
                p.kind,
                n(observed),
                p.months,
                n(baseline),
                float(f"{p.p_value:.3g}") if baseline is not None else p_text,
                float(f"{p.q_value:.3g}")
                if baseline is not None and p.q_value is not None
                else p_text,
                p.dispersion,
                summary.false_discovery_rate,
                method.get(p.kind, ""),
            ]
            for p, observed, baseline, p_text in r.pockets
        ],
    )
    if summary.pact is not None:
        out.update(pact_tables(summary.pact))
    return out


def pact_tables(insight: PactInsight) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The PACT tables: every recorded meeting, attendance by group, and priorities."""
    out: dict[str, tuple[list[str], list[list[Any]]]] = {}
    out["pact_meetings"] = (
        [
            "neighbourhood",
            "starts_at",
            "weekday",
            "time_slot",
            "venue",
            "format",
            "public_attendees",
            "new_attendees",
            "partners_present",
            "partners_invited",
        ],
        [
            [
                insight.label("neighbourhood", m.neighbourhood),
                m.starts_at.isoformat(),
                insight.label("weekday", str(m.weekday)),
                m.slot,
                m.venue,
                insight.label("format", m.format),
                m.public,
                m.new,
                m.partners_present,
                m.partners_invited,
            ]
            for m in insight.meetings
        ],
    )
    for group, rows in insight.by.items():
        out[f"pact_by_{group}"] = (
            [
                group,
                "meetings",
                "mean_attendance",
                "attendance_vs_usual",
                "new_attendees",
                "public_attendees",
                "partners_present",
                "partners_invited",
            ],
            [
                [
                    insight.label(group, r.key),
                    r.meetings,
                    round(r.mean, 2),
                    None if r.relative is None else round(r.relative, 3),
                    r.new,
                    r.public,
                    r.partners_present,
                    r.partners_invited,
                ]
                for r in rows
            ],
        )
    model = insight.model()
    if model is not None:
        out["pact_model"] = (
            [
                "factor",
                "level",
                "reference",
                "meetings",
                "reference_meetings",
                "rate_ratio",
                "ci95_low",
                "ci95_high",
                "method",
                "dispersion",
            ],
            [
                [
                    r.factor,
                    insight.label(r.factor, r.level),
                    insight.label(r.factor, r.reference),
                    r.meetings,
                    r.reference_meetings,
                    round(r.ratio, 4),
                    round(r.low, 4),
                    round(r.high, 4),
                    model.method,
                    None if model.dispersion is None else round(model.dispersion, 3),
                ]
                for r in model.ratios
            ],
        )
    if insight.review is not None:
        out["pact_review"] = (
            [
                "measure",
                "changed_on",
                "meetings_before",
                "total_before",
                "meetings_after",
                "total_after",
                "rate_ratio",
                "ci95_low",
                "ci95_high",
            ],
            [
                [
                    "public_attendees" if c.measure == "public" else "new_attendees",
                    insight.review.changed.isoformat(),
                    c.before_meetings,
                    c.before_total,
                    c.after_meetings,
                    c.after_total,
                    *(None if v is None else round(v, 4) for v in (c.ratio, c.low, c.high)),
                ]
                for c in insight.review.comparisons
            ],
        )
    rate = resolution_rate(insight)
    out["pact_priorities"] = (
        ["set", "closed", "carried", "open_now", "resolved_of_set", "resolution_rate", "target"],
        [
            [
                *(insight.priorities.get(k, 0) for k in ("set", "closed", "carried", "open")),
                insight.priorities.get("resolved", 0),
                None if rate is None else round(rate, 4),
                RESOLUTION_TARGET,
            ]
        ],
    )
    return out


def write(summary: Summary, folder: Path, *, suppressed: bool = True) -> list[Path]:
    """Write everything into ``folder``; returns the files written."""
    from openpyxl import Workbook

    from handlers.files.charts import CHARTS, charts_for, png

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "summary.md"]
    written[0].write_text(summary.markdown(suppressed=suppressed))
    workbook = Workbook()
    first = True
    for name, (header, rows) in tables(summary, suppressed).items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as handle:
            writer = cells.csv_writer(handle)  # formula-like text is written as text
            writer.writerow(header)
            writer.writerows(rows)
        written.append(path)
        sheet = workbook.active if first else workbook.create_sheet()
        assert sheet is not None
        sheet.title = name[:31]
        _fill(sheet, header, rows)
        first = False
    xlsx = folder / f"tension-summary-{summary.month}.xlsx"
    workbook.save(xlsx)
    written.append(xlsx)
    for filename, build in {**CHARTS, **charts_for(summary)}.items():
        path = folder / filename
        path.write_bytes(png(build(summary, suppressed=suppressed)))
        written.append(path)
    return written


def _fill(sheet: Any, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells.append(sheet, header)
    for row in rows:
        cells.append(sheet, row)  # formula-like text is written as text, never a formula
