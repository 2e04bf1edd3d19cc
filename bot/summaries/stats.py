"""Pure aggregation logic: the pockets-of-concern method (disclosure control: bot/summaries/disclosure.py).

**Pockets of concern** (docs/STATISTICS.md has the method at length and its false-alarm rate
under simulation). Each ward's, category's and hate-crime strand's count this month is tested
against its own history:

- **The baseline is an estimate, not a known mean.** The month's count ``y`` is compared with
  the total ``H`` of the unit's previous 12 *observed* months (``n`` of them; a month with no
  figures is missing, not 0) by the exact conditional test: if nothing has changed, given
  ``T = y + H`` the count ``y`` is binomial with ``T`` trials and probability ``1 / (n + 1)``.
  The p-value is ``P(Y >= y)``; a unit with no history is not "p = 0", just a small ``T``.
- **Overdispersion.** Monthly counts vary more than a Poisson count would (one incident brings
  several reports). The dispersion ``phi`` (variance = ``phi`` x mean, quasi-Poisson) is
  estimated across all the units of a family (tension reports by ward, hate crimes by strand,
  ...) from their baseline months (Pearson's chi-square over its degrees of freedom). With a
  gamma-distributed monthly rate of that variance (negative binomial counts), the conditional
  distribution is beta-binomial ``(T, a, n a)`` with ``a = mean / (phi - 1)``; with no excess
  variation the test is the binomial one.
- **Sustained rises.** The last three months' total against the 12 observed months before them
  (beta-binomial ``(T, 3a, n a)``), flagged only when each of the three is above the usual
  (a scan over a three-month window, which finds a steady rise a one-month test misses).
- **False discovery rate.** All the tests of a month (every family, spikes and sustained rises)
  together are controlled by Benjamini-Hochberg at ``q`` (``summaries.false_discovery_rate``);
  a unit is flagged when its adjusted p-value is at most ``q`` *and* its count is at least
  ``min_count`` (one or two reports are never called a pocket).

SciPy is imported inside the functions that need it, so the running service does not load it
until a summary is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BASELINE_MONTHS = 12
SUSTAINED_MONTHS = 3
MIN_HISTORY = 3  # fewer observed baseline months than this: no test (nothing to compare with)


@dataclass(frozen=True)
class Series:
    """One unit's monthly counts, oldest first, the month under review last; ``None``: missing
    (not imported, or before records began), never treated as 0."""

    source: str  # "tension reports" | "hate crimes"
    by: str  # "ward" | "category" | "strand"
    name: str
    counts: Sequence[int | None]


@dataclass(frozen=True)
class Pocket:
    """A unit whose count is significantly above its own baseline."""

    ward: str  # the unit's name: a ward, a category or a strand (see ``by``)
    source: str  # "tension reports" | "hate crimes"
    observed: int  # this month (a sustained rise: the last three months' total)
    baseline: float  # mean per observed month of the baseline months
    p_value: float  # the one-sided exact conditional p-value
    by: str = "ward"
    kind: str = "spike"  # "spike" (this month) | "sustained" (three months running)
    months: int = BASELINE_MONTHS  # observed baseline months
    q_value: float | None = None  # Benjamini-Hochberg adjusted p-value
    dispersion: float = 1.0  # the family's estimated phi (1: Poisson)


@dataclass(frozen=True)
class Test:
    """One test of a month, flagged or not (the exports list the flagged ones)."""

    series: Series
    kind: str
    observed: int
    baseline_total: int
    months: int
    p_value: float
    dispersion: float
    above: bool  # every month under review above the baseline's mean


def dispersion(series: Sequence[Series], window: int = 1) -> float:
    """The dispersion ``phi`` of a family (variance = phi x mean, quasi-Poisson): Pearson's
    chi-square of each unit's observed baseline months about its own mean, over their degrees
    of freedom, pooled across the family's units; 1 (Poisson) when there is no excess."""
    chi2 = 0.0
    df = 0
    for s in series:
        base = [c for c in _baseline(s.counts, window) if c is not None]
        n = len(base)
        mean = sum(base) / n if n else 0.0
        if n < 2 or mean <= 0:
            continue
        chi2 += sum((c - mean) ** 2 for c in base) / mean
        df += n - 1
    return max(1.0, chi2 / df) if df else 1.0


def _baseline(counts: Sequence[int | None], window: int) -> Sequence[int | None]:
    """The 12 months before the last ``window`` months."""
    end = len(counts) - window
    return counts[max(0, end - BASELINE_MONTHS) : end]


def p_value(observed: int, baseline_total: int, months: int, window: int, phi: float) -> float:
    """P(Y >= observed) for the exact conditional test: ``window`` months under review against
    ``months`` baseline months, with dispersion ``phi`` (1: Poisson). With ``phi > 1`` each
    month's rate is gamma-distributed with the unit's mean and variance ``(phi - 1) x mean``,
    so given the total the count is beta-binomial ``(T, window a, months a)``, ``a`` being the
    mean (estimated under the null, ``T / (months + window)``) over ``phi - 1``."""
    from scipy import stats  # loaded only when a summary is made

    if observed <= 0:
        return 1.0
    total = observed + baseline_total
    if phi <= 1.0:
        return float(stats.binom.sf(observed - 1, total, window / (window + months)))
    a = total / (months + window) / (phi - 1.0)
    return float(stats.betabinom.sf(observed - 1, total, window * a, months * a))


