"""Statistics for the report: seed summaries, paired L1-vs-KL differences, multiplicity, frontiers.

Every interval is two-sided at `confidence` (default 95%) and uses Student's t.

  Summary      one metric over seeds: mean, sample std and the t interval of the mean, computed on a
               scale that respects the metric's bounds (`summarize(..., bounds=...)`): a fraction's
               interval stays inside [0, 1], a positive metric's above 0
  Difference   the mean paired difference a - b over seeds, its t interval (n - 1 dof), t and the
               two-sided p of the paired t test (scipy.stats.ttest_rel)
  holm         Holm's step-down adjustment of a family of p-values

Pairing: every seed trains L1 and KL from the same initial weights on the same batches in the same
order (members.train_members), so their difference is taken per seed and the test is on those differences.
With 3 seeds a t interval has 2 degrees of freedom (t = 4.30 at 95%): wide, and the report says so.

Frontier comparisons ("FVU at matched L0"): each seed's runs along a penalty's strengths give points
(L0, FVU); `pareto_front` keeps the best FVU at each sparsity, `common_grid` picks L0 values every
frontier reaches (inside `common_range`), `interpolate_at` reads a frontier there: never extrapolated, y linear
in log10 L0, or log10 y linear in log10 L0 (`log_y=True`: a frontier that is straight on log-log axes, as FVU
against L0 roughly is, is read exactly, where a convex one read linearly overstates y between its points).

Zero-variance convention (`paired`): training here is bitwise reproducible, so paired differences can be
identical across seeds. Then the difference is known exactly: the interval is [diff, diff]; a zero
difference gives t = 0 and p = 1.0; a non-zero one t = +-inf and p = 0.0.
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
    """A mean paired difference, a - b.

    diff: the difference; ci_low, ci_high: its `confidence` t interval; t: diff / standard error;
    df: degrees of freedom (pairs - 1); p: two-sided p-value of "no difference".
    All but diff are nan with fewer than two pairs (no spread to measure).
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


# Where a bounded metric's interval is computed: its values are mapped there, the t interval taken, and mapped
# back, so the interval cannot cross the bounds. A value on a bound is first moved half the metric's
# resolution inside it (a count k of n becomes (k + 1/2) / n at k = 0: the usual continuity correction).
BOUNDS = ("none", "positive", "fraction")


def _to_scale(x: np.ndarray, bounds: str, resolution: float) -> np.ndarray:
    if bounds == "positive":
        return np.log(np.maximum(x, resolution / 2))
    if bounds == "fraction":
        p = np.clip(x, resolution / 2, 1 - resolution / 2)
        return np.log(p / (1 - p))
    return x


def _from_scale(y: float, bounds: str) -> float:
    if bounds == "positive":
        return math.exp(y)
    if bounds == "fraction":
        return 1 / (1 + math.exp(-y))
    return y


def summarize(values: Iterable[float], confidence: float = 0.95, bounds: str = "none",
              resolution: float = 1e-6) -> Summary:
    """Mean, sample std and the Student-t confidence interval of the mean of `values`.

    bounds: "none" (the interval of the mean, as is), "positive" (values > 0: the t interval of log values,
    exponentiated: the interval of a geometric mean, which stays above 0) or "fraction" (values in [0, 1]: the
    t interval of logits, mapped back, which stays in (0, 1)). `resolution`: the metric's smallest step (a
    fraction of 256 units: 1/256), for values on a bound (above); a value nearer a bound than that lowers it
    to that value's distance. Mean and std are always of the values as they are. Identical values: the
    interval is [value, value] whatever the scale.
    One value: std and the interval are nan. Empty or non-finite input, or values outside the bounds: ValueError.
    """
    _check_confidence(confidence)
    if bounds not in BOUNDS:
        raise ValueError(f"bounds must be one of {BOUNDS}, got {bounds!r}")
    arr = _sample(values)
    if (bounds == "positive" and (arr < 0).any()) or (bounds == "fraction" and ((arr < 0) | (arr > 1)).any()):
        raise ValueError(f"values {arr.tolist()} are outside the bounds of a {bounds} metric")
    n, mean = arr.size, _mean(arr)
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, confidence)
    std = math.sqrt(_variance(arr))
    if std == 0:
        return Summary(n, mean, 0.0, mean, mean, confidence)
    # A value closer to a bound than the stated resolution shows that the resolution is finer (e.g. a fraction
    # of all code entries of all images, not of units): the smallest distance seen is used instead, so that
    # moving values on a bound inside never moves the interval away from the values themselves.
    distances = {"positive": arr, "fraction": np.concatenate([arr, 1 - arr])}.get(bounds, np.empty(0))
    if (positive := distances[distances > 0]).size:
        resolution = min(resolution, float(positive.min()))
    scaled = _to_scale(arr, bounds, resolution)
    centre, spread = float(scaled.mean()), math.sqrt(_variance(scaled))
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1)) * spread / math.sqrt(n)
    return Summary(n, mean, std, _from_scale(centre - half, bounds), _from_scale(centre + half, bounds), confidence)


