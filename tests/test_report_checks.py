"""Each ✓/✗ check of the report, each branch of the verdict sentences, and the KL metrics the checks read, against
hand-made inputs: a reviewer's mutation of any of them (a flipped comparison, a wrong limit) fails here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from sae_mnist.estimand import Estimand
from sae_mnist.report import checks
from sae_mnist.report.analysis import ArchResult
from sae_mnist.report.curve import average_sentence, curve_sentence, verdict
from sae_mnist.report.html import markdown_to_html
from sae_mnist.report.sections.reference import reference_comparison
from sae_mnist.stats import Difference
from tests.conftest import REPO
from tests.test_reporting import _curve

NAN = math.nan


def run(converged: bool = True, probe_converged: float | None = 1.0) -> dict:
    """A frontier point with just what the checks read."""
    metrics = {} if probe_converged is None else {"probe_converged": probe_converged}
    return {"training": {"convergence": {"converged": converged}}, "metrics": metrics}


def test_converged_check_fails_on_one_unconverged_run():
    assert checks.converged_check([run(), run()]) == (True, "every run converged (2 of 2 frontier runs; criterion in "
                                                            "*Convergence*)")
    ok, text = checks.converged_check([run(), run(converged=False), run()])
    assert not ok and "(2 of 3 frontier runs" in text


def test_probes_converged_check_counts_only_probed_runs_and_fails_on_one_stopped_probe():
    assert checks.probes_converged_check([run(), run(probe_converged=None)]) == (True, "every probe converged (1 of 1)")
    assert checks.probes_converged_check([run(), run(probe_converged=0.0)]) == (False, "every probe converged (1 of 2)")


def test_unpenalised_below_pca_compares_with_half_the_width_in_components():
    pca = np.array([0.9, 0.5, 0.3, 0.2])  # k = 1..4; hidden 4 -> PCA with 2 components, FVU 0.5
    assert checks.unpenalised_below_pca_check(0.49, pca, 4) == (
        True, "unpenalised linear FVU 0.4900 below PCA with 2 components (0.5000)")
    assert not checks.unpenalised_below_pca_check(0.5, pca, 4).ok  # equal is not below
    assert not checks.unpenalised_below_pca_check(0.51, pca, 5).ok  # 5 // 2 = 2 components


def estimand(fvu_l1, fvu_kl, grid=(10.0, 100.0)) -> Estimand:
    """An estimand with given per-seed FVU at each grid point (its differences left undefined)."""
    fvu_l1, fvu_kl = np.array(fvu_l1, float), np.array(fvu_kl, float)
    d = Difference(NAN, NAN, NAN, NAN, NAN, NAN)
    return Estimand(seeds=list(range(len(fvu_l1))), covered=(grid[0], grid[-1]), grid=np.array(grid), log_fvu=True,
                    fvu_l1=fvu_l1, fvu_kl=fvu_kl, per_seed=(fvu_kl - fvu_l1).mean(axis=1), difference=d,
                    at_grid=[d] * len(grid))


def test_frontier_below_pca_uses_the_mean_over_seeds_at_every_grid_point():
    # L1's seeds 0.3 and 0.5 at L0 10 (mean 0.4, PCA 0.45: below); at L0 100 mean 0.2 against PCA 0.2: not below
    est = estimand([[0.3, 0.1], [0.5, 0.3]], [[0.2, 0.1], [0.3, 0.1]])
    r = ArchResult(points={}, fronts={}, estimands={0.1: est}, capped=None, pca=np.array([0.45, 0.2]))
    ok, text = checks.frontier_below_pca_check("linear", "l1", r, 0.1)
    assert not ok and text == ("linear: the L1 frontier (mean over seeds) is below PCA at k = L0 over the compared "
                               "range L0 ≈ 10 to 100")
    assert checks.frontier_below_pca_check("linear", "kl", r, 0.1).ok  # KL: means 0.25 and 0.1


def test_rho_target_check_takes_the_worst_seed_and_allows_exactly_the_target():
    ok, text = checks.rho_target_check("conv", [{"rho_hat_relative_error": 0.05}, {"rho_hat_relative_error": 0.1}])
    assert ok and text == ("conv-kl at its default reaches its target: mean |ρ̂ − ρ| / ρ ≤ 0.1 on every seed "
                           "(largest 0.100)")
    assert not checks.rho_target_check("conv", [{"rho_hat_relative_error": 0.1001}]).ok


def test_placement_check_allows_one_setting_of_difference():
    assert checks.placement_check("conv", 5, 4, (25, 150)) == (
        True, "conv: L1 and KL put as many settings inside the declared L0 range 25–150 (±1): L1 5, KL 4")
    assert checks.placement_check("conv", 4, 5, (25, 150)).ok
    assert not checks.placement_check("conv", 6, 4, (25, 150)).ok


def test_reference_comparison_passes_at_exactly_the_tolerance_and_fails_above_it():
    # SAELens at (10, 0.2) and (100, 0.1); ours at L0 10 with FVU 0.21: 0.21 / 0.2 - 1 = 5%, unmatched at L0 1000
    result = reference_comparison([(10.0, 0.21), (1000.0, 0.01)], [(10.0, 0.2), (100.0, 0.1)], tolerance=0.05)
    assert result["n_matched"] == 1 and result["points"][1]["reference_fvu"] is None
    worst = result["worst_relative_difference"]
    assert worst == pytest.approx(0.05)
    assert reference_comparison([(10.0, 0.21)], [(10.0, 0.2), (100.0, 0.1)], tolerance=worst)["passed"]
    assert not reference_comparison([(10.0, 0.21)], [(10.0, 0.2), (100.0, 0.1)], tolerance=worst - 1e-12)["passed"]
    assert not reference_comparison([(1000.0, 0.01)], [(10.0, 0.2), (100.0, 0.1)])["passed"]  # nothing matched


def curve(diffs, ps, average=0.0, average_p=0.5, seeds=3, grid=(10.0, 100.0)) -> Estimand:
    """tests.test_reporting's hand-made estimand, over the covered range L0 5–200."""
    return _curve(list(grid), diffs, ps, average, average_p, (5.0, 200.0), seeds=seeds)


