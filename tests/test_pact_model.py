"""The PACT attendance model (bot/pact/model.py) against meetings simulated from known ratios."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np

from bot.pact.model import before_after, fit, review_findings
from bot.pact.rules import MeetingRow, PactInsight, findings, markdown
from handlers.files.spreadsheets import pact_tables


def _meetings(
    rng: np.random.Generator,
    n: int,
    *,
    hoods: dict[str, float],
    slots: dict[str, float],
    formats: dict[str, float],
    base: float,
    shape: float | None = None,
) -> list[MeetingRow]:
    """Meetings whose mean attendance is base x the hood, slot and format ratios; Poisson, or
    gamma-Poisson (negative binomial) with the given shape when one is given."""
    out = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        hood = list(hoods)[i % len(hoods)]
        slot = list(slots)[(i // len(hoods)) % len(slots)]
        fmt = list(formats)[int(rng.integers(len(formats)))]
        mean = base * hoods[hood] * slots[slot] * formats[fmt]
        if shape is not None:
            mean = rng.gamma(shape, mean / shape)
        out.append(
            MeetingRow(
                id=i,
                neighbourhood=hood,
                starts_at=start + timedelta(days=7 * i),
                venue=f"{hood} hall",
                format=fmt,
                weekday=int(rng.integers(2)) * 3,  # Monday or Thursday, no effect
                slot=slot,
                public=int(rng.poisson(mean)),
                new=0,
                partners_invited=0,
                partners_present=0,
            )
        )
    return out


def _ratio(model_ratios: list, factor: str, level: str):  # type: ignore[no-untyped-def]
    return next(r for r in model_ratios if (r.factor, r.level) == (factor, level))


def test_simulated_rate_ratios_lie_within_the_reported_intervals() -> None:
    """Evening meetings draw 1.5 times the afternoon's, online ones 0.6 times in person, Penn
    0.4 times Heath Town: each true ratio lies in its reported 95% interval."""
    rng = np.random.default_rng(20261129)
    meetings = _meetings(
        rng,
        120,
        hoods={"heath-town": 1.0, "penn": 0.4},
        slots={"afternoon": 1.0, "evening": 1.5},
        formats={"in_person": 1.0, "online": 0.6},
        base=20,
    )
    model = fit(meetings)
    assert model is not None and model.method == "Poisson"
    for factor, level, truth in (
        ("slot", "evening", 1.5),
        ("format", "online", 0.6),
        ("neighbourhood", "penn", 0.4),
    ):
        r = _ratio(model.ratios, factor, level)
        assert r.low < truth < r.high, (factor, r)
        assert r.low < r.ratio < r.high
    weekday = _ratio(model.ratios, "weekday", "3")
    assert weekday.low < 1 < weekday.high and not weekday.clear


def test_overdispersed_meetings_get_a_negative_binomial_model_with_honest_intervals() -> None:
    rng = np.random.default_rng(7)
    meetings = _meetings(
        rng,
        150,
        hoods={"heath-town": 1.0, "penn": 0.5},
        slots={"afternoon": 1.0, "evening": 2.0},
        formats={"in_person": 1.0},
        base=15,
        shape=3.0,
    )
    model = fit(meetings)
    assert model is not None and model.method == "negative binomial"
    assert model.dispersion is not None and model.dispersion > 1.5
    r = _ratio(model.ratios, "slot", "evening")
    assert r.low < 2.0 < r.high


def test_a_one_factor_ratio_matches_the_closed_form() -> None:
    """One neighbourhood, one weekday, one format: the Poisson rate ratio of evening to
    afternoon is the ratio of the mean attendances, its 95% Wald interval
    exp(log ratio +- 1.96 sqrt(1/total_evening + 1/total_afternoon))."""
    rng = np.random.default_rng(3)
    meetings = [
        MeetingRow(
            id=i,
            neighbourhood="penn",
            starts_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=7 * i),
            venue="Penn hall",
            format="in_person",
            weekday=3,
            slot="evening" if i % 3 == 0 else "afternoon",
            public=int(rng.poisson(30 if i % 3 == 0 else 20)),
            new=0,
            partners_invited=0,
            partners_present=0,
        )
        for i in range(30)
    ]
    model = fit(meetings)
    assert model is not None and model.method == "Poisson"
    evening = [m.public for m in meetings if m.slot == "evening"]
    afternoon = [m.public for m in meetings if m.slot == "afternoon"]
    ratio = (sum(evening) / len(evening)) / (sum(afternoon) / len(afternoon))
    half = 1.959963984540054 * math.sqrt(1 / sum(evening) + 1 / sum(afternoon))
    (r,) = model.ratios
    assert (r.factor, r.level, r.reference) == ("slot", "evening", "afternoon")
    assert math.isclose(r.ratio, ratio, rel_tol=1e-6)
    assert math.isclose(r.low, ratio * math.exp(-half), rel_tol=1e-5)
    assert math.isclose(r.high, ratio * math.exp(half), rel_tol=1e-5)


def test_levels_with_fewer_than_five_meetings_are_not_reported_and_the_insight_says_it_plainly() -> (
    None
):
    rng = np.random.default_rng(11)
    meetings = _meetings(
        rng,
        60,
        hoods={"heath-town": 1.0},
        slots={"afternoon": 1.0, "evening": 2.0},
        formats={"in_person": 1.0},
        base=20,
    )
    # Four street briefings: in the fit, never reported.
    meetings[:4] = [replace(m, format="street_briefing") for m in meetings[:4]]
    insight = PactInsight("2026-01", "2026-12", None, meetings=meetings)
    model = insight.model()
    assert model is not None
    assert {r.factor for r in model.ratios} == {"slot", "weekday"}  # no format: too few
    r = _ratio(model.ratios, "slot", "evening")
    text = "\n".join(findings(insight))
    assert (
        f"Evening meetings drew {r.ratio:.1f} times the attendance of afternoon ones in the "
        f"same neighbourhood (95% interval {r.low:.1f} to {r.high:.1f})." in text
    )
    assert "street briefing" not in text
    md = markdown(insight)
    assert f"| time slot | evening | afternoon | {r.meetings} | {r.ratio:.2f} |" in md
    header, rows = pact_tables(insight)["pact_model"]
    assert header[:8] == [
        "factor", "level", "reference", "meetings", "reference_meetings", "rate_ratio",
        "ci95_low", "ci95_high",
    ]  # fmt: skip
    assert rows[0] == (
        [
            "slot", "evening", "afternoon", r.meetings, r.reference_meetings,
            round(r.ratio, 4), round(r.low, 4), round(r.high, 4), "Poisson",
            round(model.dispersion or 0, 3),
        ]
    )  # fmt: skip


def test_a_level_that_cannot_be_told_apart_is_left_out_not_split() -> None:
    """Every Thursday meeting is an evening one: the weekday is aliased with the slot."""
    rng = np.random.default_rng(5)
    meetings = [
        MeetingRow(
            id=i,
            neighbourhood="penn",
            starts_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=7 * i),
            venue="Penn hall",
            format="in_person",
            weekday=3 if i % 2 else 5,
            slot="evening" if i % 2 else "afternoon",
            public=int(rng.poisson(20)),
            new=0,
            partners_invited=0,
            partners_present=0,
        )
        for i in range(20)
    ]
    model = fit(meetings)
    assert model is not None
    assert [(r.factor, r.level) for r in model.ratios] == [("slot", "evening")]
    assert model.aliased == [("weekday", "5")]


def test_too_few_meetings_give_no_model() -> None:
    rng = np.random.default_rng(1)
    assert fit([]) is None
    one_level = _meetings(
        rng, 10, hoods={"penn": 1.0}, slots={"evening": 1.0}, formats={"online": 1.0}, base=5
    )
    assert fit([replace(m, weekday=3) for m in one_level]) is None  # nothing to compare


def test_a_planted_change_is_found_before_and_after_with_exact_intervals() -> None:
    """From 1 September meetings draw twice the public (10 -> 20 a meeting) and three times the
    newcomers (1 -> 3): the review's ratios hold the truth, and match the exact interval
    recomputed here from scipy's binomial test (conditional on the total)."""
    from scipy.stats import binomtest

    rng = np.random.default_rng(42)
    start = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    meetings = []
    for i in range(24):
        at = start + timedelta(days=14 * i)
        after = at.date() >= date(2026, 9, 1)
        meetings.append(
            MeetingRow(
                id=i, neighbourhood="penn", starts_at=at, venue="Penn hall", format="in_person",
                weekday=at.weekday(), slot="evening",
                public=int(rng.poisson(20 if after else 10)), new=int(rng.poisson(3 if after else 1)),
                partners_invited=0, partners_present=0,
            )
        )  # fmt: skip
    review = before_after(meetings, date(2026, 9, 1), UTC)
    public, new = review.comparisons
    for c, truth in ((public, 2.0), (new, 3.0)):
        before = [getattr(m, c.measure) for m in meetings if m.starts_at.date() < date(2026, 9, 1)]
        after = [getattr(m, c.measure) for m in meetings if m.starts_at.date() >= date(2026, 9, 1)]
        assert (c.before_meetings, c.after_meetings) == (len(before), len(after)) == (14, 10)
        assert (c.before_total, c.after_total) == (sum(before), sum(after))
        assert c.ratio is not None and c.low is not None and c.high is not None
        assert c.low < truth < c.high
        assert math.isclose(c.ratio, (sum(after) / 10) / (sum(before) / 14))
        ci = binomtest(sum(after), sum(after) + sum(before)).proportion_ci(0.95, "exact")
        assert math.isclose(c.low, ci.low / (1 - ci.low) * 14 / 10, rel_tol=1e-9)
        assert math.isclose(c.high, ci.high / (1 - ci.high) * 14 / 10, rel_tol=1e-9)
    text = "\n".join(review_findings(review))
    assert (
        f"Since 01 September 2026, attendance per meeting was {public.after_mean:.1f} over 10 "
        f"meetings, against {public.before_mean:.1f} over 14 before: {public.ratio:.2f} times "
        f"(95% interval {public.low:.2f} to {public.high:.2f}), a clear rise." in text
    )
    insight = PactInsight("2026-03", "2027-01", None, meetings=meetings, review=review)
    _header, rows = pact_tables(insight)["pact_review"]
    assert rows[0][:6] == ["public_attendees", "2026-09-01", 14, public.before_total, 10,
                           public.after_total]  # fmt: skip
    assert f"| attendance | 14 | {public.before_mean:.1f} | 10 |" in markdown(insight)


