"""The benchmark's pre-declared primary estimand: KL − L1 in FVU at matched L0, paired over seeds.

Its pieces, each used by the report (sae_mnist.report), the robustness study and the benchmarks: a variant's
per-seed Pareto frontiers (seed_frontiers), each read at a grid of L0 values (matched_values), and the estimand
itself (primary_estimand), an Estimand. Nothing here formats text or draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import stats

PRIMARY_GRID_POINTS = 9  # L0 values, evenly spaced in log L0 strictly inside the covered range
PRIMARY_LOG_FVU = True  # each frontier read by interpolating log FVU linearly in log L0 (False: FVU, the sensitivity)
INTERPOLATION = {True: "log FVU interpolated linearly in log L0", False: "FVU interpolated linearly in log L0"}
PRIMARY_ESTIMAND = (
    "KL − L1 in test FVU of the truncated code at the activity threshold `evaluate.active_threshold`, averaged "
    f"over {PRIMARY_GRID_POINTS} L0 values evenly spaced in log L0 inside the declared range `sweep.l0_range` "
    "(clipped to the range every seed's L1 and KL Pareto frontiers cover, if narrower), each frontier read there "
    f"with {INTERPOLATION[PRIMARY_LOG_FVU]} between its points (never extrapolated); paired over seeds (each "
    "seed's L1 and KL start from the same weights and see the same batches: the paired t interval and test of the "
    "per-seed averages); Holm's correction across the architectures. Negative favours KL."
)


@dataclass(frozen=True)
class Estimand:
    """KL − L1 along a grid of L0 values and averaged over it (primary_estimand)."""

    seeds: list[int]
    covered: tuple[float, float]  # the L0 range every seed's two frontiers reach (narrowed to the declared one)
    grid: np.ndarray  # the L0 values it is read at
    log_fvu: bool  # the interpolation rule (INTERPOLATION)
    fvu_l1: np.ndarray  # (seeds, grid) each seed's L1 frontier read at the grid
    fvu_kl: np.ndarray  # (seeds, grid)
    per_seed: np.ndarray  # each seed's mean of KL − L1 over the grid
    difference: stats.Difference  # the average, paired over seeds: the estimand
    at_grid: list[stats.Difference]  # each grid point's paired KL − L1: the curve the verdict describes
    bracket: np.ndarray | None = None  # (grid,) widest_brackets: how far apart the trained points read there lie

    def as_json(self) -> dict:
        """For summary.json: the covered L0 range, the grid, the rule, the per-seed averages, the average's paired
        difference, and KL − L1 at each grid point with its interval and p."""
        return {"l0_range": [float(v) for v in self.covered], "grid": [float(v) for v in self.grid],
                "interpolation": INTERPOLATION[self.log_fvu], "seeds": self.seeds,
                "per_seed": self.per_seed.tolist(), **self.difference.__dict__,
                "at_grid": [{"l0": float(l0), "fvu_l1": float(self.fvu_l1[:, i].mean()),
                             "fvu_kl": float(self.fvu_kl[:, i].mean()), **d.__dict__,
                             **({"bracket": float(self.bracket[i])} if self.bracket is not None else {})}
                            for i, (l0, d) in enumerate(zip(self.grid, self.at_grid))]}


def pareto_front(l0: np.ndarray, fvu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points not beaten by a sparser one: sorted by L0, each with lower FVU than every sparser point.

    Several families of settings (KL's rho at several code scales) or noise can leave points above
    the curve; the frontier is the best FVU reached at each sparsity: KL's envelope over its scales.
    """
    return pareto_points(l0, fvu)[:2]


def pareto_points(l0, fvu, *extra) -> tuple[np.ndarray, ...]:
    """pareto_front, carrying further per-point arrays (e.g. probe accuracy) along with the kept points."""
    l0, fvu = np.asarray(l0, float), np.asarray(fvu, float)
    extra = [np.asarray(e, float) for e in extra]
    keep = (l0 > 0) & np.isfinite(l0) & np.isfinite(fvu)
    order = np.argsort(l0[keep], kind="stable")
    columns = [c[keep][order] for c in (l0, fvu, *extra)]
    kept, best = [], math.inf
    for i, y in enumerate(columns[1]):
        if y < best:
            kept.append(i)
            best = y
    return tuple(c[kept] for c in columns)


def seed_frontiers(points: list[dict], threshold: float, extra: str | None = None) -> dict[int, tuple]:
    """Each seed's frontier of one variant at one activity threshold: {seed: (L0, FVU[, extra])} on the Pareto front.

    points: a frontier file's points (setting, seed, metrics); L0 and FVU of the truncated code at `threshold`.
    """
    by_seed: dict[int, list[dict]] = {}
    for point in points:
        by_seed.setdefault(point["seed"], []).append(point["metrics"])
    key = f"{threshold:g}"
    fronts = {}
    for seed, metrics in sorted(by_seed.items()):
        columns = [[m[f"l0_at_{key}"] for m in metrics], [m[f"fvu_at_{key}"] for m in metrics]]
        if extra:
            columns.append([m[extra] for m in metrics])
        fronts[seed] = pareto_points(*columns)
    return fronts


