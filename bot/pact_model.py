"""PACT attendance modelled: a count regression of each meeting's attendance.

Each recorded meeting's public attendance is regressed on its neighbourhood, time slot, weekday
and format (a log-linear model, so each coefficient is a *rate ratio*: how many times the
attendance of the factor's reference level a level draws, the other factors held equal). The
model is Poisson unless the counts vary more than Poisson allows (Pearson's dispersion test at
5%), then negative binomial (NB2, its alpha estimated), whose intervals are wider and honest.

What is reported, and why:
- the reference level of each factor is its most frequent one (ties by name), so ratios read
  against the usual case;
- a level, or a reference, with fewer than :data:`bot.pact.MIN_MEETINGS` meetings is kept in the
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
from typing import Any

from bot.pact import MIN_MEETINGS, MeetingRow

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
