"""Statistics for the report: seed-to-seed summaries, L1-vs-KL differences, and matched-sparsity comparisons.

Every interval is two-sided at `confidence` (default 95%) and uses Student's t.

  Summary      one variant's metric over seeds: mean, sample std (ddof=1) and the t interval of the mean
  Difference   mean(a) - mean(b) with its t interval, t statistic, Welch-Satterthwaite dof and two-sided p

Frontier comparisons ("FVU at matched L0"): each variant is swept over penalty strength with one seed per
strength, giving points (L0, FVU). `common_grid` picks L0 values that every variant reaches,
`interpolate_at` reads each frontier at those L0 values (linear in log10 L0, never extrapolated), and
`matched_difference` compares two interpolated values using the seed-to-seed std measured at the default
strength as the noise of a single run.

Zero-variance convention (`welch`, `matched_difference`): training here is bitwise reproducible, so repeated
runs can be identical and both groups can have zero spread. Then the difference is known exactly: the interval
is [diff, diff]; equal means give t = 0 and p = 1.0; different means give t = +-inf and p = 0.0; df is nan
(Welch-Satterthwaite is 0/0). With one group constant and the other not, the ordinary formulas apply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Summary:
    """A sample of one metric over seeds.

    n: number of values; mean: their mean; std: sample standard deviation (ddof=1, nan when n == 1);
    ci_low, ci_high: the `confidence` t interval of the mean, mean -+ t_{(1+c)/2, n-1} * std / sqrt(n)
    (nan when n == 1).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95


