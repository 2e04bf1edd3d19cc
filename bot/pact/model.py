"""PACT attendance modelled: a count regression of each meeting's attendance.

Each recorded meeting's public attendance is regressed on its neighbourhood, time slot, weekday
and format (a log-linear model, so each coefficient is a *rate ratio*: how many times the
attendance of the factor's reference level a level draws, the other factors held equal). The
model is Poisson unless the counts vary more than Poisson allows (Pearson's dispersion test at
5%), then negative binomial (NB2, its alpha estimated), whose intervals are wider and honest.

What is reported, and why:
- the reference level of each factor is its most frequent one (ties by name), so ratios read
  against the usual case;
- a level, or a reference, with fewer than :data:`bot.pact.rules.MIN_MEETINGS` meetings is kept in the
  fit (it still adjusts the others) but its ratio is not reported: five meetings give an
  interval too wide to say anything;
- a level that cannot be told apart from the levels before it (e.g. every Thursday meeting is
  an evening one) is left out of the design rather than given an arbitrary split.

statsmodels is imported inside :func:`fit`, so starting the bot does not load it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any

from bot.pact.rows import MIN_MEETINGS, MeetingRow

FACTORS = ("neighbourhood", "slot", "weekday", "format")
DISPERSION_ALPHA = 0.05  # Pearson's chi-squared test for overdispersion


@dataclass(frozen=True)
class RateRatio:
    """One level against its factor's reference: attendance ratio with a 95% interval."""

    factor: str
    level: str
    reference: str
    ratio: float
    low: float
    high: float
    meetings: int
    reference_meetings: int

    @property
    def clear(self) -> bool:
        """The interval excludes 1 (a difference the data support)."""
        return self.low > 1 or self.high < 1


@dataclass
class AttendanceModel:
    """The fitted model's reportable figures."""

    method: str  # "Poisson" or "negative binomial"
    meetings: int
    dispersion: float | None  # Pearson chi-squared / residual df of the Poisson fit
    ratios: list[RateRatio] = field(default_factory=list)
    aliased: list[tuple[str, str]] = field(default_factory=list)  # (factor, level) left out


def _level(m: MeetingRow, factor: str) -> str:
    return str(getattr(m, factor))


def _design(
    meetings: list[MeetingRow],
) -> tuple[list[list[float]], list[tuple[str, str, str]], dict[str, str], list[tuple[str, str]]]:
    """Intercept plus treatment dummies, dropping any column the earlier ones already span."""
    import numpy as np

    columns: list[list[float]] = [[1.0] * len(meetings)]
    names: list[tuple[str, str, str]] = []
    references: dict[str, str] = {}
    aliased: list[tuple[str, str]] = []
    for factor in FACTORS:
        counts: dict[str, int] = {}
        for m in meetings:
            counts[_level(m, factor)] = counts.get(_level(m, factor), 0) + 1
        if len(counts) < 2:
            continue
        reference = min(counts, key=lambda k: (-counts[k], k))
        references[factor] = reference
        for level in sorted(counts):
            if level == reference:
                continue
            column = [1.0 if _level(m, factor) == level else 0.0 for m in meetings]
            trial = np.array([*columns, column]).T
            if np.linalg.matrix_rank(trial) < len(columns) + 1:
                aliased.append((factor, level))
                continue
            columns.append(column)
            names.append((factor, level, reference))
    return columns, names, references, aliased


