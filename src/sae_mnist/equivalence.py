"""Resolving a paired KL − L1 difference: which penalty is better, or equivalent within a declared margin.

Each grid point of a threshold's KL − L1 curve ends in one of three resolved labels, from the per-seed paired
differences d_i = FVU_KL,i − FVU_L1,i (n seeds, mean d̄, sample sd s, standard error s/√n):

  KL better      the 95% paired t interval of d̄ lies below 0  (d̄ + t_{.975,n−1}·s/√n < 0)
  L1 better      the 95% paired t interval of d̄ lies above 0  (d̄ − t_{.975,n−1}·s/√n > 0)
  equivalent     the 90% paired t interval lies inside (−margin, +margin): the two one-sided tests (TOST) of
                 "d ≤ −margin" and "d ≥ +margin" each reject at 5%
  unresolved     none of these: more seeds are needed (seeds_to_resolve says how many)

A direction wins over equivalence: a difference whose 95% interval excludes 0 is named by its sign, and
`within_margin` says when it is also smaller than the margin (significant, but smaller than what the margin
declares to matter). With identical differences on every seed (bitwise training can give them) the interval is
the point itself, as in stats.paired.

crossings: where the curve changes from one direction to the other, with the interval of L0 values at which the
paired t test cannot tell the difference from 0 (crossing_interval: Fieller's construction along the curve).

seeds_to_resolve: the fewest seeds with which a difference of a given true size and seed-to-seed sd would be
resolved (any of the three labels) with the wanted probability: the exact probability for normal differences,
integrated over the distribution of the sample sd (no simulation, no normal approximation of t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy import stats as sps

from .stats import paired

LABELS = ("KL better", "L1 better", "equivalent", "unresolved")


@dataclass(frozen=True)
class Resolution:
    """One grid point's paired KL − L1 difference, resolved against the margin."""

    label: str  # one of LABELS
    diff: float  # mean paired difference KL − L1
    ci_low: float  # its 95% t interval
    ci_high: float
    tost_low: float  # its 90% t interval (the two one-sided tests at 5% each)
    tost_high: float
    margin: float
    within_margin: bool  # the 90% interval lies inside (−margin, +margin)
    n: int
    sd: float = float("nan")  # the sample sd of the per-seed differences (seeds_to_resolve's input)


def resolve(kl: np.ndarray, l1: np.ndarray, margin: float) -> Resolution:
    """The label of KL − L1 from per-seed values paired by position (module docstring). Needs 2 seeds or more."""
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    n = len(np.asarray(kl))
    if n < 2:
        raise ValueError(f"resolving a paired difference needs at least 2 seeds, got {n}")
    two_sided = paired(kl, l1, confidence=0.95)
    one_sided = paired(kl, l1, confidence=0.90)
    within = -margin < one_sided.ci_low and one_sided.ci_high < margin
    if two_sided.ci_high < 0:
        label = "KL better"
    elif two_sided.ci_low > 0:
        label = "L1 better"
    elif within:
        label = "equivalent"
    else:
        label = "unresolved"
    sd = float(np.std(np.asarray(kl, float) - np.asarray(l1, float), ddof=1))
    return Resolution(label, two_sided.diff, two_sided.ci_low, two_sided.ci_high, one_sided.ci_low,
                      one_sided.ci_high, margin, within, n, sd)


