"""The report under the validation protocol (docs/design/verdict-protocol.md), by hand: placement on the validation
split, the robustness studies beside the same seed's validation metrics, the table of decisions and the split each
used, each penalty's rate; and result files from before the split are refused, each named."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sae_mnist import estimand
from sae_mnist.params import load_params
from sae_mnist.report import analysis, checks
from sae_mnist.report.analysis import ArchResult
from sae_mnist.report.inputs import Inputs, Variant, predating_the_split
from sae_mnist.report.sections import cite, decisions, trained
from sae_mnist.report.sections import robustness as report_robustness
from sae_mnist.stats import Difference
from sae_mnist.verify.compare import check_label
from tests.conftest import REPO

SPLITS = {"fit": {"images": 50000, "sha256": "f" * 64}, "validation": {"images": 10000, "sha256": "ab" * 32}}
PARAMS = load_params(REPO / "params.yaml")


def inputs(ablations: dict | None = None, robustness: dict | None = None) -> Inputs:
    """Inputs with just what the protocol's text reads: linear none, L1 and KL, one frontier point each."""
    point = {"setting": {}, "seed": 0, "metrics": {}, "validation": {}, "training": {"convergence": {"tolerance": {
        "relative": 0.01, "fvu": 1e-4}}}}
    frontier = {"points": [point], "splits": SPLITS}
    variants = {f"linear-{p}": Variant(arch="linear", penalty=p, seeds=[], stats={}, arrays={}, history={},
                                       frontier=frontier) for p in ("none", "l1", "kl")}
    selections = {"linear": {"chosen": {"l1": {"lr": 0.009}, "kl": {"lr": 0.027}, "topk": {"lr": 0.003}},
                             "splits": SPLITS}}
    return Inputs(params=PARAMS, manifest={"counts": {"train": 60000, "test": 10000}}, variants=variants, baselines={},
                  ablations=ablations or {}, robustness=robustness or {}, wide=[], references={},
                  selections=selections, sparse_end={})


# ------------------------------------------------------------------------------------------- (d) placement


def point(lam: float, seed: int, test_l0: float, validation_l0: float | None) -> dict:
    return {"setting": {"lam": lam}, "seed": seed, "metrics": {"l0_at_0.1": test_l0}} | (
        {} if validation_l0 is None else {"validation": {"l0_at_0.1": validation_l0}})


def test_placement_reads_the_validation_l0_of_the_chosen_seed_only():
    # Every test L0 is 100 (inside [15, 150]): not read. lam 0.1: validation L0 14 on seed 0, 30 on seed 1; lam 1:
    # 10 and 12. Seed 1 alone: 30 inside, 12 below; seed 0 alone: 14 and 10 both below.
    points = [point(0.1, 0, 100, 14), point(1.0, 0, 100, 10), point(0.1, 1, 100, 30), point(1.0, 1, 100, 12)]
    rows = analysis.placement(points, 0.1, (15, 150), seed=1)
    assert [(r["setting"]["lam"], r["l0"], r["where"], r["seeds"]) for r in rows] == [
        (0.1, 30.0, "inside", 1), (1.0, 12.0, "below", 1)]
    assert [r["where"] for r in analysis.placement(points, 0.1, (15, 150), seed=0)] == ["below", "below"]
    # without a seed: each setting's mean over seeds of its validation L0, (14 + 30) / 2 = 22 and 11
    assert [r["l0"] for r in analysis.placement(points, 0.1, (15, 150))] == [22.0, 11.0]


def test_placement_names_its_split_in_the_check_and_the_text():
    read = analysis.placement_words(0)
    assert read == "L0 on the validation split, seed 0"
    assert checks.placement_check("conv", 5, 4, (25, 200), read) == (
        True, "conv: L1 and KL put as many settings inside the declared L0 range 25–200 (±1): L1 5, KL 4 (L0 on the "
              "validation split, seed 0)")


# ------------------------------------------------------------------------------------------ (e) robustness

THETA = 0.1
WIDE = (1.0, 100000.0)  # wider than the frontiers: clipped to their [10, 1000]
# L1: (10, 0.2) and (1000, 0.05); KL: the same times k. Straight on log-log axes, so KL − L1 over the grid is exactly
# (k − 1) M, M the mean of L1's FVU over the 9 grid points (tests/test_robustness.py: M = 0.106528).
M = 0.2 / 9 * sum(2 ** (-i / 5) for i in range(1, 10))


