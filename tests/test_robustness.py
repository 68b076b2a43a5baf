"""The robustness study: its training variations, its points, and the report's table and sentence, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from sae_mnist import estimand
from sae_mnist.params import L0Range, Params
from sae_mnist.report.analysis import ArchResult
from sae_mnist.report.sections import robustness as report_robustness
from sae_mnist.stats import Difference
from tests.conftest import REPO
from tests.test_stacked import images

CPU = torch.device("cpu")


def tiny_params() -> Params:
    """The shipped params, a 16-unit linear model, L1 and KL with two settings each, 2 epochs of batches of 100."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["model"]["linear"]["hidden"] = 16
    raw["sweep"]["l1"]["linear"] = {"lam": [0.05]}
    raw["sweep"]["kl"]["linear"] = [{"beta": 1.0, "scale": 2.0, "rho": [0.05]}]
    raw["train"].update(epochs={"linear": 2, "conv": 3}, batch_size=100, threads=1)
    return Params.model_validate(raw)


def test_a_variation_multiplies_the_budget_rounded_and_at_least_one_or_the_learning_rate():
    params = tiny_params()
    r, linear, conv = params.robustness, params.train.of("linear"), params.train.of("conv")
    assert r.factors("budget") == [0.5, 2.0] and r.factors("lr") == [0.3333, 3.0]
    # 2 x 0.5 = 1; 3 x 0.5 = 1.5 rounds up to 2; 2 x 0.2 = 0.4 rounds to 0, raised to 1; the lr is untouched
    assert [r.training(t, "budget", f).epochs for t, f in ((linear, 0.5), (conv, 0.5), (linear, 0.2), (conv, 2.0))] \
        == [1, 2, 1, 6]
    assert r.training(conv, "budget", 0.5).lr == conv.lr
    lr = r.training(conv, "lr", 3.0)
    assert lr.lr == pytest.approx(3 * conv.lr) and lr.epochs == conv.epochs and lr.batch_size == conv.batch_size


def test_train_points_are_frontier_points_trained_as_the_variation_says():
    from sae_mnist.heldout import train_points
    from sae_mnist.members import compared_members
    from sae_mnist.training import to_float_images

    torch.set_num_threads(1)
    params = tiny_params()
    members = compared_members(params, "linear")  # L1 and KL, default first: no unpenalised, no TopK
    assert [(m.penalty, m.default) for m in members] == [("l1", True), ("l1", False), ("kl", True), ("kl", False)]
    train, x_test = images(600), to_float_images(images(200, seed=1), CPU)
    r, base = params.robustness, params.train.of("linear")
    trained = {}
    for study, factor in (("budget", 0.5), ("lr", 1.0), ("lr", 3.0)):
        trained[study, factor] = train_points(params, "linear", 0, members, r.training(base, study, factor), train,
                                              x_test, CPU)
    points, result = trained["budget", 0.5]
    assert [pt["name"] for pt in points] == [m.name for m in members]
    for pt in points:
        assert set(pt) == {"name", "penalty", "setting", "seed", "default", "metrics", "training"}
        assert pt["seed"] == 0 and pt["training"]["epochs"] == 1 and pt["training"]["lr"] == base.lr
        assert {f"{k}_at_{t:g}" for k in ("l0", "fvu") for t in params.evaluate.thresholds} <= set(pt["metrics"])
        assert "converged" in pt["training"]["convergence"]
    assert points[1]["setting"] == {"lam": 0.05} and all(len(h) == 1 for h in result.histories)  # 1 epoch trained
    slow, fast = trained["lr", 1.0][0], trained["lr", 3.0][0]
    assert [pt["training"]["lr"] for pt in fast] == pytest.approx([3 * base.lr] * 4)
    assert all(len(h) == 2 for h in trained["lr", 3.0][1].histories)
    # The same seed, batches and budget: only the learning rate differs, and it changes every model
    assert all(a["metrics"]["fvu_untruncated"] != b["metrics"]["fvu_untruncated"] for a, b in zip(slow, fast))
    l1, kl = ([pt for pt in fast if pt["penalty"] == p] for p in ("l1", "kl"))
    assert set(estimand.seed_frontiers(l1, 0.1)) == {0}  # the report reads them as frontier points