def test_curve_sentence_when_both_penalties_reconstruct_equally_well():
    assert curve_sentence(curve([0.0, 0.0], [1.0, 1.0]), 0.1).startswith(
        "KL and L1 reconstruct equally well at all 2 grid points of the covered range L0 ≈ 5–200")


def test_curve_sentence_counts_several_sign_changes():
    text = curve_sentence(curve([-0.01, 0.02, -0.03], [0.2, 0.01, 0.3], grid=(10.0, 30.0, 100.0)), 0.1)
    assert text.startswith("the sign of KL − L1 changes 2 times inside the covered range") and \
        "KL better at L0 ≈ 10 (KL − L1 -0.0100 FVU, significant at 0 of 1); L1 better at L0 ≈ 30" in text


def test_average_sentence_without_a_test_says_too_few_seeds():
    text = average_sentence(curve([0.02, 0.02], [NAN, NAN], average=0.02, average_p=NAN, seeds=1), NAN)
    assert text == ("Averaged over the grid (the primary estimand): KL − L1 = +0.0200 FVU (95% CI [+0.0100, +0.0300], "
                    "paired over 1 seeds; too few seeds for a test).")


def test_verdict_when_the_sign_holds_at_no_other_threshold():
    primary = curve([0.02, 0.02], [0.01, 0.01], average=0.02, average_p=0.01)
    text = verdict("linear", {0.05: curve([-0.01] * 2, [0.2] * 2, -0.01, 0.2), 0.1: primary, 0.2: None}, 0.1, 0.02)
    assert text.endswith(" It does not hold at the other thresholds: 0.05 (reversed), 0.2 (no overlap).")
    # and at every other one, a non-significant one named as such
    text = verdict("linear", {0.05: curve([0.01] * 2, [0.2] * 2, 0.01, 0.2), 0.1: primary}, 0.1, 0.02)
    assert text.endswith(" The average's sign holds at every other threshold: 0.05 (not significant).")


