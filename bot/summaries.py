"""Pure aggregation logic: the pockets-of-concern method (disclosure control: bot/disclosure.py).

**Pockets of concern.** For each ward, the count for the month under review is compared with that
ward's own trailing baseline: the mean of the previous 12 months. Under the hypothesis that
nothing has changed, the month's count is Poisson-distributed with that mean, so the chance of
seeing at least the observed count is the Poisson upper tail ``P(X >= observed | mean)``. A ward
is flagged when that chance is below ``alpha`` (default 0.01) *and* the count is at least
``min_count`` (default 3), so one or two reports in a usually quiet ward are not called a pocket.
Tension reports and hate crimes are tested separately; a ward flagged on both is the strongest
signal. A ward with no history (mean 0) is flagged once it reaches ``min_count``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def poisson_upper_tail(observed: int, mean: float) -> float:
    """P(X >= observed) for X ~ Poisson(mean)."""
    if observed <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    # 1 - P(X <= observed - 1), summed in log space for stability.
    term = math.exp(-mean)
    cdf = term
    for k in range(1, observed):
        term *= mean / k
        cdf += term
    return max(0.0, 1.0 - cdf)


@dataclass(frozen=True)
class Pocket:
    """A ward whose count is significantly above its own baseline."""

    ward: str
    source: str  # "tension reports" | "hate crime"
    observed: int
    baseline: float  # mean of the trailing months
    p_value: float


def pockets(
    observed: Mapping[str, int],
    history: Mapping[str, Sequence[int]],
    *,
    source: str,
    min_count: int = 3,
    alpha: float = 0.01,
) -> list[Pocket]:
    """Wards flagged by the method above, most significant first."""
    found = []
    for ward, count in observed.items():
        past = list(history.get(ward, ()))
        baseline = sum(past) / len(past) if past else 0.0
        if count < min_count:
            continue
        p = poisson_upper_tail(count, baseline)
        if p < alpha:
            found.append(Pocket(ward, source, count, round(baseline, 2), p))
    return sorted(found, key=lambda x: (x.p_value, -x.observed, x.ward))


def suppress(count: int, threshold: int = 3) -> str:
    """One count below the threshold as "<threshold" (0 stays 0). Primary suppression only: the
    summary's figures go through bot/disclosure.py, which also guards against differencing."""
    return f"<{threshold}" if 0 < count < threshold else str(count)
