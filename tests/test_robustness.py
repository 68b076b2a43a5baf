"""The robustness study: its training variations and its points."""

from __future__ import annotations

import pytest
import torch
import yaml

from sae_mnist import reporting
from sae_mnist.params import Params
from tests.conftest import REPO
from tests.test_stacked import images

CPU = torch.device("cpu")


def tiny_params() -> Params:
    """The shipped params, a 16-unit linear model, L1 and KL with two settings each, 2 epochs of batches of 100."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["model"]["linear"]["hidden"] = 16
    raw["sweep"]["l1"]["linear"] = {"lam": [0.05]}
    raw["sweep"]["kl"]["linear"] = {"beta": 1.0, "rho_at_scale": {2.0: [0.05]}}
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
    from sae_mnist.stages.robustness import compared_members, train_points
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
    assert set(reporting.seed_frontiers(l1, 0.1)) == {0}  # the report reads them as frontier points