def test_html_embeds_each_images_own_bytes(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG first")
    (tmp_path / "figures" / "b.png").write_bytes(b"\x89PNG second")
    html = markdown_to_html("![a](figures/a.png)\n\n![b](figures/b.png)\n", tmp_path, "T")
    # base64 of the bytes themselves, each image in its place
    assert html.index('src="data:image/png;base64,iVBORyBmaXJzdA=="') < \
        html.index('src="data:image/png;base64,iVBORyBzZWNvbmQ="')
    assert "<title>T</title>" in html


def test_kl_metrics_rho_hat_error_and_saturation_by_hand():
    from sae_mnist.models import build_model
    from sae_mnist.params import KLParams, ModelParams, Params
    from sae_mnist.penalties import make_penalty
    from sae_mnist.heldout import held_out_metrics

    params = Params.model_validate(yaml.safe_load((REPO / "params.yaml").read_text()))
    penalty = make_penalty("kl", KLParams(beta=1.0, rho=0.1, scale=2.0))
    model = build_model("linear", ModelParams(linear={"hidden": 3}, conv={"channels": 1}), penalty.activate)
    with torch.no_grad():  # u = the bias on every image: the units fire with probability 0.3, 0.95 and 0.995
        model.encoder.weight.zero_()
        model.encoder.bias.copy_(torch.logit(torch.tensor([0.3, 0.95, 0.995])))
    metrics, _, _ = held_out_metrics(model, penalty, torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
                                     params)
    # |ρ̂ − 0.1| = 0.2, 0.85 and 0.895: mean 1.945 / 3 = 0.648333, relative to rho 6.48333; one of the three entries of each image is
    # above 0.99 (the code is z = 2 sigmoid(u), judged on sigmoid(u) = z / 2; 0.95 is close, but not saturated)
    assert metrics["rho_hat_abs_error"] == pytest.approx(0.648333, abs=1e-6)
    assert metrics["rho_hat_relative_error"] == pytest.approx(6.48333, abs=1e-5)
    assert metrics["saturated_fraction"] == pytest.approx(1 / 3)


def test_budget_bound_check_sets_the_longest_budgets_move_beside_the_interval():
    from types import SimpleNamespace

    from sae_mnist.report.sections.robustness import RobustnessCheck

    def row(role, diff, study="", factor=None, label="row"):
        est = SimpleNamespace(difference=Difference(diff, NAN, NAN, NAN, NAN, NAN))
        return RobustnessCheck(label, label, est, role, study=study, factor=factor)

    interval = Difference(0.0224, 0.0219, 0.0229, 50.0, 2, 5e-4)
    primary = RobustnessCheck("p", "p", SimpleNamespace(difference=interval), "primary")
    rows = [primary, row("reference", 0.0220), row("check", 0.0213, "budget", 0.5),
            row("check", 0.0235, "budget", 2.0, "budget ×2 (40 epochs)"), row("check", 0.05, "lr", 3.0)]
    # the longest budget (x2, not x0.5 and not the lr study) moved it by +0.0015: three times the half-width 0.0005
    ok, text = checks.budget_bound_check("linear", ArchResult({}, {}, {}, None, robustness=rows))
    assert not ok
    assert text == ("linear: the runs that have not converged cannot move the primary estimand beyond its 95% "
                    "interval: budget ×2 (40 epochs) moves it by +0.0015 (+0.0220 → +0.0235), more than the "
                    "interval's half-width 0.0005")
    rows[3] = row("check", 0.0223, "budget", 2.0, "budget ×2")  # -0.0003: within
    assert checks.budget_bound_check("linear", ArchResult({}, {}, {}, None, robustness=rows)).ok
    shorter = ArchResult({}, {}, {}, None, robustness=rows[:3])
    assert checks.budget_bound_check("linear", shorter) is None  # no longer budget