def pair(seed: int, k: float, penalty_key: bool = False, validation_k: float | None = None,
         lr: dict | None = None) -> dict[str, list[dict]]:
    """One seed's L1 and KL points; `validation_k`: a validation block whose KL is that many times L1."""
    def one(p, l0, fvu, factor):
        pt = {"seed": seed, "metrics": {"l0_at_0.1": l0, "fvu_at_0.1": fvu * factor}}
        if validation_k is not None:
            pt["validation"] = {"l0_at_0.1": l0, "fvu_at_0.1": fvu * (validation_k if p == "kl" else 1.0)}
        if penalty_key:
            pt["penalty"] = p
        if lr:
            pt["training"] = {"lr": lr[p]}
        return pt
    return {"l1": [one("l1", 10, 0.2, 1.0), one("l1", 1000, 0.05, 1.0)],
            "kl": [one("kl", 10, 0.2, k), one("kl", 1000, 0.05, k)]}


def study(factor: float, k: float, lr: dict | None = None) -> dict:
    pts = pair(0, k, penalty_key=True, lr=lr or {"l1": 0.003, "kl": 0.003})
    return {"seed": 0, "split": "validation", "variations": [{"factor": factor, "epochs": 40,
                                                               "points": pts["l1"] + pts["kl"]}]}


def result() -> ArchResult:
    # Seed 0: KL 1.1 × L1 on test, 0.9 × on validation; seed 1: 1.2 × on test. The primary is (0.1 + 0.2) / 2 M.
    s0, s1 = pair(0, 1.1, validation_k=0.9), pair(1, 1.2, validation_k=1.2)
    points = {p: s0[p] + s1[p] for p in ("l1", "kl")}
    nan = math.nan
    other_rule = estimand.Estimand(seeds=[0], covered=(nan, nan), grid=np.array([]), log_fvu=False,
                                   fvu_l1=np.array([]), fvu_kl=np.array([]), per_seed=np.array([0.02]),
                                   difference=Difference(0.02, *[nan] * 5), at_grid=[])
    return ArchResult(points=points, fronts={}, capped=None, sensitivity=other_rule,
                      estimands={THETA: estimand.points_estimand(points["l1"], points["kl"], THETA, WIDE)})


def test_a_validation_study_stands_beside_the_same_seed_on_the_validation_split():
    studies = {"lr": study(3.0, 1.3, lr={"l1": 0.027, "kl": 0.081})}
    rows = report_robustness.robustness_checks(result(), THETA, 0, studies, WIDE)
    assert [c.diff for c in rows] == pytest.approx([0.15 * M, 0.1 * M, -0.1 * M, 0.02, 0.3 * M])
    assert report_robustness.robustness_rows(rows) == [
        ["the primary (2 seeds)", f"{0.15 * M:+.4f}", "(the primary)"],
        ["the primary on seed 0 alone (test split; not counted)", f"{0.1 * M:+.4f}", "yes (not counted)"],
        ["seed 0 alone on the validation split (the one-seed checks' reference)", f"{-0.1 * M:+.4f}",
         "no (reference, not counted)"],
        ["the other interpolation: FVU interpolated linearly in log L0", "+0.0200", "yes"],
        ["learning rate ×3 (L1 lr 0.027, KL lr 0.081; seed 0; validation split)", f"{0.3 * M:+.4f}", "yes"]]
    assert report_robustness.robustness_sentence("linear", rows) == (
        "linear, robustness: the sign of KL − L1 (+0.0160: L1 reconstructs better) survives all 2 checks. On seed 0 "
        "alone on the validation split, the one-seed checks' reference, the sign is already the opposite (-0.0107).")
    # make verify recomputes the test row under its old name, from the main frontier's test metrics, as before
    assert check_label(rows[1].label) == "the primary on seed 0 alone" and rows[1].role == "context"
    assert [c["split"] for c in report_robustness.robustness_json({"linear": replace_checks(rows)})["linear"][
        "checks"]] == [None, None, "validation", None, "validation"]


def replace_checks(rows: list) -> ArchResult:
    r = result()
    r.robustness, r.robustness_sentence = rows, ""
    return r


def test_without_studies_both_one_seed_rows_stay_and_a_budget_row_names_its_epochs():
    alone = report_robustness.robustness_checks(result(), THETA, 0, {}, WIDE)
    assert [c.role for c in alone] == ["primary", "context", "reference", "check"]
    budget = report_robustness.robustness_checks(result(), THETA, 0, {"budget": study(2.0, 0.8)}, WIDE)
    assert budget[-1].label == "budget ×2 (40 epochs; seed 0; validation split)"
    assert budget[-1].diff == pytest.approx(-0.2 * M)


def test_the_section_says_the_studies_read_the_validation_split():
    rows = report_robustness.robustness_checks(result(), THETA, 0, {"lr": study(3.0, 1.3)}, WIDE)
    md = report_robustness.section({"linear": replace_checks(rows)}, THETA, 0, {"lr": [3.0]})
    assert "The retrained models are evaluated on the validation split" in md
    assert "the same on seed 0 alone, on the test split and on the validation split;" in md