def p_values(
    observed: Sequence[int],
    baseline_totals: Sequence[int],
    months: Sequence[int],
    windows: Sequence[int],
    phis: Sequence[float],
) -> list[float]:
    """:func:`p_value` for many tests at once: one SciPy call for the binomial tests and one
    for the beta-binomial ones over arrays, instead of one call per test (SciPy's argument
    checking, not the arithmetic, is most of a call's cost). Element by element the same
    formula and the same SciPy functions, so each result is the one :func:`p_value` gives."""
    import numpy as np
    from scipy import stats  # loaded only when a summary is made

    y = np.asarray(observed, dtype=np.int64)
    base = np.asarray(baseline_totals, dtype=np.int64)
    n = np.asarray(months, dtype=np.int64)
    w = np.asarray(windows, dtype=np.int64)
    phi = np.asarray(phis, dtype=np.float64)
    out = np.ones(len(y), dtype=np.float64)  # nothing observed: p = 1
    total = y + base
    binomial = (y > 0) & (phi <= 1.0)
    if binomial.any():
        t, k, m = total[binomial], w[binomial], n[binomial]
        out[binomial] = stats.binom.sf(y[binomial] - 1, t, k / (k + m))
    beta = (y > 0) & (phi > 1.0)
    if beta.any():
        t, k, m = total[beta], w[beta], n[beta]
        a = t / (m + k) / (phi[beta] - 1.0)
        out[beta] = stats.betabinom.sf(y[beta] - 1, t, k * a, m * a)
    return [float(x) for x in out]


def tests(series: Sequence[Series], window: int = 1) -> list[Test]:
    """Every test of a period: a spike test per unit of the last ``window`` months together
    (1: a month; 3: a quarter; 12: a year) and, for a month, a sustained-rise test (when the
    months under review are all observed and there is enough history). The p-values are
    computed together at the end (:func:`p_values`)."""
    families: dict[tuple[str, str], list[Series]] = {}
    for s in series:
        families.setdefault((s.source, s.by), []).append(s)
    # (series, kind, observed, baseline total, baseline months, span, phi, above)
    pending: list[tuple[Series, str, int, int, int, int, float, bool]] = []
    for family in families.values():
        k = dispersion(family, window)
        for s in family:
            kinds = [("spike", window)]
            if window == 1:
                kinds.append(("sustained", SUSTAINED_MONTHS))
            for kind, span in kinds:
                recent = list(s.counts[len(s.counts) - span :])
                base = [c for c in _baseline(s.counts, span) if c is not None]
                if len(recent) < span or None in recent or len(base) < MIN_HISTORY:
                    continue
                mean = sum(base) / len(base)
                above = all(c is not None and c > mean for c in recent)
                y = sum(c for c in recent if c is not None)
                pending.append((s, kind, y, sum(base), len(base), span, k, above))
    if not pending:
        return []
    ps = p_values(
        [t[2] for t in pending],
        [t[3] for t in pending],
        [t[4] for t in pending],
        [t[5] for t in pending],
        [t[6] for t in pending],
    )
    return [
        Test(s, kind, y, total, months, p, k, above)
        for (s, kind, y, total, months, _, k, above), p in zip(pending, ps, strict=True)
    ]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (SciPy's ``false_discovery_control``)."""
    if not p_values:
        return []
    from scipy import stats

    return [float(x) for x in stats.false_discovery_control(list(p_values), method="bh")]


def find_pockets(
    series: Sequence[Series], *, q: float = 0.05, min_count: int = 3, window: int = 1
) -> list[Pocket]:
    """The units flagged by the method above, most significant first (``window``: the months
    under review, the last of each series)."""
    found = tests(series, window)
    # Every test counts in the family, flagged or not; the further conditions (enough
    # reports, above the usual in each month) only remove flags, so the control still holds.
    adjusted = benjamini_hochberg([t.p_value for t in found])
    out = []
    for t, adj in zip(found, adjusted, strict=True):
        if adj <= q and t.observed >= min_count and t.above:
            out.append(
                Pocket(
                    t.series.name,
                    t.series.source,
                    t.observed,
                    round(t.baseline_total / t.months, 2),
                    t.p_value,
                    by=t.series.by,
                    kind=t.kind,
                    months=t.months,
                    q_value=adj,
                    dispersion=round(t.dispersion, 3),
                )
            )
    return sorted(out, key=lambda x: (x.p_value, -x.observed, x.ward, x.kind))


def km_median(events: Sequence[float], censored: Sequence[float]) -> float | None:
    """The Kaplan-Meier median of durations, ``censored`` ones still running (an action not
    yet acknowledged counts for as long as it has been open, not left out, which would bias
    the median low): the first time the estimated share still waiting falls to one half or
    below; ``None`` when it never does (fewer than half have happened) or there is nothing."""
    if not events:
        return None
    from scipy import stats

    result = stats.ecdf(stats.CensoredData(uncensored=list(events), right=list(censored)))
    for time, waiting in zip(result.sf.quantiles, result.sf.probabilities, strict=True):
        if waiting <= 0.5 + 1e-12:
            return float(time)
    return None


def suppress(count: int, threshold: int = 3) -> str:
    """One count below the threshold as "<threshold" (0 stays 0). Primary suppression only: the
    summary's figures go through bot/summaries/disclosure.py, which also guards against differencing."""
    return f"<{threshold}" if 0 < count < threshold else str(count)
