"""KL − L1 as a curve along L0, in words: where its sign holds, where it changes, and the verdict sentences."""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..estimand import INTERPOLATION, Estimand
from .text import l0_text, p_text

BETTER_BY_SIGN = {-1: "KL", 1: "L1"}  # the sign of KL − L1 in FVU -> the penalty that reconstructs better
SIGNIFICANCE = "significant: unadjusted, the point's paired 95% interval excludes zero"


def significant(d: stats.Difference) -> bool:
    """The paired 95% interval excludes zero (unadjusted): p < 0.05."""
    return math.isfinite(d.p) and d.p < 0.05


def sign_runs(differences: list[float]) -> list[tuple[int, int, int]]:
    """The maximal runs of consecutive grid points whose difference has one sign: (sign, first, last index)."""
    runs: list[tuple[int, int, int]] = []
    for i, d in enumerate(differences):
        sign = int(np.sign(d))
        if runs and runs[-1][0] == sign:
            runs[-1] = (sign, runs[-1][1], i)
        else:
            runs.append((sign, i, i))
    return runs


def zero_crossing(x0: float, d0: float, x1: float, d1: float) -> float:
    """The L0 where the line through (log10 x0, d0) and (log10 x1, d1) crosses zero: where the sign changes
    between two grid points (d0 and d1 of opposite signs), on the grid's log scale."""
    fraction = d0 / (d0 - d1)
    return 10 ** (math.log10(x0) + fraction * (math.log10(x1) - math.log10(x0)))


def _n_significant(est: Estimand, first: int, last: int) -> int:
    """How many grid points first..last have a paired 95% interval excluding zero."""
    return sum(map(significant, est.at_grid[first:last + 1]))


def _stretch(est: Estimand, first: int, last: int) -> str:
    """'L0 ≈ 40.4–46 (KL − L1 -0.0151 to -0.0176 FVU, significant at 2 of 2)' for grid points first..last."""
    grid, points = est.grid, est.at_grid[first:last + 1]
    span = f"L0 ≈ {l0_text(grid[first])}" + ("" if first == last else f"–{l0_text(grid[last])}")
    diffs = [d.diff for d in points]
    smallest, largest = f"{min(diffs, key=abs):+.4f}", f"{max(diffs, key=abs):+.4f}"
    size = smallest if smallest == largest else f"{smallest} to {largest}"
    return f"{span} (KL − L1 {size} FVU, significant at {_n_significant(est, first, last)} of {len(points)})"


def _who_is_better(est: Estimand, sign: int, first: int, last: int) -> str:
    """'KL reconstructs better', or, where none of the stretch's points is significant, that it is only nominal."""
    if _n_significant(est, first, last):
        return f"{BETTER_BY_SIGN[sign]} reconstructs better"
    n = last - first + 1
    where = "not significant at its one grid point" if n == 1 else f"significant at none of its {n} grid points"
    return f"{BETTER_BY_SIGN[sign]} is nominally better ({where})"


def curve_sentence(est: Estimand, threshold: float) -> str:
    """What KL − L1 does along the grid: one sign everywhere (who is better over the whole covered range), one
    reversal (who is better below and above the L0 where it changes sign), or several; with how many of each
    stretch's points have a paired 95% interval excluding zero (unadjusted)."""
    lo, hi = est.covered
    where = (f"the covered range L0 ≈ {l0_text(lo)}–{l0_text(hi)} (the L0 every seed's L1 and KL frontiers reach, "
             f"threshold {threshold:g})")
    runs = sign_runs([d.diff for d in est.at_grid])
    if len(runs) == 1:
        sign, first, last = runs[0]
        who = f"{BETTER_BY_SIGN[sign]} reconstructs better" if sign else "KL and L1 reconstruct equally well"
        return (f"{who} at all {len(est.grid)} grid points of {where}, {_stretch(est, first, last)}; "
                f"{SIGNIFICANCE}.")
    stretches = "; ".join(f"{BETTER_BY_SIGN[sign] + ' better' if sign else 'equal'} at {_stretch(est, first, last)}"
                          for sign, first, last in runs)
    if len(runs) == 2 and 0 not in (runs[0][0], runs[1][0]):
        grid, d = est.grid, est.at_grid
        last = runs[0][2]
        x = zero_crossing(grid[last], d[last].diff, grid[last + 1], d[last + 1].diff)
        below, above = (_who_is_better(est, *run) for run in runs)
        head = f"the sign of KL − L1 reverses inside {where}: {below} below L0 ≈ {l0_text(x)}, {above} above"
    else:
        head = f"the sign of KL − L1 changes {len(runs) - 1} times inside {where}"
    return f"{head} ({stretches}; {SIGNIFICANCE})."


