"""The pockets-of-concern method on synthetic data with a known answer."""

from __future__ import annotations

import math
import random

from bot.summaries import pockets, poisson_upper_tail, suppress


def test_poisson_tail_matches_the_formula() -> None:
    mean = 2.5
    expected = 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(6))
    assert math.isclose(poisson_upper_tail(6, mean), expected, rel_tol=1e-12)
    assert poisson_upper_tail(0, 3.0) == 1.0
    assert poisson_upper_tail(3, 0.0) == 0.0


def test_a_planted_hotspot_is_found_and_calm_wards_are_not() -> None:
    rng = random.Random(2017)
    wards = [f"Ward {i}" for i in range(20)]

    def poisson(mean: float) -> int:  # Knuth's method: fine for small means
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1

    means = {w: 1.0 + (i % 5) for i, w in enumerate(wards)}  # calm wards, 1 to 5 a month
    history = {w: [poisson(means[w]) for _ in range(12)] for w in wards}
    observed = {w: poisson(means[w]) for w in wards}
    observed["Ward 7"] = 14  # planted: its usual mean is 3
    found = pockets(observed, history, source="tension reports")
    assert [p.ward for p in found] == ["Ward 7"]
    assert found[0].p_value < 0.001 and 2 <= found[0].baseline <= 4.5


def test_small_counts_are_not_pockets() -> None:
    # Two reports where there are usually none is surprising, but below the minimum count.
    assert pockets({"Park": 2}, {"Park": [0] * 12}, source="hate crime") == []
    assert [p.ward for p in pockets({"Park": 3}, {"Park": [0] * 12}, source="hate crime")] == [
        "Park"
    ]


def test_suppression() -> None:
    assert [suppress(n) for n in (0, 1, 2, 3, 10)] == ["0", "<3", "<3", "3", "10"]
    assert suppress(4, threshold=5) == "<5"