# ------------------------------------------------------------------------------- (c) decisions and splits


def test_every_decision_names_its_split_and_the_reported_numbers_the_test_split():
    placed = {"linear": {"l1": [{"split": "validation"}], "kl": [{"split": "validation"}]}}
    new = inputs(ablations={"linear": {"split": "validation"}},
                 robustness={"linear": {"lr": {"split": "validation"}, "budget": {"split": "validation"}}})
    rows = decisions.decision_rows(new, placed)
    assert [r[1] for r in rows] == ["validation"] * 6 + ["test"]
    assert rows[1][2] == "L0 on the validation split, seed 0 (*What was trained*)"
    assert rows[2][2].startswith("fitted on the fit split, chosen once per variant")
    text = decisions.fit_text(new)
    assert "the first 50,000 of the 60,000 training images (the last 10,000 form the validation split" in text
    assert "10,000 fewer images (17%" in text and "not exactly comparable with published numbers" in text
    md = decisions.section(new, placed)
    assert md.startswith("## Decisions and the split each used\n") and "| decision | split | where |" in md


def test_files_from_before_the_split_are_refused_each_named():
    assert predating_the_split(inputs(ablations={"linear": {"split": "validation"}})) == []
    old = inputs(ablations={"linear": {}}, robustness={"linear": {"lr": {}, "budget": {"split": "validation"}}})
    old.variants["linear-kl"] = replace(old.variants["linear-kl"], frontier={"points": [{}], "splits": SPLITS})
    assert predating_the_split(old) == ["frontier/linear-kl.json", "ablation/linear.json", "robustness/linear-lr.json"]


# ---------------------------------------------------------------------------- (g) rates, images, the probe


def test_each_penalty_trains_at_its_chosen_rate_on_the_fit_split():
    new = inputs()
    assert (new.lr("linear", "l1"), new.lr("linear", "kl"), new.lr("linear", "none")) == (0.009, 0.027, 0.003)
    assert new.n_train == 50000 and new.splits == SPLITS
    assert trained.rates_text(new) == "linear: L1 0.009, KL 0.027; unpenalised models 0.003 (train.lr)"
    assert "the fit split: the first 50,000 training images" in trained.recipe_text(new)
    assert ("the code activation it needs and the learning rate: each penalty trains at its own base rate, chosen on "
            "the validation split (*Learning rates*): linear: L1 0.009") in trained.recipe_text(new)


def test_the_probe_definition_says_C_is_chosen_on_the_validation_split():
    text = cite.definitions_section(inputs())
    assert "by accuracy on the validation split (a probe fitted on the fit split at each C)" in text
    assert "fit-split image" in text and "refitted" not in text


def test_probes_of_the_study_join_their_frontier_points_and_only_then_read_along_the_frontiers(tmp_path):
    """merge_probes gives each point the probes stage probed its metrics (matched by name and seed); the analysis
    reads probe accuracy along the frontiers only when every compared point has one."""
    import json

    from sae_mnist.report.inputs import merge_probes

    def point(name, seed, l0, fvu, **extra):
        return {"name": name, "seed": seed, "setting": {}, "metrics": {"l0_at_0.1": l0, "fvu_at_0.1": fvu, **extra}}

    frontier = {"points": [point("linear-l1", 0, 40.0, 0.1, probe_accuracy=0.9),
                           point("linear-l1-lam0.4", 0, 20.0, 0.2)]}
    variants = {"linear-l1": Variant(arch="linear", penalty="l1", seeds=[], stats={}, arrays={}, history={},
                                     frontier=frontier)}
    (tmp_path / "linear.json").write_text(json.dumps({"variants": {"linear-l1": {"points": [
        {"name": "linear-l1-lam0.4", "seed": 0, "metrics": {"probe_accuracy": 0.8}},
        {"name": "linear-l1-lam0.4", "seed": 1, "metrics": {"probe_accuracy": 0.1}}]}}}))
    merge_probes(variants, tmp_path)
    assert [p["metrics"].get("probe_accuracy") for p in frontier["points"]] == [0.9, 0.8]
    kl = [point("linear-kl", 0, 40.0, 0.15, probe_accuracy=0.85), point("linear-kl-rho", 0, 20.0, 0.25)]
    result = analysis.analyse_arch("linear", {"l1": frontier["points"], "kl": kl}, [0.1], 0.1, np.ones(50),
                                   (10.0, 100.0))
    assert result.probe == {}  # a KL point without a probe: nothing read along the frontiers
    kl[1]["metrics"]["probe_accuracy"] = 0.7
    result = analysis.analyse_arch("linear", {"l1": frontier["points"], "kl": kl}, [0.1], 0.1, np.ones(50),
                                   (10.0, 100.0))
    assert set(result.probe) == {"l1", "kl"}