def paired(a: Iterable[float], b: Iterable[float], confidence: float = 0.95) -> Difference:
    """The mean of the per-seed differences a_i - b_i, with its t interval and the paired t test.

    a and b are matched by position (the same seed). p equals scipy.stats.ttest_rel(a, b).pvalue, except
    when every difference is the same (module docstring). Fewer than two pairs: only diff is set, the rest
    nan. Empty, unequal-length or non-finite input: ValueError.
    """
    _check_confidence(confidence)
    xa, xb = _sample(a, "a"), _sample(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(f"paired samples must have the same length, got {xa.size} and {xb.size}")
    d = xa - xb
    diff, n, nan = _mean(d), d.size, math.nan
    if n < 2:
        return Difference(diff, nan, nan, nan, nan, nan, confidence)
    var = _variance(d)
    if var == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return Difference(diff, diff, diff, t, n - 1, 1.0 if diff == 0 else 0.0, confidence)
    se = math.sqrt(var / n)
    t = diff / se
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1)) * se
    return Difference(diff, diff - half, diff + half, t, n - 1, float(2 * sps.t.sf(abs(t), n - 1)), confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (family-wise error control; nan stays nan).

    Sorted ascending, the i-th smallest (0-based) of m is multiplied by m - i, the running maximum taken
    and the result capped at 1.
    """
    ps = [float(p) for p in p_values]
    valid = sorted((p, i) for i, p in enumerate(ps) if math.isfinite(p))
    adjusted, running, m = list(ps), 0.0, len(valid)
    for rank, (p, i) in enumerate(valid):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _axis(values: np.ndarray, log_x: bool, what: str) -> np.ndarray:
    if log_x and (values <= 0).any():
        raise ValueError(
            f"{what} must be positive for log spacing (log_x=True); drop zero L0 points or use log_x=False"
        )
    return np.log10(values) if log_x else values


def interpolate_at(
    x: Sequence[float], y: Sequence[float], targets: float | Sequence[float], log_x: bool = True,
    log_y: bool = False,
) -> np.ndarray:
    """y read off the curve through the points (x, y) at each target x.

    Points are sorted by x and duplicate x values replaced by their mean y; between the two nearest points
    that bracket a target, y is linear in log10(x) (in x when log_x=False), or log10(y) is (log_y=True: the
    two points' y combined geometrically, so halfway between (10, 0.4) and (1000, 0.1) in log x gives 0.2,
    not 0.25). A target outside [min x, max x], or a nan target, gives nan: never extrapolated. Returns an
    array shaped like `targets`. Empty, mismatched or non-finite x/y, x <= 0 with log_x or y <= 0 with log_y:
    ValueError. (With log_y, duplicate x values are averaged on the log scale: their geometric mean.)
    """
    xs, ys = _sample(x, "x"), _sample(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    if log_y and (ys <= 0).any():
        raise ValueError(f"y must be positive to interpolate log y (log_y=True), got {ys.tolist()}")
    ys = np.log10(ys) if log_y else ys
    ux, inverse = np.unique(xs, return_inverse=True)  # sorted unique x
    uy = np.bincount(inverse, weights=ys) / np.bincount(inverse)
    tx = np.asarray(targets, dtype=float)
    out = np.full(tx.shape, math.nan)
    inside = (tx >= ux[0]) & (tx <= ux[-1])  # False for nan targets
    grid = _axis(ux, log_x, "x")
    out[inside] = np.interp(_axis(tx[inside], log_x, "targets"), grid, uy)
    return 10**out if log_y else out


def common_range(ranges: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """The x range every variant covers: [max lo, min hi] of the (lo, hi) ranges; None when it is empty or a
    single point. ValueError for no ranges, lo > hi, non-finite or lo <= 0 (the grid inside is spaced in log10).
    """
    if len(ranges) == 0:
        raise ValueError("ranges is empty: need one (lo, hi) per variant")
    for lo, hi in ranges:
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"each range must be finite with lo <= hi, got ({lo}, {hi})")
        if lo <= 0:
            raise ValueError(f"ranges must be positive for log spacing, got lo = {lo}")
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    return (float(lo), float(hi)) if lo < hi else None


def common_grid(ranges: Sequence[tuple[float, float]], n: int = 3) -> np.ndarray:
    """n x values (e.g. L0) that every variant's frontier covers, evenly spaced in log10 inside the overlap.

    The overlap is `common_range(ranges)`. Its log10 span is cut into n + 1 equal steps and the n interior
    cut points are returned (n = 3: the 25%, 50% and 75% points), so no point sits on an end where a frontier
    has only one run. Empty or single-point overlap: an empty array.
    ValueError for no ranges, n < 1, lo > hi, or lo <= 0.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    covered = common_range(ranges)
    if covered is None:
        return np.empty(0)
    lo, hi = covered
    fractions = np.arange(1, n + 1) / (n + 1)
    return 10 ** (math.log10(lo) + fractions * (math.log10(hi) - math.log10(lo)))