def average_sentence(est: Estimand, holm_p: float) -> str:
    """The primary estimand, the mean of KL − L1 over the grid, paired over seeds, with its Holm-adjusted p; when
    the curve changes sign, a reminder that the average weighs the stretches rather than naming a winner."""
    d, n = est.difference, len(est.seeds)
    if math.isfinite(holm_p):
        test = f"Holm-adjusted p = {holm_p:.3g}, {'significant' if holm_p < 0.05 else 'not significant'} at 5%"
    else:
        test = "too few seeds for a test"
    text = (f"Averaged over the grid (the primary estimand): KL − L1 = {d.diff:+.4f} FVU (95% CI "
            f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}], paired over {n} seeds; {test}).")
    if len(sign_runs([g.diff for g in est.at_grid])) > 1:
        text += (" The curve changes sign, so this average weighs the stretches by their share of the grid: it "
                 "names no winner for the whole range.")
    return text


def verdict(arch: str, by_threshold: dict[float, Estimand | None], primary_threshold: float, holm_p: float) -> str:
    """The architecture's L1-vs-KL verdict: the curve of KL − L1 along the grid at the primary threshold (where
    it favours which penalty), the primary estimand (its average), and at which other thresholds the average's
    sign (and unadjusted significance) holds."""
    primary = by_threshold.get(primary_threshold)
    if primary is None:
        return (f"{arch}: the L1 and KL frontiers do not overlap in L0 on every seed, so they cannot be "
                "compared at matched sparsity; widen the sweep in params.yaml.")
    d = primary.difference
    text = f"{arch}: {curve_sentence(primary, primary_threshold)} {average_sentence(primary, holm_p)}"
    same, other = [], []
    for t, est in sorted(by_threshold.items()):
        if t == primary_threshold:
            continue
        if est is None:
            other.append(f"{t:g} (no overlap)")
        elif (est.difference.diff < 0) == (d.diff < 0):
            same.append(f"{t:g}" + ("" if est.difference.p < 0.05 else " (not significant)"))
        else:
            other.append(f"{t:g} (reversed)")
    if same and not other:
        text += f" The average's sign holds at every other threshold: {', '.join(same)}."
    elif same:
        text += f" The average's sign holds at {', '.join(same)}; not at {', '.join(other)}."
    elif other:
        text += f" It does not hold at the other thresholds: {', '.join(other)}."
    return text


def sensitivity_sentence(arch: str, primary: Estimand, alternative: Estimand | None) -> str:
    """The primary estimand under the other interpolation rule, and whether its sign agrees."""
    rule = INTERPOLATION[primary.log_fvu]
    if alternative is None:
        return f"{arch}: no sensitivity estimate (the frontiers do not overlap)."
    d, p = alternative.difference, primary.difference
    agrees = "the same sign as" if np.sign(d.diff) == np.sign(p.diff) else "the opposite sign to"
    return (f"{arch}, sensitivity: with {INTERPOLATION[alternative.log_fvu]} (instead of {rule}), the average "
            f"KL − L1 is {d.diff:+.4f} FVU (95% CI [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
            f"{', paired ' + p_text(d.p) if math.isfinite(d.p) else ''}): {agrees} the primary estimand "
            f"({p.diff:+.4f}).")