@dataclass(frozen=True)
class Difference:
    """A difference of two means, a - b.

    diff: the difference; ci_low, ci_high: its `confidence` t interval; t: diff / standard error;
    df: Welch-Satterthwaite degrees of freedom; p: two-sided p-value of "no difference".
    All but diff are nan when a group has fewer than two values (no spread to measure).
    """

    diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float
    confidence: float = 0.95


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def _sample(values: Iterable[float], what: str = "values") -> np.ndarray:
    """The values as a 1-D float array; ValueError if empty, not 1-D, or not all finite."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty: need at least one value")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains non-finite values (nan or inf): {arr.tolist()}")
    return arr


def _mean(arr: np.ndarray) -> float:
    """Mean, exactly the common value for identical values (np.mean of [0.1] * 3 is 0.10000000000000002)."""
    return float(arr[0]) if np.ptp(arr) == 0 else float(arr.mean())


def _variance(arr: np.ndarray) -> float:
    """Sample variance (ddof=1), exactly 0 for identical values (np.var can leave ~1e-34 of rounding)."""
    if arr.size < 2:
        return math.nan
    return 0.0 if np.ptp(arr) == 0 else float(np.var(arr, ddof=1))


def summarize(values: Iterable[float], confidence: float = 0.95) -> Summary:
    """Mean, sample std and the Student-t confidence interval of the mean of `values`.

    One value: std and the interval are nan. Empty or non-finite input: ValueError.
    """
    _check_confidence(confidence)
    arr = _sample(values)
    n, mean = arr.size, _mean(arr)
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, confidence)
    std = math.sqrt(_variance(arr))
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, confidence)


def _difference(diff: float, var_a: float, dof_a: int, var_b: float, dof_b: int, confidence: float) -> Difference:
    """Difference with standard error sqrt(var_a + var_b), where var_x is the variance of group x's estimate
    and dof_x its degrees of freedom; df by Welch-Satterthwaite, (var_a + var_b)^2 / (var_a^2/dof_a + var_b^2/dof_b).
    """
    nan = math.nan
    se2 = var_a + var_b
    if dof_a < 1 or dof_b < 1 or not math.isfinite(diff) or not math.isfinite(se2):
        return Difference(diff, nan, nan, nan, nan, nan, confidence)
    if se2 == 0:  # both groups constant: see the module docstring
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return Difference(diff, diff, diff, t, nan, 1.0 if diff == 0 else 0.0, confidence)
    se = math.sqrt(se2)
    df = se2**2 / (var_a**2 / dof_a + var_b**2 / dof_b)
    t = diff / se
    p = float(2 * sps.t.sf(abs(t), df))
    half = float(sps.t.ppf((1 + confidence) / 2, df)) * se
    return Difference(diff, diff - half, diff + half, t, df, p, confidence)


def welch(a: Iterable[float], b: Iterable[float], confidence: float = 0.95) -> Difference:
    """mean(a) - mean(b) for two independent samples, with Welch's unequal-variance t test and interval.

    Standard error sqrt(s_a^2/n_a + s_b^2/n_b); p equals scipy.stats.ttest_ind(a, b, equal_var=False).pvalue
    except when both samples are constant (module docstring). A sample with fewer than two values: only diff
    is set, the rest are nan. Empty or non-finite input: ValueError.
    """
    _check_confidence(confidence)
    xa, xb = _sample(a, "a"), _sample(b, "b")
    diff = _mean(xa) - _mean(xb)
    if xa.size < 2 or xb.size < 2:
        return _difference(diff, math.nan, 0, math.nan, 0, confidence)
    return _difference(diff, _variance(xa) / xa.size, xa.size - 1, _variance(xb) / xb.size, xb.size - 1, confidence)


def matched_difference(
    y_a: float, y_b: float, sd_a: float, sd_b: float, n_a: int, n_b: int, confidence: float = 0.95
) -> Difference:
    """y_a - y_b for two frontier values (each from a single-seed run), with uncertainty borrowed from seeds.

    Assumption: the seed-to-seed standard deviation sd_x, measured with n_x seeds at the variant's default
    penalty strength, is also the noise of one run anywhere along its frontier. A single run then has variance
    sd_x^2, so the standard error is sqrt(sd_a^2 + sd_b^2), with Welch-Satterthwaite df from those variances
    and n_x - 1 dof each; t and the two-sided p from Student's t. Interpolation error is not included.

    n_x < 2, a nan sd or a nan y (target outside a frontier): the uncertainty is nan. Both sds zero: the
    zero-variance convention in the module docstring. Negative sd: ValueError.
    """
    _check_confidence(confidence)
    for name, sd in (("sd_a", sd_a), ("sd_b", sd_b)):
        if sd < 0:
            raise ValueError(f"{name} is a standard deviation and cannot be negative, got {sd}")
    diff = float(y_a) - float(y_b)
    return _difference(diff, float(sd_a) ** 2, int(n_a) - 1, float(sd_b) ** 2, int(n_b) - 1, confidence)


def _axis(values: np.ndarray, log_x: bool, what: str) -> np.ndarray:
    if log_x and (values <= 0).any():
        raise ValueError(
            f"{what} must be positive for log spacing (log_x=True); drop zero L0 points or use log_x=False"
        )
    return np.log10(values) if log_x else values


def interpolate_at(
    x: Sequence[float], y: Sequence[float], targets: float | Sequence[float], log_x: bool = True
) -> np.ndarray:
    """y read off the curve through the points (x, y) at each target x.

    Points are sorted by x and duplicate x values replaced by their mean y; between the two nearest points
    that bracket a target, y is linear in log10(x) (in x when log_x=False). A target outside [min x, max x],
    or a nan target, gives nan: never extrapolated. Returns an array shaped like `targets`.
    Empty, mismatched or non-finite x/y, or x <= 0 with log_x: ValueError.
    """
    xs, ys = _sample(x, "x"), _sample(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    ux, inverse = np.unique(xs, return_inverse=True)  # sorted unique x
    uy = np.bincount(inverse, weights=ys) / np.bincount(inverse)
    tx = np.asarray(targets, dtype=float)
    out = np.full(tx.shape, math.nan)
    inside = (tx >= ux[0]) & (tx <= ux[-1])  # False for nan targets
    grid = _axis(ux, log_x, "x")
    out[inside] = np.interp(_axis(tx[inside], log_x, "targets"), grid, uy)
    return out


def common_grid(ranges: Sequence[tuple[float, float]], n: int = 3) -> np.ndarray:
    """n x values (e.g. L0) that every variant's frontier covers, evenly spaced in log10 inside the overlap.

    The overlap is [max lo, min hi] of the (lo, hi) ranges. Its log10 span is cut into n + 1 equal steps and
    the n interior cut points are returned (n = 3: the 25%, 50% and 75% points), so no point sits on an end
    where a frontier has only one run. Empty or single-point overlap: an empty array.
    ValueError for no ranges, n < 1, lo > hi, or lo <= 0.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if len(ranges) == 0:
        raise ValueError("ranges is empty: need one (lo, hi) per variant")
    for lo, hi in ranges:
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"each range must be finite with lo <= hi, got ({lo}, {hi})")
        if lo <= 0:
            raise ValueError(f"ranges must be positive for log spacing, got lo = {lo}")
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if lo >= hi:
        return np.empty(0)
    fractions = np.arange(1, n + 1) / (n + 1)
    return 10 ** (math.log10(lo) + fractions * (math.log10(hi) - math.log10(lo)))