def probability_resolved(n: int, diff: float, sd: float, margin: float) -> float:
    """The probability that n seeds resolve a paired difference whose per-seed values are Normal(diff, sd²).

    Given the sample sd s, the mean d̄ ~ Normal(diff, sd²/n) is resolved when it lies outside (−a, a) with
    a = t_{.975,n−1}·s/√n (a direction), or inside (−margin + b, margin − b) with b = t_{.95,n−1}·s/√n
    (equivalence; empty when b ≥ margin). a ≥ b, so the union is the outside of (−a, a) plus the part of the
    equivalence interval inside it. s²(n−1)/sd² is chi-square with n−1 degrees of freedom: integrated over.
    """
    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0
    df = n - 1
    t_two, t_one = sps.t.ppf(0.975, df), sps.t.ppf(0.95, df)
    se = sd / math.sqrt(n)
    # The integrand runs thousands of times per n: plain math, not scipy's per-call overhead (same functions).
    log_norm = -(df / 2) * math.log(2) - math.lgamma(df / 2)  # the chi-square density's constant, in logs

    def normal_cdf(z: float) -> float:
        return 0.5 * math.erfc(-z / math.sqrt(2))

    def mean_in(low: float, high: float) -> float:
        return max(0.0, normal_cdf((high - diff) / se) - normal_cdf((low - diff) / se))

    def chi2_pdf(q: float) -> float:
        if q <= 0:
            return 0.5 if df == 2 and q == 0 else 0.0
        return math.exp(log_norm + (df / 2 - 1) * math.log(q) - q / 2)

    def given_chi2(q: float) -> float:
        s = sd * math.sqrt(q / df)
        a, b = t_two * s / math.sqrt(n), t_one * s / math.sqrt(n)
        direction = 1.0 - mean_in(-a, a)
        inner = min(a, margin - b)
        equivalent = mean_in(-inner, inner) if inner > 0 else 0.0
        return (direction + equivalent) * chi2_pdf(q)

    # The chi-square density's bulk: quad over [0, ∞) can miss a narrow peak; split at its mean and far tail.
    upper = sps.chi2.ppf(1 - 1e-12, df)
    total = sum(integrate.quad(given_chi2, lo, hi, limit=200)[0]
                for lo, hi in ((0.0, df), (df, upper)))
    return min(1.0, total)


def seeds_to_resolve(diff: float, sd: float, margin: float, power: float = 0.8, at_most: int = 200) -> int:
    """The fewest seeds (≥ 2) with which probability_resolved reaches `power`; ValueError past `at_most`.

    diff and sd are the observed mean paired difference and the sample sd of the per-seed differences: the
    planning values. A difference near ±margin is the hardest to resolve (neither clearly nonzero nor clearly
    inside), so the count grows without bound there; `at_most` says when to stop.
    """
    if not 0 < power < 1:
        raise ValueError(f"power must be strictly between 0 and 1, got {power}")
    for n in range(2, at_most + 1):
        if probability_resolved(n, diff, sd, margin) >= power:
            return n
    raise ValueError(f"a difference of {diff:.4g} with sd {sd:.4g} is not resolved against the margin {margin:g} "
                     f"with probability {power:g} by {at_most} seeds")


@dataclass(frozen=True)
class Crossing:
    """Where a curve of resolved points changes from one direction to the other, along L0."""

    l0: float  # where the mean difference, linear in log L0 between grid points, first reaches 0 in the stretch
    low: float  # the L0 of the last point labelled `before` ...
    high: float  # ... and of the first point labelled `after`: the grid's bracket around the crossing
    before: str  # "KL better" or "L1 better", at the sparser end of the stretch
    after: str
    ci_low: float | None = None  # crossing_interval over the stretch (None: no L0 qualifies, or n < 2)
    ci_high: float | None = None
    n: int = 0  # the seeds that interval is read over: those at every grid point of the stretch


