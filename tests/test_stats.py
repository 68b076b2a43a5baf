"""Report statistics against values computed by hand (scipy as a second oracle where noted)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from sae_mnist.stats import (
    Difference,
    common_grid,
    interpolate_at,
    matched_difference,
    summarize,
    welch,
)

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


# --- welch -------------------------------------------------------------------------------------


def test_welch_equal_sizes_by_hand():
    # a = [1,2,3], b = [4,5,6]: diff = -3; s_a^2 = s_b^2 = 1, so se^2 = 1/3 + 1/3 = 2/3, t = -3 / sqrt(2/3)
    # df = (2/3)^2 / ((1/3)^2/2 + (1/3)^2/2) = (4/9) / (1/9) = 4
    # CI: -3 -+ 2.776445 * sqrt(2/3) = -3 -+ 2.266958
    # p: the t CDF with 4 dof has a closed form, F(t) = 1/2 + 3/8 * w * (1 - u / (3 (1 + u))) with u = t^2/4 and
    #    w = |t| / sqrt(1 + u); two-sided p = 2 (1 - F(|t|))
    d = welch([1, 2, 3], [4, 5, 6])
    t = -3 / math.sqrt(2 / 3)
    u = t * t / 4
    p_hand = 2 * (0.5 - 3 / 8 * (abs(t) / math.sqrt(1 + u)) * (1 - u / (3 * (1 + u))))
    assert d.diff == -3.0
    assert d.t == pytest.approx(t) == pytest.approx(-3.674235, abs=1e-6)
    assert d.df == pytest.approx(4.0)
    assert d.ci_low == pytest.approx(-3 - T_975_DF4 * math.sqrt(2 / 3), abs=1e-5)
    assert d.ci_high == pytest.approx(-0.733042, abs=1e-5)
    assert d.p == pytest.approx(p_hand, rel=1e-9) == pytest.approx(0.0213116, abs=1e-7)
    assert d.p == pytest.approx(sps.ttest_ind([1, 2, 3], [4, 5, 6], equal_var=False).pvalue, rel=1e-12)


def test_welch_unequal_sizes_by_hand_and_scipy():
    # a = [1,2,3,4]: mean 2.5, s^2 = 5/3; b = [2,4,6]: mean 4, s^2 = 4
    # s_a^2/n_a = 5/12, s_b^2/n_b = 4/3; se^2 = 21/12 = 7/4; t = -1.5 / sqrt(7/4) = -3 / sqrt(7)
    # df = (7/4)^2 / ((5/12)^2/3 + (4/3)^2/2) = (49/16) / (409/432) = 1323/409 = 3.234719
    a, b = [1, 2, 3, 4], [2, 4, 6]
    d = welch(a, b)
    assert d.diff == -1.5
    assert d.t == pytest.approx(-3 / math.sqrt(7))
    assert d.df == pytest.approx(1323 / 409)
    ref = sps.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (d.t, d.df) == (pytest.approx(ref.statistic), pytest.approx(ref.df))
    assert d.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert (d.ci_low, d.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on the constant sample
def test_welch_one_constant_sample():
    # s_a^2 = 0 leaves only b's term: df = (s_b^2/n_b)^2 / ((s_b^2/n_b)^2 / (n_b - 1)) = n_b - 1 = 2
    a, b = [1, 1, 1], [1, 2, 3]
    d = welch(a, b)
    assert d.df == pytest.approx(2.0)
    assert d.p == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)


def test_welch_both_constant_equal_means():
    d = welch([0.1, 0.1, 0.1], [0.1, 0.1])
    assert (d.diff, d.ci_low, d.ci_high, d.t, d.p) == (0.0, 0.0, 0.0, 0.0, 1.0)
    assert math.isnan(d.df)


def test_welch_both_constant_different_means():
    d = welch([0.1, 0.1, 0.1], [0.3, 0.3, 0.3, 0.3])
    assert d.diff == pytest.approx(-0.2)
    assert d.ci_low == d.ci_high == d.diff
    assert d.t == -math.inf and d.p == 0.0
    assert welch([2, 2], [1, 1]).t == math.inf


@pytest.mark.parametrize(("a", "b"), [([1.0], [2.0, 3.0]), ([1.0, 3.0], [2.5]), ([1.0], [2.5])])
def test_welch_single_value_group(a, b):
    d = welch(a, b)
    assert d.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert _all_nan(d.ci_low, d.ci_high, d.t, d.df, d.p)


@pytest.mark.parametrize(("a", "b"), [([], [1.0, 2.0]), ([1.0, 2.0], [math.nan, 1.0])])
def test_welch_rejects_bad_input(a, b):
    with pytest.raises(ValueError):
        welch(a, b)


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


# --- matched_difference ------------------------------------------------------------------------


def test_matched_difference_by_hand():
    # sd_a = sd_b = 0.03 with 2 seeds each: se = sqrt(0.03^2 + 0.03^2) = 0.03 sqrt(2); t = 0.06 / se = sqrt(2)
    # df = (2 s^2)^2 / (s^4/1 + s^4/1) = 2
    # the t CDF with 2 dof is F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - sqrt(2) / sqrt(4) = 0.2928932
    # CI: 0.06 -+ 4.302653 * 0.03 sqrt(2) = 0.06 -+ 0.182546
    d = matched_difference(0.30, 0.24, 0.03, 0.03, 2, 2)
    assert d.diff == pytest.approx(0.06)
    assert d.t == pytest.approx(math.sqrt(2))
    assert d.df == pytest.approx(2.0)
    assert d.p == pytest.approx(1 - math.sqrt(2) / 2, rel=1e-9)
    assert (d.ci_low, d.ci_high) == (pytest.approx(-0.122546, abs=1e-5), pytest.approx(0.242546, abs=1e-5))


def test_matched_difference_unequal_sds():
    # se = sqrt(0.03^2 + 0.04^2) = 0.05, t = 0.05 / 0.05 = 1
    # df = 0.05^4 / (0.03^4/4 + 0.04^4/4) = 6.25e-6 / 8.425e-7 = 7.418398
    d = matched_difference(0.30, 0.25, 0.03, 0.04, 5, 5)
    assert d.t == pytest.approx(1.0)
    assert d.df == pytest.approx(6.25e-6 / 8.425e-7)
    assert d.p == pytest.approx(2 * sps.t.sf(1.0, 6.25e-6 / 8.425e-7))


def test_matched_difference_zero_variance():
    same = matched_difference(0.2, 0.2, 0.0, 0.0, 3, 3)
    assert (same.t, same.p, same.ci_low, same.ci_high) == (0.0, 1.0, 0.0, 0.0)
    apart = matched_difference(0.2, 0.3, 0.0, 0.0, 3, 3)
    assert apart.t == -math.inf and apart.p == 0.0
    assert apart.ci_low == apart.ci_high == apart.diff == pytest.approx(-0.1)


@pytest.mark.parametrize(
    "args",
    [
        (0.3, 0.2, 0.01, 0.02, 1, 5),  # one seed: no spread measured
        (0.3, 0.2, math.nan, 0.02, 5, 5),  # sd from summarize() of a single seed
    ],
)
def test_matched_difference_without_spread(args):
    d = matched_difference(*args)
    assert d.diff == pytest.approx(0.1)
    assert _all_nan(d.ci_low, d.ci_high, d.t, d.df, d.p)


def test_matched_difference_target_outside_frontier():
    d = matched_difference(math.nan, 0.2, 0.01, 0.02, 5, 5)
    assert _all_nan(d.diff, d.ci_low, d.ci_high, d.t, d.df, d.p)


def test_matched_difference_rejects_negative_sd():
    with pytest.raises(ValueError, match="negative"):
        matched_difference(0.3, 0.2, -0.01, 0.02, 5, 5)
