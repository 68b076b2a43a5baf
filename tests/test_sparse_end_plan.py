"""The sparse_end plan (sae_mnist.sparse_end_plan): seeds and settings chosen from the validation curve, by hand.

Synthetic frontiers, 3 seeds: L1's FVU a power law in L0, 0.1·(L0/20)^-0.5 at every threshold, KL's the same times
(1 + r_seed). Log FVU read linearly in log L0 is exact on a power law, so at any grid L0 the paired difference is
FVU_L1(L0)·r_seed: the mean and sd that seeds_to_resolve takes are known by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from sae_mnist import sparse_end_plan
from sae_mnist.equivalence import seeds_to_resolve
from sae_mnist.params import load_params
from tests.conftest import REPO

L0S = [10.0, 20.0, 40.0, 80.0, 160.0, 320.0]
RATIOS = {0: 0.02, 1: 0.12, 2: 0.07}  # KL / L1 − 1 per seed, on validation: mean 0.07, sd 0.05


def fvu(l0: float) -> float:
    return 0.1 * (l0 / 20) ** -0.5


def metrics(l0: float, value: float, thresholds) -> dict:
    return {k: v for t in thresholds for k, v in ((f"l0_at_{t:g}", l0), (f"fvu_at_{t:g}", value))}


def points(penalty: str, thresholds, test_ratio: float) -> list[dict]:
    """A frontier file's points: on validation KL = L1·(1 + r_seed); on test KL far worse (resolved everywhere)."""
    found = []
    for seed, ratio in RATIOS.items():
        for i, l0 in enumerate(L0S):
            factor = (1 + ratio, 1 + test_ratio) if penalty == "kl" else (1.0, 1.0)
            found.append({"setting": {"lam": float(i)} if penalty == "l1" else {"beta": 1.0, "rho": i / 100,
                                                                                  "scale": 2.0},
                          "seed": seed, "metrics": metrics(l0, fvu(l0) * factor[1], thresholds),
                          "validation": metrics(l0, fvu(l0) * factor[0], thresholds)})
    return found


@pytest.fixture
def params():
    return load_params(REPO / "params.yaml")


def test_the_seeds_come_from_the_validation_curve_and_the_settings_bracket_its_unresolved_points(params):
    thresholds = params.evaluate.thresholds
    l1, kl = points("l1", thresholds, 0.0), points("kl", thresholds, 1.0)
    curves = sparse_end_plan.validation_curves(l1, kl, params, "linear")
    theta_curve = next(c for c in curves if c.threshold == params.evaluate.active_threshold and not c.declared)
    r = np.array(list(RATIOS.values()))
    for g, point in zip(theta_curve.estimand.grid, theta_curve.points):
        diffs = fvu(g) * r  # by hand: the per-seed paired differences at this L0
        assert point.diff == pytest.approx(diffs.mean(), rel=1e-9)
        assert point.sd == pytest.approx(diffs.std(ddof=1), rel=1e-9)
    plan = sparse_end_plan.plan(l1, kl, params, "linear")
    unresolved = [(c.threshold, g, p) for c in curves for g, p in zip(c.estimand.grid, c.points)
                  if p.label == "unresolved"]
    assert unresolved and len(plan["needed"]) == len(unresolved)
    worst = max(seeds_to_resolve(p.diff, p.sd, params.verdict.margin) for _, _, p in unresolved)
    assert plan["seeds"] == list(range(3, worst))  # seeds 0-2 exist: the rest up to the count the worst point needs
    # every unresolved grid L0 lies between two frontier points, and those are the settings trained again
    below = max(x for x in L0S if x <= min(g for _, g, _ in unresolved))
    above = min(x for x in L0S if x >= max(g for _, g, _ in unresolved))
    assert sorted(s["lam"] for s in plan["l1"]) == [float(i) for i, x in enumerate(L0S) if below <= x <= above]
    block = sparse_end_plan.params_block({"linear": plan})
    assert block.startswith("sparse_end:\n  linear:\n    seeds: [3, ") and "- {beta: 1.0, scale: 2.0, rho: [" in block


def test_points_that_need_more_than_the_cap_stay_unresolved_and_bracket_nothing(params):
    thresholds = params.evaluate.thresholds
    l1, kl = points("l1", thresholds, 0.0), points("kl", thresholds, 1.0)
    full = sparse_end_plan.plan(l1, kl, params, "linear", max_seeds=200)
    counts = sorted({n for _, _, n in full["needed"]})
    assert len(counts) > 1 and full["beyond"] == []
    cap = counts[0]  # only the points that need the fewest seeds fit under it
    capped = sparse_end_plan.plan(l1, kl, params, "linear", max_seeds=cap)
    assert {n for _, _, n in capped["needed"]} == {cap} and capped["seeds"] == list(range(3, cap))
    assert sorted(capped["needed"] + capped["beyond"]) == sorted(full["needed"])
    assert sparse_end_plan.plan(l1, kl, params, "linear", max_seeds=cap - 1) is None  # nothing fits: no stage


def test_equal_validation_frontiers_need_no_extra_seeds(params):
    thresholds = params.evaluate.thresholds
    l1 = points("l1", thresholds, 0.0)
    kl = [{**p, "setting": {"beta": 1.0, "rho": 0.01, "scale": 2.0}} for p in l1]  # KL = L1 exactly: equivalent
    assert sparse_end_plan.plan(l1, kl, params, "linear") is None