def fit(meetings: list[MeetingRow]) -> AttendanceModel | None:
    """Fit the model; ``None`` when there are too few meetings to leave a residual degree of
    freedom or nothing to compare."""
    import numpy as np
    import statsmodels.api as sm  # loaded only when a PACT insight is made
    from scipy import stats

    if len(meetings) < 2:
        return None
    columns, names, _references, aliased = _design(meetings)
    if not names or len(meetings) <= len(columns):
        return None
    x = np.array(columns).T
    y = np.array([m.public for m in meetings], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the checks below decide
        poisson = sm.GLM(y, x, family=sm.families.Poisson()).fit()
        dispersion = float(poisson.pearson_chi2 / poisson.df_resid)
        overdispersed = stats.chi2.sf(poisson.pearson_chi2, poisson.df_resid) < DISPERSION_ALPHA
        result: Any = poisson
        method = "Poisson"
        if overdispersed:
            nb = sm.NegativeBinomial(y, x).fit(disp=0, maxiter=200)
            if nb.mle_retvals.get("converged", False):
                result, method = nb, "negative binomial"
            else:  # fall back to quasi-Poisson: Poisson estimates, intervals widened
                result, method = (
                    sm.GLM(y, x, family=sm.families.Poisson()).fit(scale="X2"),
                    "quasi-Poisson",
                )
    params = np.asarray(result.params)
    bounds = np.asarray(result.conf_int(alpha=0.05))
    counts = {
        (factor, level): sum(1 for m in meetings if _level(m, factor) == level)
        for factor in FACTORS
        for level in {_level(m, factor) for m in meetings}
    }
    model = AttendanceModel(method, len(meetings), dispersion, aliased=aliased)
    for i, (factor, level, reference) in enumerate(names, start=1):
        n, n_ref = counts[(factor, level)], counts[(factor, reference)]
        if n < MIN_MEETINGS or n_ref < MIN_MEETINGS:
            continue
        low, high = bounds[i]
        if not all(math.isfinite(v) for v in (params[i], low, high)):
            continue
        model.ratios.append(
            RateRatio(
                factor,
                level,
                reference,
                math.exp(params[i]),
                math.exp(low),
                math.exp(high),
                n,
                n_ref,
            )
        )
    return model


@dataclass(frozen=True)
class Comparison:
    """One measure per meeting, before and after a change: the ratio of the means with an
    exact 95% interval."""

    measure: str  # "public" (total attendance) or "new" (new attendees)
    before_meetings: int
    before_total: int
    after_meetings: int
    after_total: int
    ratio: float | None
    low: float | None
    high: float | None

    @property
    def before_mean(self) -> float | None:
        """Per meeting before the change."""
        return self.before_total / self.before_meetings if self.before_meetings else None

    @property
    def after_mean(self) -> float | None:
        """Per meeting after the change."""
        return self.after_total / self.after_meetings if self.after_meetings else None


@dataclass(frozen=True)
class Review:
    """Attendance before and after a change (a new venue, time or format) on ``changed``."""

    changed: date
    comparisons: list[Comparison]


def rate_ratio(
    after_total: int, after_n: int, before_total: int, before_n: int
) -> tuple[float | None, float | None, float | None]:
    """The Poisson rate ratio (after per meeting over before per meeting) and its exact 95%
    interval, conditional on the total: after_total ~ Binomial(total, p) with
    p = after_n r / (after_n r + before_n), Clopper-Pearson for p, mapped back to r."""
    from scipy import stats

    if not after_n or not before_n:
        return None, None, None
    total = after_total + before_total
    if total == 0:
        return None, None, None
    scale = before_n / after_n

    def to_ratio(p: float) -> float:
        return math.inf if p >= 1 else p / (1 - p) * scale

    p_low = 0.0 if after_total == 0 else float(stats.beta.ppf(0.025, after_total, before_total + 1))
    p_high = (
        1.0 if before_total == 0 else float(stats.beta.ppf(0.975, after_total + 1, before_total))
    )
    ratio = to_ratio(after_total / total) if before_total else math.inf
    return ratio, to_ratio(p_low), to_ratio(p_high)


def before_after(meetings: list[MeetingRow], changed: date, tz: tzinfo | None = None) -> Review:
    """Total attendance and new attendees per meeting before ``changed`` (local date) and from
    it on, each with the rate ratio after/before and its exact 95% interval."""
    before = [m for m in meetings if m.starts_at.astimezone(tz).date() < changed]
    after = [m for m in meetings if m.starts_at.astimezone(tz).date() >= changed]
    comparisons = []
    for measure in ("public", "new"):
        b = sum(getattr(m, measure) for m in before)
        a = sum(getattr(m, measure) for m in after)
        ratio, low, high = rate_ratio(a, len(after), b, len(before))
        comparisons.append(Comparison(measure, len(before), b, len(after), a, ratio, low, high))
    return Review(changed, comparisons)


def review_findings(review: Review) -> list[str]:
    """The before/after review in plain English."""
    out = []
    for c in review.comparisons:
        what = "attendance" if c.measure == "public" else "new attendees"
        if c.before_meetings == 0 or c.after_meetings == 0:
            out.append(
                f"Before and after {review.changed:%d %B %Y}: no {what} comparison "
                f"({c.before_meetings} meetings before, {c.after_meetings} after)."
            )
            continue
        head = (
            f"Since {review.changed:%d %B %Y}, {what} per meeting was {c.after_mean:.1f} "
            f"over {c.after_meetings} meetings, against {c.before_mean:.1f} over "
            f"{c.before_meetings} before"
        )
        if c.ratio is None or c.low is None or c.high is None or not math.isfinite(c.high):
            out.append(head + ".")
            continue
        verdict = (
            "a clear rise" if c.low > 1 else "a clear fall" if c.high < 1 else "no clear change"
        )
        out.append(
            f"{head}: {c.ratio:.2f} times (95% interval {c.low:.2f} to {c.high:.2f}), {verdict}."
        )
    return out
