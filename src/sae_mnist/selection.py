"""Each penalty's learning rate, chosen on the validation split (docs/design/verdict-protocol.md, section 2).

One seed's stack of every L1, KL and TopK frontier setting is trained at train.lr times each factor of a grid
(stages/lr_select.py). A penalty's score at a factor is the mean log10 validation FVU of its Pareto frontier (the
truncated code at evaluate.active_threshold) read at the primary estimand's grid: PRIMARY_GRID_POINTS L0 values
evenly spaced in log L0 inside the range that the penalty's frontier covers at every factor, narrowed to the
declared `sweep.l0_range` (GRID_RANGES: where they share no L0 there, the range they share), log FVU interpolated
linearly in log L0. The lowest score wins. Where a penalty's best lies at an edge of the grid, one more rate beyond
that edge is trained (next_factor), up to a cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import stats
from .estimand import PRIMARY_GRID_POINTS, PRIMARY_LOG_FVU, pareto_front


# Where a penalty's grid lies: inside the declared sweep.l0_range; where the frontiers share no L0 there, the range
# they share (e.g. a smoke run's small models); or nowhere: they share no L0 at all (or one is a single point), so
# nothing is chosen and the base rate (factor 1, or the factor nearest it) stays. The last two are named wherever
# the choice is shown.
GRID_RANGES = ("declared", "shared", "none")


@dataclass(frozen=True)
class Choice:
    """One penalty's learning-rate choice: its score at each factor, read at `grid`, and the best factor."""

    penalty: str
    grid: np.ndarray  # the L0 values every factor's frontier is read at
    grid_range: str  # GRID_RANGES: where the grid lies
    scores: dict[float, float]  # factor -> mean log10 validation FVU over the grid (lower is better; nan: no grid)

    @property
    def best(self) -> float:
        """The factor with the lowest score (ties, or no grid: the one nearest 1, then the smaller)."""
        scored = self.grid_range != "none"
        return min(self.scores, key=lambda f: (self.scores[f] if scored else 0.0, abs(np.log(f)), f))

    @property
    def at_edge(self) -> str | None:
        """"low" or "high" when the best factor is the grid's smallest or largest (and scored), else None."""
        factors = sorted(self.scores)
        if self.grid_range == "none":
            return None
        return "low" if self.best == factors[0] else "high" if self.best == factors[-1] else None

    def as_json(self, base_lr: float) -> dict:
        return {"grid_l0": [float(v) for v in self.grid], "grid_range": self.grid_range,
                "mean_log10_fvu": {f"{f:g}": (s if np.isfinite(s) else None) for f, s in sorted(self.scores.items())},
                "best_factor": self.best, "lr": base_lr * self.best, "at_edge": self.at_edge}


def frontier(points: list[dict], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(L0, FVU) of the Pareto frontier of evaluated points (a frontier file's: metrics at each threshold)."""
    key = f"{threshold:g}"
    return pareto_front([p["metrics"][f"l0_at_{key}"] for p in points],
                        [p["metrics"][f"fvu_at_{key}"] for p in points])


def choose(penalty: str, points_by_factor: dict[float, list[dict]], threshold: float,
           l0_range: tuple[float, float], n_grid: int = PRIMARY_GRID_POINTS) -> Choice:
    """Score one penalty's frontier at each factor (module docstring); points: that penalty's evaluated points."""
    fronts = {factor: frontier(points, threshold) for factor, points in points_by_factor.items()}
    if any(len(l0) < 2 for l0, _ in fronts.values()):  # a frontier of one point covers no range
        return Choice(penalty, np.empty(0), "none", {factor: math.nan for factor in fronts})
    ranges = [(float(l0.min()), float(l0.max())) for l0, _ in fronts.values()]
    grid = stats.common_grid(ranges + [tuple(l0_range)], n=n_grid)
    grid_range = "declared"
    if len(grid) == 0:
        grid, grid_range = stats.common_grid(ranges, n=n_grid), "shared"
    if len(grid) == 0:
        return Choice(penalty, grid, "none", {factor: math.nan for factor in fronts})
    scores = {factor: float(np.mean(np.log10(stats.interpolate_at(l0, fvu, grid, log_y=PRIMARY_LOG_FVU))))
              for factor, (l0, fvu) in fronts.items()}
    return Choice(penalty, grid, grid_range, scores)


def next_factor(choices: list[Choice], step: float, max_rates: int) -> float | None:
    """The factor to train next: `step` beyond the edge where the first penalty (in order) with its best at an edge
    has it; None when every best lies inside the grid or the grid already holds `max_rates` factors."""
    factors = sorted(choices[0].scores)
    if len(factors) >= max_rates:
        return None
    for choice in choices:
        if choice.at_edge == "low":
            return factors[0] / step
        if choice.at_edge == "high":
            return factors[-1] * step
    return None
