"""Report statistics against values computed by hand (scipy as a second oracle where noted)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from sae_mnist.stats import Difference, common_grid, common_range, holm, interpolate_at, paired, summarize

T_975_DF2 = 4.302653  # Student t 97.5% quantile, 2 dof (printed tables)
T_95_DF2 = 2.919986  # 95% quantile, 2 dof
T_975_DF4 = 2.776445  # 97.5% quantile, 4 dof


def _all_nan(*values: float) -> bool:
    return all(math.isnan(v) for v in values)


# --- summarize ---------------------------------------------------------------------------------


def test_summarize_by_hand():
    # mean 2; squared deviations 1 + 0 + 1 = 2 over n - 1 = 2 -> std 1; half width 4.302653 * 1 / sqrt(3)
    s = summarize([1, 2, 3])
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    assert s.ci_low == pytest.approx(-0.484138, abs=1e-5)
    assert s.ci_high == pytest.approx(4.484138, abs=1e-5)
    assert s.ci_high - s.mean == pytest.approx(T_975_DF2 / math.sqrt(3), abs=1e-6)


def test_summarize_other_confidence():
    s = summarize(np.array([1.0, 2.0, 3.0]), confidence=0.90)
    assert s.confidence == 0.90
    assert s.ci_high - s.mean == pytest.approx(T_95_DF2 / math.sqrt(3), abs=1e-6)


def test_summarize_single_value_has_no_spread():
    s = summarize([0.25])
    assert (s.n, s.mean) == (1, 0.25)
    assert _all_nan(s.std, s.ci_low, s.ci_high)


def test_summarize_identical_values_give_exactly_zero_std():
    # np.var of [0.1]*3 leaves ~1e-34 of rounding; identical seeds must read as exactly 0
    s = summarize([0.1, 0.1, 0.1])
    assert s.mean == 0.1 and s.std == 0.0
    assert s.ci_low == s.ci_high == s.mean


@pytest.mark.parametrize("values", [[], [1.0, math.nan], [1.0, math.inf], [[1.0, 2.0], [3.0, 4.0]]])
def test_summarize_rejects_bad_input(values):
    with pytest.raises(ValueError):
        summarize(values)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95])
def test_summarize_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError, match="confidence"):
        summarize([1, 2, 3], confidence=confidence)


def test_results_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        summarize([1, 2]).mean = 0.0  # type: ignore[misc]


# --- bounded intervals ---------------------------------------------------------------------------


def test_fraction_interval_is_taken_on_logits_by_hand():
    # logits of 0.1, 0.2, 0.3: -2.197225, -1.386294, -0.847298; mean -1.476939, sd 0.679513
    # half width 4.302653 * 0.679513 / sqrt(3) = 1.688004 -> logits [-3.164943, 0.211065] -> [0.040507, 0.552571]
    s = summarize([0.1, 0.2, 0.3], bounds="fraction")
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1)  # of the values as they are
    assert (s.ci_low, s.ci_high) == (pytest.approx(0.040507, abs=1e-5), pytest.approx(0.552571, abs=1e-5))
    plain = summarize([0.1, 0.2, 0.3])
    assert plain.ci_low < 0  # what the plain interval does, and the bounded one must not


def test_positive_interval_is_a_geometric_one_by_hand():
    # logs of 1, e, e^2: 0, 1, 2 -> mean 1, sd 1, half 4.302653 / sqrt(3) = 2.484138 -> [e^-1.484138, e^3.484138]
    s = summarize([1.0, math.e, math.e**2], bounds="positive")
    assert (s.ci_low, s.ci_high) == (pytest.approx(math.exp(-1.484138), rel=1e-5), pytest.approx(math.exp(3.484138), rel=1e-5))


def test_a_fraction_on_its_bound_uses_half_the_resolution():
    # 0 of 256 units -> 1/512; logits of 1/512, 2/256, 4/256 -> mean and interval on that scale, inside (0, 1)
    s = summarize([0.0, 2 / 256, 4 / 256], bounds="fraction", resolution=1 / 256)
    logits = [math.log(v / (1 - v)) for v in (1 / 512, 2 / 256, 4 / 256)]
    centre, sd = np.mean(logits), np.std(logits, ddof=1)
    half = T_975_DF2 * sd / math.sqrt(3)
    assert s.ci_low == pytest.approx(1 / (1 + math.exp(-(centre - half))))
    assert s.ci_high == pytest.approx(1 / (1 + math.exp(-(centre + half))))
    assert 0 < s.ci_low < s.mean < s.ci_high < 1
    assert summarize([0.0, 0.0, 0.0], bounds="fraction").ci_low == 0.0  # all on the bound: exactly known


def test_values_finer_than_the_stated_resolution_lower_it():
    # The committed report's "saturated" row: a fraction of all entries of all images, ~3e-6, given the
    # resolution of a fraction of 256 units. Clipped at 1/512, every logit was the same and the interval
    # [0.0020, 0.0020] lay far above the values. The smallest value (1.953125e-6) becomes the resolution.
    values = [3.125e-6, 1.953125e-6, 2.734375e-6]
    s = summarize(values, bounds="fraction", resolution=1 / 256)
    logits = [math.log(v / (1 - v)) for v in values]  # none is below half the new resolution: unclipped
    centre, half = np.mean(logits), T_975_DF2 * np.std(logits, ddof=1) / math.sqrt(3)
    assert s.ci_low == pytest.approx(1 / (1 + math.exp(-(centre - half))))
    assert s.ci_high == pytest.approx(1 / (1 + math.exp(-(centre + half))))
    assert s.ci_low < min(values) and max(values) < s.ci_high
    # A value on the bound moves half the smallest distance seen inside: 0 -> 1e-5 / 2.
    on_bound = summarize([0.0, 1e-5, 2e-5], bounds="fraction", resolution=1 / 256)
    logits = [math.log(v / (1 - v)) for v in (0.5e-5, 1e-5, 2e-5)]
    centre, half = np.mean(logits), T_975_DF2 * np.std(logits, ddof=1) / math.sqrt(3)
    assert on_bound.ci_high == pytest.approx(1 / (1 + math.exp(-(centre + half))))
    assert summarize([0.001, 0.002, 0.004], bounds="positive", resolution=1).ci_low < 0.001  # likewise for logs


@pytest.mark.parametrize("values, bounds", [([0.5, 1.2], "fraction"), ([-0.1, 0.3], "positive")])
def test_bounded_summaries_reject_values_outside_their_bounds(values, bounds):
    with pytest.raises(ValueError, match="outside the bounds"):
        summarize(values, bounds=bounds)


# --- paired ------------------------------------------------------------------------------------


def test_paired_by_hand_and_scipy():
    # differences 0.1, 0.09, 0.15: mean 0.113333, sd 0.032146, se 0.018559, t 6.106580 (2 dof)
    a, b = [0.3, 0.5, 0.45], [0.2, 0.41, 0.3]
    d = paired(a, b)
    assert d.diff == pytest.approx(0.1133333, abs=1e-6) and d.df == 2
    assert d.t == pytest.approx(6.106580, abs=1e-5)
    assert d.p == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
    assert d.ci_high - d.diff == pytest.approx(T_975_DF2 * 0.0321455 / math.sqrt(3), abs=1e-5)


def test_pairing_removes_the_seed_to_seed_spread():
    # seeds differ a lot, the paired difference is nearly constant: significant paired, not as two samples
    # differences 0.02, 0.02, 0.03: t = 0.023333 / (0.005774 / sqrt(3)) = 7.0, p = 0.0198 (2 dof)
    a, b = [0.10, 0.30, 0.50], [0.08, 0.28, 0.47]
    assert paired(a, b).t == pytest.approx(7.0)
    assert paired(a, b).p < 0.05 < sps.ttest_ind(a, b).pvalue


def test_paired_constant_differences():
    same = paired([0.2, 0.3], [0.2, 0.3])
    assert (same.diff, same.t, same.p, same.ci_low, same.ci_high) == (0.0, 0.0, 1.0, 0.0, 0.0)
    apart = paired([0.5, 0.75], [0.25, 0.5])  # exactly 0.25 both times
    assert apart.t == math.inf and apart.p == 0.0 and apart.ci_low == apart.ci_high == 0.25


def test_paired_single_pair_has_no_interval():
    d = paired([0.3], [0.1])
    assert d.diff == pytest.approx(0.2) and _all_nan(d.ci_low, d.ci_high, d.t, d.p)


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [1.0]), ([], []), ([1.0, math.nan], [1.0, 2.0])])
def test_paired_rejects_bad_input(a, b):
    with pytest.raises(ValueError):
        paired(a, b)


# --- holm --------------------------------------------------------------------------------------


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 of m = 3: 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> running max 0.06
    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.02, math.nan])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])  # nan is not a test: m counts the rest


# --- interpolate_at ----------------------------------------------------------------------------


def test_interpolate_halfway_in_log_space():
    # log10: 100 is halfway between 10 and 1000, so y is halfway between 0.2 and 0.1
    out = interpolate_at([10, 1000], [0.2, 0.1], [100])
    assert out == pytest.approx([0.15])


def test_interpolate_linear_in_x():
    # 505 is halfway between 10 and 1000 in x; 100 is 90/990 = 1/11 of the way
    out = interpolate_at([10, 1000], [0.2, 0.1], [505, 100], log_x=False)
    assert out == pytest.approx([0.15, 0.2 - 0.1 / 11])


def test_interpolate_unsorted_points_and_endpoints():
    out = interpolate_at([1000, 10, 100], [0.1, 0.3, 0.25], [10, 100, 1000, 10**1.5])
    # 10^1.5 is halfway between 10 and 100 in log10: (0.3 + 0.25) / 2
    assert out == pytest.approx([0.3, 0.25, 0.1, 0.275])


def test_interpolate_outside_range_is_nan():
    out = interpolate_at([10, 1000], [0.2, 0.1], [9.999, 5, 1001, math.nan, 0.0, -3.0])
    assert np.isnan(out).all()


def test_interpolate_duplicate_x_averaged():
    # x = 10 twice with y 0.1 and 0.3 -> one point (10, 0.2)
    out = interpolate_at([10, 1000, 10], [0.1, 0.1, 0.3], [10, 100])
    assert out == pytest.approx([0.2, 0.15])


def test_interpolate_shape_follows_targets():
    scalar = interpolate_at([10, 1000], [0.2, 0.1], 100)
    assert scalar.shape == () and float(scalar) == pytest.approx(0.15)
    assert interpolate_at([10, 1000], [0.2, 0.1], []).shape == (0,)


def test_interpolate_single_point_only_at_itself():
    assert interpolate_at([50], [0.3], [50, 49, 51]) == pytest.approx([0.3, math.nan, math.nan], nan_ok=True)


def test_interpolate_zero_x_allowed_only_on_linear_axis():
    with pytest.raises(ValueError, match="positive"):
        interpolate_at([0, 10], [0.5, 0.2], [5])
    assert interpolate_at([0, 10], [0.5, 0.2], [5], log_x=False) == pytest.approx([0.35])


def test_interpolate_log_y_by_hand():
    # Points (10, 0.4) and (1000, 0.1); x = 100 is halfway in log10 x (1, 2, 3).
    # log-log: 10^((log10 0.4 + log10 0.1) / 2) = sqrt(0.4 * 0.1) = sqrt(0.04) = 0.2
    # y linear in log x (the old rule): (0.4 + 0.1) / 2 = 0.25
    assert interpolate_at([10, 1000], [0.4, 0.1], [100], log_y=True) == pytest.approx([0.2])
    assert interpolate_at([10, 1000], [0.4, 0.1], [100]) == pytest.approx([0.25])
    # a quarter of the way in log x (x = 10^1.5): 10^(log10 0.4 + (log10 0.1 - log10 0.4) / 4) = 0.4 * 0.25^0.25
    #   = 0.4 / sqrt(2) = 0.282843; the old rule: 0.4 - 0.3 / 4 = 0.325
    assert interpolate_at([10, 1000], [0.4, 0.1], [10**1.5], log_y=True) == pytest.approx([0.4 / math.sqrt(2)])


def test_interpolate_log_y_is_exact_on_a_power_law_and_returns_the_points_themselves():
    # y = 2 / x (a straight line on log-log axes): read exactly anywhere between the points; at a point, the point
    x, y = [1, 10, 100], [2.0, 0.2, 0.02]
    assert interpolate_at(x, y, [1, 4, 10, 50, 100], log_y=True) == pytest.approx([2.0, 0.5, 0.2, 0.04, 0.02])


def test_interpolate_log_y_never_extrapolates_and_rejects_non_positive_y():
    assert np.isnan(interpolate_at([10, 1000], [0.4, 0.1], [5, 2000, math.nan], log_y=True)).all()
    for y in ([0.4, 0.0], [0.4, -0.1]):
        with pytest.raises(ValueError, match="positive"):
            interpolate_at([10, 1000], y, [100], log_y=True)
    assert interpolate_at([10, 1000], [0.4, 0.0], [100]) == pytest.approx([0.2])  # fine without log_y


def test_interpolate_log_y_averages_duplicate_x_geometrically():
    # x = 10 twice with y 0.1 and 0.4 -> one point (10, sqrt(0.04) = 0.2)
    assert interpolate_at([10, 10, 1000], [0.1, 0.4, 0.2], [10], log_y=True) == pytest.approx([0.2])


@pytest.mark.parametrize(
    ("x", "y"), [([], []), ([1, 2], [0.1]), ([1, 2], [0.1, math.nan]), ([1, math.inf], [0.1, 0.2])]
)
def test_interpolate_rejects_bad_points(x, y):
    with pytest.raises(ValueError):
        interpolate_at(x, y, [1.5])


# --- common_grid -------------------------------------------------------------------------------


def test_common_grid_interior_log_points():
    # overlap [10, 1000]: log10 span [1, 3] in 4 steps -> interior 10^1.5, 10^2, 10^2.5
    grid = common_grid([(1, 10_000), (10, 1000), (5, 2000)])
    assert grid == pytest.approx([31.6227766, 100.0, 316.227766])


def test_common_range_is_the_overlap_of_every_range():
    assert common_range([(1, 10_000), (10, 1000), (5, 2000)]) == (10.0, 1000.0)
    assert common_range([(1, 5), (10, 20)]) is None and common_range([(1, 10), (10, 20)]) is None
    with pytest.raises(ValueError):
        common_range([])


def test_common_grid_single_point_is_log_midpoint():
    assert common_grid([(4, 100), (1, 25)], n=1) == pytest.approx([10.0])


@pytest.mark.parametrize("ranges", [[(1, 5), (10, 20)], [(1, 10), (10, 20)], [(3, 3)]])
def test_common_grid_empty_overlap(ranges):
    grid = common_grid(ranges)
    assert isinstance(grid, np.ndarray) and grid.size == 0


@pytest.mark.parametrize(
    ("ranges", "n"), [([], 3), ([(1, 10)], 0), ([(10, 1)], 3), ([(0, 10)], 3), ([(1, math.nan)], 3)]
)
def test_common_grid_rejects_bad_input(ranges, n):
    with pytest.raises(ValueError):
        common_grid(ranges, n=n)


def test_grid_points_interpolate_inside_every_frontier():
    frontiers = {"l1": ([2.0, 20.0, 200.0], [0.3, 0.2, 0.1]), "kl": ([5.0, 50.0, 80.0], [0.35, 0.25, 0.2])}
    grid = common_grid([(min(x), max(x)) for x, _ in frontiers.values()])
    for x, y in frontiers.values():
        assert np.isfinite(interpolate_at(x, y, grid)).all()
