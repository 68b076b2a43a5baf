"""Dead units along the compared frontiers: where a value of the verdict's curve rests on runs that lost many of
their code units.

A run whose code loses units is, in effect, a narrower model that uses its live units more. KL's penalty pulls every
unit toward firing at its target rate ρ, so its runs keep their units; L1 leaves a model free to drop them. Per
architecture: (1) per grid point of the primary estimand, the most dead units among the L1 and the KL runs that point
is read between, on each seed (test split: a unit is dead when it is active on no test image at the activity
threshold); (2) from the lr_select file, the most dead units of any frontier run inside the declared range at each
rate (validation split, the lr_select seed): whether a chosen rate is one where runs drop units.
"""

from __future__ import annotations

import numpy as np

from ...estimand import Estimand, points_estimand, seed_frontiers
from ..inputs import Inputs
from ..text import PENALTY_LABEL, UNIT_NOUN, markdown_table
from .learning_rates import rate_points

DEAD_LIMIT = 0.10  # more than this fraction of the units dead is "many": the report's limit for penalised defaults


def bracket_dead(front: tuple, grid: np.ndarray) -> np.ndarray:
    """(grid,) the larger dead fraction of the two frontier runs each grid L0 is read between, on one seed's
    frontier (L0, FVU, dead fraction), sorted by L0; a grid L0 equal to a run's reads that run alone."""
    l0, dead = np.asarray(front[0]), np.asarray(front[2])
    above = np.clip(np.searchsorted(l0, grid, side="left"), 0, len(l0) - 1)
    below = np.clip(np.searchsorted(l0, grid, side="right") - 1, 0, len(l0) - 1)
    return np.maximum(dead[below], dead[above])


def grid_dead(points: list[dict], threshold: float, grid: np.ndarray, seeds: list[int]) -> np.ndarray:
    """(seeds, grid) bracket_dead on each seed's frontier of `points` (a frontier file's) at `threshold`."""
    fronts = seed_frontiers(points, threshold, extra="dead_fraction")
    return np.array([bracket_dead(fronts[s], grid) for s in seeds])


def many_dead(points: list[dict], l0_range: tuple[float, float], limit: float = DEAD_LIMIT) -> tuple[int, int, float]:
    """(runs with more than `limit` of their units dead, runs, the largest dead fraction) among the runs whose L0
    lies inside `l0_range`."""
    inside = [p["metrics"]["dead_fraction"] for p in points if l0_range[0] <= p["metrics"]["l0"] <= l0_range[1]]
    return sum(d > limit for d in inside), len(inside), max(inside, default=0.0)


def units_of(inputs: Inputs, arch: str) -> int:
    return inputs.params.model.linear.hidden if arch == "linear" else inputs.params.model.conv.channels


def rate_rows(selection: dict, units: int, l0_range: tuple[float, float]) -> list[list[str]]:
    """Per penalty of the lr_select file: the most dead units of a run inside `l0_range` at each rate (the chosen
    rate in bold), and how many of the rate's runs there lose more than DEAD_LIMIT."""
    rows = []
    for penalty, choice in selection["chosen"].items():
        cells = []
        for variation in selection["variations"]:
            n_many, n, worst = many_dead([p for p in variation["points"] if p["penalty"] == penalty], l0_range)
            text = f"{round(worst * units)} ({n_many} of {n})"
            cells.append(f"**{text}**" if variation["factor"] == choice["best_factor"] else text)
        rows.append([PENALTY_LABEL[penalty], *cells])
    return rows


def live_rate_sensitivity(selection: dict, threshold: float, l0_range: tuple[float, float]
                          ) -> tuple[float, Estimand | None, Estimand | None] | None:
    """Where L1's chosen rate has runs inside `l0_range` with many dead units: (the best-scoring rate factor at which
    none has, KL − L1 on the validation split with L1 there and KL at its chosen rate, the same at both chosen
    rates). None where the chosen rate keeps its units or no rate of the grid does (then the factor is nan)."""
    chosen = {p: selection["chosen"][p]["best_factor"] for p in ("l1", "kl")}
    live = [v["factor"] for v in selection["variations"]
            if not many_dead(rate_points(selection, v["factor"], "l1"), l0_range)[0]]
    if chosen["l1"] in live:
        return None
    scores = selection["chosen"]["l1"]["mean_log10_fvu"]
    live = [f for f in live if scores.get(f"{f:g}") is not None]
    if not live:
        return float("nan"), None, None
    best = min(live, key=lambda f: scores[f"{f:g}"])
    kl = rate_points(selection, chosen["kl"], "kl")
    return (best, points_estimand(rate_points(selection, best, "l1"), kl, threshold, l0_range),
            points_estimand(rate_points(selection, chosen["l1"], "l1"), kl, threshold, l0_range))