# Hand-made frontiers, straight on log-log axes so that the interpolation is exact: L1 through (10, 0.2) and
# (1000, 0.05), KL the same times k. On the 9-point grid of [10, 1000], L0 = 10^(1 + 0.2 i) for i = 1..9, L1's FVU
# is 0.2 * 4^(-0.1 i) = 0.2 * 2^(-i / 5), and KL − L1 = (k − 1) times it: averaged, (k − 1) * M, with M the mean
# of L1's FVU over the grid, a geometric sum: with q = 2^(-1/5) = 0.870551, 0.2 / 9 * q (1 − q^9) / (1 − q) = 0.106528.
M = 0.2 / 9 * sum(2 ** (-i / 5) for i in range(1, 10))
THETA = 0.1
WIDE = (1.0, 100000.0)  # a declared range wider than the covered one: clipped to [10, 1000]


def frontier(seed: int, k: float, kl_l0=(10, 1000), penalty: bool = False) -> dict[str, list[dict]]:
    """Points of one seed's L1 and KL frontiers, the same on validation as on test (a robustness file's points carry
    their penalty)."""
    def point(p, l0, fvu):
        metrics = {f"l0_at_{THETA:g}": l0, f"fvu_at_{THETA:g}": fvu}
        return {"seed": seed, "metrics": metrics, "validation": metrics} | ({"penalty": p} if penalty else {})
    return {"l1": [point("l1", 10, 0.2), point("l1", 1000, 0.05)],
            "kl": [point("kl", kl_l0[0], 0.2 * k), point("kl", kl_l0[1], 0.05 * k)]}


def variation(factor: float, epochs: int, lr: float, k: float, kl_l0=(10, 1000)) -> dict:
    points = frontier(0, k, kl_l0, penalty=True)
    return {"factor": factor, "epochs": epochs, "points": [pt | {"training": {"lr": lr}}
                                                           for pt in points["l1"] + points["kl"]]}


def estimate(diff: float) -> estimand.Estimand:
    """An estimand of which only the average's difference is known."""
    nan = math.nan
    return estimand.Estimand(seeds=[0], covered=(nan, nan), grid=np.array([]), log_fvu=True, fvu_l1=np.array([]),
                             fvu_kl=np.array([]), per_seed=np.array([diff]), difference=Difference(diff, *[nan] * 5),
                             at_grid=[])


def arch_result(k_seed0: float, k_seed1: float, others: dict) -> ArchResult:
    """An analyse() result of one architecture: seeds 0 and 1, the primary from their points."""
    s0, s1 = frontier(0, k_seed0), frontier(1, k_seed1)
    points = {p: s0[p] + s1[p] for p in ("l1", "kl")}
    primary = estimand.points_estimand(points["l1"], points["kl"], THETA, WIDE)
    return ArchResult(points=points, fronts={}, estimands={THETA: primary, **others}, capped=None,
                      sensitivity=estimate(0.02))


STUDIES = {
    "budget": {"seed": 0, "split": "validation",
               "variations": [variation(0.5, 1, 0.003, 1.2), variation(2.0, 4, 0.003, 0.8)]},
    "lr": {"seed": 0, "split": "validation",
           "variations": [variation(3.0, 2, 0.009, 1.3, kl_l0=(2000, 3000))]},  # no overlap
}


def test_robustness_rows_give_each_checks_estimand_and_whether_its_sign_is_the_primarys():
    # Seeds 0 and 1: KL is 1.1 and 1.2 times L1, so the primary is 0.15 M; seed 0 alone 0.1 M (on test and on
    # validation, which these points share). Threshold 0.05 is
    # reversed, 0.2 has no overlap; budget x0.5 (k 1.2) gives +0.2 M, x2 (k 0.8) -0.2 M; lr x3 has no overlap.
    r = arch_result(1.1, 1.2, {0.05: estimate(-0.01), 0.2: None})
    checks = report_robustness.robustness_checks(r, THETA, 0, STUDIES, WIDE)
    assert r.estimands[THETA].difference.diff == pytest.approx(0.15 * M)
    assert [c.diff for c in checks] == pytest.approx(
        [0.15 * M, 0.1 * M, 0.1 * M, 0.02, -0.01, None, 0.2 * M, -0.2 * M, None])
    assert report_robustness.robustness_rows(checks) == [
        ["the primary (2 seeds)", f"{0.15 * M:+.4f}", "(the primary)"],
        ["the primary on seed 0 alone (test split; not counted)", f"{0.1 * M:+.4f}", "yes (not counted)"],
        ["seed 0 alone on the validation split (the one-seed checks' reference)", f"{0.1 * M:+.4f}",
         "yes (reference, not counted)"],
        ["the other interpolation: FVU interpolated linearly in log L0", "+0.0200", "yes"],
        ["threshold 0.05 (over the covered range at 0.05, not the declared one)", "-0.0100", "no"],
        ["threshold 0.2 (over the covered range at 0.2, not the declared one)", "no overlap", "–"],
        ["budget ×0.5 (1 epoch; seed 0; validation split)", f"{0.2 * M:+.4f}", "yes"],
        ["budget ×2 (4 epochs; seed 0; validation split)", f"{-0.2 * M:+.4f}", "no"],
        ["learning rate ×3 (lr 0.009; seed 0; validation split)", "no overlap", "–"],
    ]
    # 6 checks (not the primary, not the one-seed rows): 2 hold, 2 do not, 2 have no estimate
    assert report_robustness.robustness_sentence("linear", checks) == (
        f"linear, robustness: the sign of KL − L1 ({0.15 * M:+.4f}: L1 reconstructs better) survives 2 of 6 checks; "
        "it does not under: threshold 0.05, budget ×2; no estimate (the frontiers do not overlap) under: "
        "threshold 0.2, learning rate ×3.")