def matched_values(fronts: dict[int, tuple], grid: np.ndarray, column: int = 1, log_y: bool = False) -> np.ndarray:
    """(seeds, grid) values of one column of each seed's frontier (1: FVU, 2: the extra one), read at `grid` L0
    (log_y: log values interpolated, as the primary estimand reads FVU)."""
    return np.array([stats.interpolate_at(f[0], f[column], grid, log_y=log_y) for _, f in sorted(fronts.items())])


def bracket_ratios(l0: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target L0: the ratio of the frontier L0 values next above and next below it (1 at a frontier
    point, nan outside the frontier), the stretch its value is interpolated across."""
    l0, targets = np.unique(np.asarray(l0, float)), np.asarray(targets, float)
    out = np.full(targets.shape, np.nan)
    for i, t in enumerate(targets):
        below, above = l0[l0 <= t], l0[l0 >= t]
        if len(below) and len(above):
            out[i] = above[0] / below[-1]
    return out


def widest_brackets(fronts: list[tuple], grid: np.ndarray) -> np.ndarray:
    """(grid,) the widest bracket_ratios over the given frontiers (every seed's L1 and KL): where a grid point
    is read between trained models far apart in L0, its value is a chord across that stretch (amendment 3)."""
    return np.nanmax(np.array([bracket_ratios(f[0], grid) for f in fronts]), axis=0)


def primary_estimand(l1: dict[int, tuple], kl: dict[int, tuple], n_grid: int = PRIMARY_GRID_POINTS,
                     log_fvu: bool = PRIMARY_LOG_FVU, l0_range: tuple[float, float] | None = None) -> Estimand | None:
    """KL − L1 in FVU at matched L0, averaged over the L0 range every seed's L1 and KL frontier covers.

    The pre-declared primary estimand of an architecture (PRIMARY_ESTIMAND). Per seed s: read both of that
    seed's frontiers at `n_grid` L0 values evenly spaced in log10 inside the covered range (stats.common_range,
    stats.common_grid), narrowed to the declared `l0_range` where given (at the primary threshold), log FVU
    linear in log L0 between frontier points (log_fvu=False: FVU linear in log L0, which overstates FVU between
    the points of a convex frontier), and average the differences: D_s. Then the mean of D_s over seeds, with the
    paired t interval and test (the same seed trains L1 and KL from the same weights on the same batches). Also
    each grid point's paired difference over seeds (`at_grid`). None when the frontiers do not overlap (or have
    < 2 points).
    """
    seeds = sorted(set(l1) & set(kl))
    fronts = [l1[s] for s in seeds] + [kl[s] for s in seeds]
    if not seeds or any(len(f[0]) < 2 for f in fronts):
        return None
    ranges = [(f[0].min(), f[0].max()) for f in fronts] + ([tuple(l0_range)] if l0_range is not None else [])
    covered, grid = stats.common_range(ranges), stats.common_grid(ranges, n=n_grid)
    if len(grid) == 0:
        return None
    fvu_l1 = matched_values({s: l1[s] for s in seeds}, grid, log_y=log_fvu)
    fvu_kl = matched_values({s: kl[s] for s in seeds}, grid, log_y=log_fvu)
    return Estimand(seeds=seeds, covered=covered, grid=grid, log_fvu=log_fvu, fvu_l1=fvu_l1, fvu_kl=fvu_kl,
                    per_seed=(fvu_kl - fvu_l1).mean(axis=1),
                    difference=stats.paired(fvu_kl.mean(axis=1), fvu_l1.mean(axis=1)),
                    at_grid=[stats.paired(fvu_kl[:, i], fvu_l1[:, i]) for i in range(len(grid))],
                    bracket=widest_brackets(fronts, grid))


def points_estimand(l1_points: list[dict], kl_points: list[dict], threshold: float,
                    l0_range: tuple[float, float] | None = None) -> Estimand | None:
    """primary_estimand of frontier-file points (setting, seed, metrics) at `threshold`: each seed's L1 and KL
    frontiers (seed_frontiers), e.g. of one seed's points or of one training variation's (stages/robustness.py)."""
    return primary_estimand(seed_frontiers(l1_points, threshold), seed_frontiers(kl_points, threshold),
                            l0_range=l0_range)


def where_in_range(l0: float, l0_range: tuple[float, float]) -> str:
    """Where an L0 lies against a declared range: "below", "inside" (bounds included) or "above"."""
    return "below" if l0 < l0_range[0] else "above" if l0 > l0_range[1] else "inside"