def live_rate_sentence(selection: dict, arch: str, threshold: float, l0_range: tuple[float, float]) -> str:
    found = live_rate_sensitivity(selection, threshold, l0_range)
    if found is None:
        return ""
    best, live, chosen = found
    plural = UNIT_NOUN[arch][1]
    if live is None or chosen is None:
        return (f"No rate of the grid keeps every L1 run inside the declared range above {1 - DEAD_LIMIT:.0%} of "
                f"its {plural}, or the frontiers there share no L0: no sensitivity.\n")
    scores, base = selection["chosen"]["l1"]["mean_log10_fvu"], selection["base_lr"]
    at, chosen_score = live.at_grid, scores[f"{selection['chosen']['l1']['best_factor']:g}"]
    return (f"Sensitivity (added with this section, after the results; not part of the protocol): L1 at the "
            f"best-scoring rate of the grid at which no L1 run inside the declared range loses more than "
            f"{DEAD_LIMIT:.0%} of its {plural} (lr {base * best:.3g}, ×{best:g}; score {scores[f'{best:g}']:.4f}, "
            f"against {chosen_score:.4f} at the chosen rate), KL at its "
            f"chosen rate, seed {selection['seed']}, validation split: KL − L1 averaged over the grid is "
            f"{live.difference.diff:+.4f} FVU (at the chosen rates {chosen.difference.diff:+.4f}); per grid point "
            f"{at[0].diff:+.4f} at L0 {live.grid[0]:.3g} to {at[-1].diff:+.4f} at L0 {live.grid[-1]:.3g} "
            f"(at the chosen rates {chosen.at_grid[0].diff:+.4f} to {chosen.at_grid[-1].diff:+.4f}).\n")


def grid_sentence(arch: str, grid: np.ndarray, dead: dict[str, np.ndarray], units: int) -> str:
    """Which grid points are read between runs with many dead units, per compared penalty, in words."""
    plural = UNIT_NOUN[arch][1]
    parts = []
    for penalty, fractions in dead.items():
        hit = (fractions > DEAD_LIMIT).any(axis=0)
        if not hit.any():
            parts.append(f"{PENALTY_LABEL[penalty]}: at none")
            continue
        worst = round(float(fractions[:, hit].max()) * units)
        parts.append(f"{PENALTY_LABEL[penalty]}: at {int(hit.sum())} of {len(grid)} (L0 ≈ {grid[hit][0]:.3g}–"
                     f"{grid[hit][-1]:.3g}; up to {worst} of {units} {plural} dead)")
    return (f"{arch}: the grid points of the primary estimand read between runs that lost more than "
            f"{DEAD_LIMIT:.0%} of their {plural} on at least one seed — " + "; ".join(parts) + ".")


def arch_part(inputs: Inputs, arch: str, result) -> list[str]:
    theta = inputs.theta
    est = result.estimands[theta]
    units, l0_range = units_of(inputs, arch), inputs.params.sweep.l0_range.of(arch)
    md = [f"### {arch}\n"]
    if est is not None:
        dead = {p: grid_dead(result.points[p], theta, est.grid, est.seeds) for p in ("l1", "kl")}
        md.append(grid_sentence(arch, est.grid, dead, units) + "\n")
        header = ["L0", *[f"{PENALTY_LABEL[p]}: dead per seed ({', '.join(map(str, est.seeds))})" for p in dead]]
        rows = [[f"{g:.3g}", *[", ".join(str(round(f * units)) for f in dead[p][:, i]) for p in dead]]
                for i, g in enumerate(est.grid)]
        md.append(markdown_table(header, rows))
    if (selection := inputs.selections.get(arch)) is not None:
        base = selection["base_lr"]
        md.append(f"At each rate of the learning-rate grid (*Learning rates*; validation split, seed "
                  f"{selection['seed']}): the most dead {UNIT_NOUN[arch][1]} of a frontier run inside the declared "
                  f"range L0 {l0_range[0]:g}–{l0_range[1]:g}, and how many of that rate's runs there lose more than "
                  f"{DEAD_LIMIT:.0%} (the chosen rate in bold).\n")
        header = ["penalty", *[f"lr {base * v['factor']:.3g} (×{v['factor']:g})" for v in selection["variations"]]]
        md.append(markdown_table(header, rate_rows(selection, units, l0_range)))
        md.append(live_rate_sentence(selection, arch, theta, l0_range))
    return md


def section(inputs: Inputs, results: dict) -> str:
    md = ["## Dead units along the frontiers\n",
          "A run whose code loses units is, in effect, a narrower model that uses its live units more. KL's penalty "
          "pulls every unit toward firing at its target rate ρ, so its runs keep their units; L1 leaves a model free "
          "to drop them. Per grid point of the primary estimand: the most dead units among the runs that point is "
          "read between, on each seed (test split; dead: active on no test image).\n"]
    for arch, result in results.items():
        md += arch_part(inputs, arch, result)
    return "\n".join(md)