def test_robustness_sentence_when_every_check_holds_and_the_reference_seed_disagrees():
    # KL below L1 on seed 1 (k 0.5: -0.5 M) outweighs seed 0 (k 1.1: +0.1 M): the primary is -0.2 M, KL better;
    # seed 0 alone has the opposite sign. Every check is negative.
    r = arch_result(1.1, 0.5, {0.05: estimate(-0.03)})
    r.sensitivity = estimate(-0.01)
    studies = {"lr": {"seed": 0, "split": "validation", "variations": [variation(0.3333, 2, 0.001, 0.7)]}}
    checks = report_robustness.robustness_checks(r, THETA, 0, studies, WIDE)
    assert [c.diff for c in checks] == pytest.approx([-0.2 * M, 0.1 * M, 0.1 * M, -0.01, -0.03, -0.3 * M])
    assert [row[2] for row in report_robustness.robustness_rows(checks)[1:3]] == [
        "no (not counted)", "no (reference, not counted)"]
    assert report_robustness.robustness_sentence("conv", checks) == (
        f"conv, robustness: the sign of KL − L1 ({-0.2 * M:+.4f}: KL reconstructs better) survives all 3 checks. On "
        f"seed 0 alone on the validation split, the one-seed checks' reference, the sign is already the opposite "
        f"({0.1 * M:+.4f}).")


def test_robustness_section_and_figure_from_hand_made_results(tmp_path):
    results = {"linear": arch_result(1.1, 1.2, {0.05: estimate(-0.01), 0.2: None}),
               "conv": ArchResult(points={}, fronts={}, estimands={THETA: None}, capped=None)}  # frontiers that do not overlap: no checks
    report_robustness.add_robustness(results, {"linear": STUDIES}, THETA, 0, L0Range(linear=WIDE, conv=WIDE))
    md = report_robustness.section(results, THETA, 0, {"budget": [0.5, 2.0], "lr": [3.0]})
    assert md.startswith("## Robustness\n") and "(budget × 0.5, 2; learning rate × 3)" in md
    assert "| budget ×2 (4 epochs; seed 0; validation split) | " in md and results["linear"].robustness_sentence in md
    assert "No primary estimand for conv" in md and "robustness-conv.png" not in md
    report_robustness.save_figures(results, THETA, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["robustness-linear.png"]
    summary = report_robustness.robustness_json(results)
    assert list(summary) == ["linear"] and [c["same_sign"] for c in summary["linear"]["checks"]] == [
        True, True, True, True, False, None, True, False, None]


def test_points_estimand_is_primary_estimand_of_the_points_frontiers():
    s0 = frontier(0, 1.1)
    est = estimand.points_estimand(s0["l1"], s0["kl"], THETA, WIDE)
    assert est.seeds == [0] and est.covered == (10.0, 1000.0)
    assert est.grid == pytest.approx([10 ** (1 + 0.2 * i) for i in range(1, 10)])
    assert est.fvu_l1[0] == pytest.approx([0.2 * 2 ** (-i / 5) for i in range(1, 10)])
    assert est.difference.diff == pytest.approx(0.1 * M) and math.isnan(est.difference.ci_low)
    assert M == pytest.approx(0.106528, abs=1e-6)