def crossings(l0: list[float], points: list[Resolution],
              seed_diffs: list[dict[int, float]] | None = None) -> list[Crossing]:
    """Each change of direction along a curve sorted by L0: between a point labelled KL better and the next point
    labelled L1 better (or the reverse), with any equivalent or unresolved points between them. With `seed_diffs`
    (per grid point: seed -> that seed's KL − L1), each crossing also gets its 95% crossing_interval, read over the
    seeds present at every grid point of its stretch."""
    if len(l0) != len(points) or list(l0) != sorted(l0):
        raise ValueError("the curve's L0 values must be sorted and one per resolved point")
    if seed_diffs is not None and len(seed_diffs) != len(points):
        raise ValueError("seed_diffs needs one mapping per grid point")
    directed = [i for i, p in enumerate(points) if p.label in LABELS[:2]]
    found = []
    for i, j in zip(directed, directed[1:]):
        if points[i].label == points[j].label:
            continue
        for k in range(i, j):  # the mean difference's first sign change in the stretch
            a, b = points[k].diff, points[k + 1].diff
            if a == 0 or (a < 0) != (b < 0):
                x = 0.0 if a == 0 else a / (a - b)
                zero = 10 ** (math.log10(l0[k]) + x * (math.log10(l0[k + 1]) - math.log10(l0[k])))
                break
        interval, n = (None, None), 0
        if seed_diffs is not None:
            stretch = seed_diffs[i:j + 1]
            seeds = sorted(set.intersection(*(set(d) for d in stretch)))
            if len(seeds) >= 2:
                n = len(seeds)
                interval = crossing_interval(l0[i:j + 1], np.array([[d[s] for d in stretch] for s in seeds])) \
                    or (None, None)
        found.append(Crossing(zero, l0[i], l0[j], points[i].label, points[j].label, *interval, n))
    return found


def crossing_interval(l0: list[float], diffs: np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """The smallest and largest L0 in [l0[0], l0[-1]] at which the paired t interval of KL − L1 contains 0 (None:
    at none): a confidence interval for where the difference crosses 0, by inverting the test the labels use.

    diffs: (seeds, grid points) per-seed differences, each seed's read linearly in log L0 between grid points as
    the curve's mean is. At the true crossing the difference is 0, so the interval there contains 0 with
    probability `confidence`: the set of such L0 covers the crossing that often (Fieller's construction). Within a
    segment, at fraction u of the way in log L0, the mean m(u) is linear in u and the sample variance v(u) quadratic,
    so "0 inside the interval", m(u)² ≤ t²·v(u)/n, is a quadratic inequality in u, solved exactly. No resampling:
    with 3-9 seeds a bootstrap has few distinct resamples and its percentile interval is too narrow.
    """
    diffs = np.asarray(diffs, float)
    n, m = diffs.shape
    if m != len(l0) or m < 2 or n < 2:
        raise ValueError("crossing_interval needs (seeds >= 2, grid points >= 2) differences, one column per L0")
    q = sps.t.ppf(0.5 + confidence / 2, n - 1) ** 2 / n
    logs = np.log10(np.asarray(l0, float))
    inside: list[float] = []
    for k in range(m - 1):
        start, step = diffs[:, k], diffs[:, k + 1] - diffs[:, k]
        cov = np.cov(start, step)  # ddof 1: [[var(start), cov], [cov, var(step)]]
        a = step.mean() ** 2 - q * cov[1, 1]
        b = 2 * (start.mean() * step.mean() - q * cov[0, 1])
        c = start.mean() ** 2 - q * cov[0, 0]
        inside += [logs[k] + u * (logs[k + 1] - logs[k]) for u in _nonpositive(a, b, c)]
    return (float(10 ** min(inside)), float(10 ** max(inside))) if inside else None


def _nonpositive(a: float, b: float, c: float) -> list[float]:
    """The ends of the pieces of [0, 1] where a·u² + b·u + c ≤ 0 (each root in [0, 1] is one: the quadratic is 0
    there)."""
    if a == 0 and b == 0:
        return [0.0, 1.0] if c <= 0 else []
    if a == 0:
        roots = [-c / b]
    else:
        disc = b * b - 4 * a * c
        if -1e-12 * (b * b + abs(4 * a * c)) < disc < 0:  # a double root lost to rounding (seeds that agree)
            disc = 0.0
        roots = [] if disc < 0 else [(-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)]
    cuts = sorted({0.0, 1.0, *(r for r in roots if 0 < r < 1)})
    value = lambda u: (a * u + b) * u + c  # noqa: E731
    ends = [r for r in roots if 0 <= r <= 1]
    for lo, hi in zip(cuts, cuts[1:]):
        if value((lo + hi) / 2) <= 0:
            ends += [lo, hi]
    return ends
