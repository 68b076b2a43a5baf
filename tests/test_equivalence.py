"""The equivalence labels against hand-computed intervals, and the seed-count arithmetic against simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from sae_mnist.equivalence import (Resolution, crossing_interval, crossings, probability_resolved, resolve,
                                   seeds_to_resolve)
from sae_mnist.stats import paired

MARGIN = 0.005
# t quantiles with 2 degrees of freedom (3 seeds), from tables: t_.975 = 4.302653, t_.95 = 2.919986.
T975, T95 = 4.302653, 2.919986


def _resolve(differences: list[float]):
    """KL − L1 given as per-seed differences (L1 at 0.1 on every seed, KL above or below it)."""
    l1 = np.full(len(differences), 0.1)
    return resolve(l1 + np.array(differences), l1, MARGIN)


def test_a_small_spread_around_a_small_difference_is_equivalent():
    # mean 0.002, sd 0.001, se 0.001/√3 = 5.7735e-4: 95% [-4.84e-4, 4.484e-3] holds 0; 90% [3.14e-4, 3.686e-3] in ±0.005
    r = _resolve([0.001, 0.002, 0.003])
    se = 0.001 / np.sqrt(3)
    assert r.label == "equivalent" and r.within_margin and r.n == 3
    assert r.ci_low == pytest.approx(0.002 - T975 * se, abs=1e-9) and r.ci_high == pytest.approx(0.002 + T975 * se)
    assert r.tost_low == pytest.approx(0.002 - T95 * se, abs=1e-9) and r.tost_high == pytest.approx(0.002 + T95 * se)
    assert r.ci_low == pytest.approx(-4.8414e-4, abs=1e-7) and r.tost_low == pytest.approx(3.1414e-4, abs=1e-7)


def test_an_interval_below_zero_is_kl_better_and_beyond_the_margin():
    # mean -0.012, sd 0.002: 95% [-0.016968, -0.007032]; 90% [-0.015372, -0.008628], outside the margin
    r = _resolve([-0.010, -0.012, -0.014])
    assert r.label == "KL better" and not r.within_margin
    assert r.ci_high == pytest.approx(-0.007032, abs=1e-6) and r.tost_low == pytest.approx(-0.015372, abs=1e-6)


def test_a_direction_wins_over_equivalence_and_says_it_is_within_the_margin():
    # mean 0.0015, sd 0.0005: 95% [0.000258, 0.002742] above 0, and inside the margin
    r = _resolve([0.001, 0.0015, 0.002])
    assert r.label == "L1 better" and r.within_margin
    assert r.ci_low == pytest.approx(0.0015 - T975 * 0.0005 / np.sqrt(3), abs=1e-9)


def test_a_wide_interval_around_zero_is_unresolved():
    # mean 0, sd 0.01: 95% ±0.02484 holds 0, 90% ±0.01686 is wider than the margin
    r = _resolve([-0.01, 0.0, 0.01])
    assert r.label == "unresolved" and not r.within_margin


def test_identical_differences_are_known_exactly():
    assert _resolve([-0.001] * 3).label == "KL better"
    assert _resolve([0.0] * 3).label == "equivalent"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        resolve(np.array([0.1]), np.array([0.1]), MARGIN)
    with pytest.raises(ValueError, match="margin must be positive"):
        resolve(np.array([0.1, 0.2]), np.array([0.1, 0.2]), 0.0)
    with pytest.raises(ValueError, match="not resolved"):
        seeds_to_resolve(MARGIN, 0.01, MARGIN, at_most=5)


def _simulated(n: int, diff: float, sd: float, draws: int = 200_000) -> float:
    """The fraction of simulated seed samples that the labels resolve: the definition, applied by brute force."""
    d = np.random.default_rng(0).normal(diff, sd, size=(draws, n))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(n)
    half95, half90 = sps.t.ppf(0.975, n - 1) * se, sps.t.ppf(0.95, n - 1) * se
    direction = (mean - half95 > 0) | (mean + half95 < 0)
    equivalent = (mean - half90 > -MARGIN) & (mean + half90 < MARGIN)
    return float((direction | equivalent).mean())


# (5, 0.001, 0.001): the equivalence interval is mostly wider than the direction's, where they must not be counted twice
@pytest.mark.parametrize("n, diff, sd", [(3, 0.0, 0.002), (5, 0.003, 0.004), (4, -0.01, 0.005), (8, 0.0057, 0.0054),
                                         (12, -0.004, 0.006), (5, 0.001, 0.001)])
def test_the_probability_of_resolving_matches_simulation(n, diff, sd):
    # 200,000 draws: the simulated fraction's standard error is at most 0.0011
    assert probability_resolved(n, diff, sd, MARGIN) == pytest.approx(_simulated(n, diff, sd), abs=0.005)


def test_the_seed_count_is_the_first_that_reaches_the_power():
    # conv at θ 0.1's sparse end (issue 33): -0.0057 [-0.0191, +0.0077] over 3 seeds, so sd = 0.0134·√3/4.3027
    sd = 0.0134 * np.sqrt(3) / T975
    n = seeds_to_resolve(-0.0057, sd, MARGIN)
    assert probability_resolved(n, -0.0057, sd, MARGIN) >= 0.8 > probability_resolved(n - 1, -0.0057, sd, MARGIN)
    assert _simulated(n, -0.0057, sd) >= 0.79 and _simulated(n - 1, -0.0057, sd) < 0.8
    # The normal approximation for a direction alone, ((1.96 + 0.84)·sd / diff)² = 7.0, is a lower bound.
    assert n >= 7


def test_no_spread_resolves_with_two_seeds_and_more_spread_needs_more_seeds():
    assert seeds_to_resolve(0.0, 0.0, MARGIN) == 2
    counts = [seeds_to_resolve(0.0, sd, MARGIN) for sd in (0.001, 0.002, 0.004)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def _labelled(label: str, diff: float) -> Resolution:
    """A resolved point with a given label and mean (its intervals collapsed onto the mean: crossings reads neither)."""
    return Resolution(label, diff, diff, diff, diff, diff, MARGIN, abs(diff) < MARGIN, 3)


def test_a_crossing_is_where_the_mean_reaches_zero_between_the_last_point_one_way_and_the_first_the_other():
    l0 = [10.0, 20.0, 40.0, 80.0, 160.0]
    curve = [_labelled("KL better", -0.02), _labelled("KL better", -0.01), _labelled("unresolved", -0.004),
             _labelled("equivalent", 0.002), _labelled("L1 better", 0.012)]
    (crossing,) = crossings(l0, curve)
    assert (crossing.low, crossing.high, crossing.before, crossing.after) == (20.0, 160.0, "KL better", "L1 better")
    # -0.004 at L0 40 and +0.002 at L0 80: zero two thirds of the way in log L0, 40 * 2^(2/3) = 63.50
    assert crossing.l0 == pytest.approx(40 * 2 ** (2 / 3))
    assert crossings(l0, [_labelled("L1 better", 0.01)] * 5) == []  # one direction throughout: no crossing
    back = crossings([1.0, 2.0, 4.0], [_labelled("L1 better", 0.01), _labelled("KL better", -0.01),
                                       _labelled("L1 better", 0.03)])
    assert [(c.before, c.after, c.l0) for c in back] == [("L1 better", "KL better", pytest.approx(2 ** 0.5)),
                                                         ("KL better", "L1 better", pytest.approx(2 ** 0.25 * 2))]
    with pytest.raises(ValueError, match="sorted"):
        crossings([2.0, 1.0], curve[:2])


def test_the_crossings_interval_is_where_the_t_interval_holds_zero_by_hand():
    # 3 seeds, KL − L1 = -0.01 + e at L0 10 and +0.01 + e at L0 100, e = -0.001, 0, +0.001 per seed: every seed's
    # difference rises by 0.02 across the segment, so the sd is 0.001 everywhere and the mean is -0.01 + 0.02 u at
    # the fraction u of the way in log L0. The t interval holds 0 while |mean| <= t_.975 * 0.001 / sqrt(3) = 0.0024841:
    # u from (0.01 - 0.0024841) / 0.02 = 0.375793 to 0.624207, L0 = 10^(1 + u) = 23.757 to 42.093.
    e = np.array([-0.001, 0.0, 0.001])
    half = T975 * 0.001 / np.sqrt(3)
    low, high = crossing_interval([10.0, 100.0], np.stack([-0.01 + e, 0.01 + e], axis=1))
    assert low == pytest.approx(10 ** (1 + (0.01 - half) / 0.02), rel=1e-6)
    assert high == pytest.approx(10 ** (1 + (0.01 + half) / 0.02), rel=1e-6)
    assert (low, high) == (pytest.approx(23.757, abs=1e-3), pytest.approx(42.093, abs=1e-3))
    # seeds that agree exactly: the interval shrinks to the crossing itself (u = 0.5, L0 31.62)
    same = crossing_interval([10.0, 100.0], np.array([[-0.01, 0.01]] * 3))
    assert same == (pytest.approx(10 ** 1.5), pytest.approx(10 ** 1.5))
    # a difference that never comes near 0: no L0 qualifies
    assert crossing_interval([10.0, 100.0], np.stack([0.05 + e, 0.06 + e], axis=1)) is None


def test_the_crossings_interval_agrees_with_the_paired_t_interval_at_every_l0():
    # seeds whose slopes differ (the variance is quadratic along the segment: Fieller's case), over three grid
    # points; the exact ends against stats.paired evaluated on a fine grid of L0
    rng = np.random.default_rng(0)
    l0 = [15.0, 24.0, 30.0]
    diffs = np.array([-0.02, -0.006, 0.03]) + rng.normal(0, 0.006, (9, 3))
    low, high = crossing_interval(l0, diffs)
    logs = np.log10(l0)
    fine = np.linspace(logs[0], logs[-1], 20001)
    per_seed = np.array([np.interp(fine, logs, d) for d in diffs])
    holds = [paired(per_seed[:, k], np.zeros(9)).ci_low <= 0 <= paired(per_seed[:, k], np.zeros(9)).ci_high
             for k in range(len(fine))]
    inside = fine[np.array(holds)]
    step = fine[1] - fine[0]
    assert np.log10(low) == pytest.approx(inside.min(), abs=step)
    assert np.log10(high) == pytest.approx(inside.max(), abs=step)
    with pytest.raises(ValueError, match="seeds >= 2"):
        crossing_interval(l0, diffs[:1])


def test_crossings_read_their_interval_over_the_seeds_the_whole_stretch_shares():
    l0 = [10.0, 100.0, 1000.0]
    curve = [_labelled("KL better", -0.01), _labelled("unresolved", 0.0), _labelled("L1 better", 0.01)]
    # seeds 0-2 everywhere, seed 3 only at the first point: the interval is read over seeds 0-2
    seed_diffs = [{0: -0.011, 1: -0.01, 2: -0.009, 3: -0.5}, {0: -0.001, 1: 0.0, 2: 0.001},
                  {0: 0.009, 1: 0.01, 2: 0.011}]
    (crossing,) = crossings(l0, curve, seed_diffs)
    shared = np.array([[d[s] for d in seed_diffs] for s in (0, 1, 2)])
    assert crossing.n == 3
    assert (crossing.ci_low, crossing.ci_high) == pytest.approx(crossing_interval(l0, shared))
    assert crossing.low <= crossing.ci_low <= crossing.l0 <= crossing.ci_high <= crossing.high
    # one seed shared by the whole stretch: no interval, the bracket stays
    lone = crossings(l0, curve, [{0: -0.01, 1: -0.01}, {0: 0.0}, {0: 0.01, 2: 0.01}])[0]
    assert (lone.ci_low, lone.ci_high, lone.n) == (None, None, 0)
    assert crossings(l0, curve)[0].ci_low is None  # without per-seed differences