def test_no_change_says_no_clear_change() -> None:
    rng = np.random.default_rng(9)
    start = datetime(2026, 1, 6, 18, 0, tzinfo=UTC)
    meetings = [
        MeetingRow(i, "penn", start + timedelta(days=7 * i), "hall", "in_person", 1, "evening",
                   int(rng.poisson(15)), int(rng.poisson(2)), 0, 0)
        for i in range(30)
    ]  # fmt: skip
    review = before_after(meetings, date(2026, 4, 1), UTC)
    assert all(c.low is not None and c.high is not None for c in review.comparisons)
    assert review.comparisons[0].low < 1 < review.comparisons[0].high  # type: ignore[operator]
    assert "no clear change" in review_findings(review)[0]


def test_the_pact_trend_chart_draws_at_most_five_lines_the_rest_as_other() -> None:
    """Seven neighbourhoods: the four with most attendance get a line each, the other three one
    'Other' line of their mean attendance per meeting, month by month."""
    from handlers.files.charts import pact_attendance

    start = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    meetings = [
        MeetingRow(
            100 * h + i, f"hood-{h}", start + timedelta(days=30 * i + h), "hall", "in_person",
            0, "evening", 10 * (7 - h) + i, 0, 0, 0,
        )
        for h in range(7)
        for i in range(3)
    ]  # fmt: skip
    insight = PactInsight("2026-01", "2026-03", None, meetings=meetings)
    trend = pact_attendance(insight).axes[0]
    lines = trend.get_lines()
    assert [line.get_label() for line in lines] == ["hood-0", "hood-1", "hood-2", "hood-3", "Other"]
    # Other: hoods 4, 5, 6 in each month, mean per meeting: (30 + 20 + 10) / 3 + i.
    assert list(lines[-1].get_ydata()) == [20.0, 21.0, 22.0]


def test_statsmodels_is_loaded_only_when_the_model_is_fitted() -> None:
    # The running service's idle memory must not grow by statsmodels: importing the application
    # and the PACT code loads none of it; fitting does.
    import subprocess
    import sys

    code = (
        "import sys, bot.app, bot.cli, bot.pact.rules, bot.pact.model, bot.pact.service, handlers.files.spreadsheets\n"
        "assert 'statsmodels' not in sys.modules, 'statsmodels loaded at import'\n"
        "from bot.pact.model import fit\n"
        "fit([])\n"
        "assert 'statsmodels' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
