"""params.yaml's schema: the shipped file is valid, and each kind of mistake names its key."""

from __future__ import annotations

import pytest
import yaml

from sae_mnist.params import ParamsError, load_params
from tests.conftest import REPO


def write_params(tmp_path, edit) -> str:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_shipped_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert len(params.seeds) >= 3 and not params.smoke  # the reference configuration, not a smoke run
    for arch in ("linear", "conv"):
        for penalty in ("none", "l1", "kl", "topk"):
            points = params.sweep.points(penalty, params.penalty.of(penalty, arch), arch)
            assert points[0] == params.penalty.of(penalty, arch) and len(points) == len(set(map(str, points)))
    assert params.evaluate.active_threshold in params.evaluate.thresholds


CASES = {
    "penalty.l1.linear.lam": (lambda p: p["penalty"]["l1"]["linear"].update(lam=-0.1), "greater than or equal to 0"),
    "penalty.kl.conv.beta": (lambda p: p["penalty"]["kl"]["conv"].update(beta=-1), "greater than or equal to 0"),
    "penalty.kl.linear.rho": (lambda p: p["penalty"]["kl"]["linear"].update(rho=1.5), "less than 1"),
    "penalty.l1.conv.lam": (lambda p: p["penalty"]["l1"]["conv"].update(lam=float("inf")), "finite number"),
    "train.batch_size": (lambda p: p["train"].update(batch_size=0), "greater than or equal to 1"),
    "model.linear.hidden": (lambda p: p["model"]["linear"].update(hidden=0), "greater than or equal to 1"),
    "train.lr": (lambda p: p["train"].update(lr=0), "greater than 0"),
    "train.epochs.conv": (lambda p: p["train"]["epochs"].update(conv="ten"), "valid integer"),
    "train.epochs.linear": (lambda p: p["train"]["epochs"].pop("linear"), "Field required"),
    "train.device": (lambda p: p["train"].update(device="tpu"), "'auto', 'cpu' or 'cuda'"),
    "train.lerning_rate": (lambda p: p["train"].update(lerning_rate=0.1), "unknown key"),
    "penalty.l2": (lambda p: p["penalty"].update(l2={"linear": {}}), "unknown key"),
    "model.mlp": (lambda p: p["model"].update(mlp={"hidden": 3}), "unknown key"),
    "seeds": (lambda p: p.update(seeds=[1, 1]), "distinct"),
    "evaluate": (lambda p: p.pop("evaluate"), "Field required"),
    "sweep.kl.conv.0.rho.1": (lambda p: p["sweep"]["kl"]["conv"][0].update(rho=[0.01, 1.0]), "less than 1"),
    "sweep.l1.linear.lam.0": (lambda p: p["sweep"]["l1"]["linear"].update(lam=[-1.0]), "greater than or equal to 0"),
    "sweep.kl.linear.1.rho": (lambda p: p["sweep"]["kl"]["linear"][1].update(rho=[0.1, 0.1]), "distinct"),
    "sweep.l0_range.conv": (lambda p: p["sweep"]["l0_range"].update(conv=[200, 25]), "below the upper"),
    "split.validation": (lambda p: p["split"].update(validation=0), "greater than or equal to 1"),
    "lr_select": (lambda p: p["lr_select"].update(seed=9), "must be one of seeds"),
    "lr_select.step": (lambda p: p["lr_select"].update(step=1.0), "greater than 1"),
    "lr_select.factors.conv": (lambda p: p["lr_select"]["factors"].update(conv=[3.0]), "at least 2 items"),
    "lr_select.factors.linear": (lambda p: p["lr_select"]["factors"].update(linear=[1.0, 1.0]), "distinct"),
    "lr_select.max_rates": (lambda p: p["lr_select"].update(max_rates=2), "more than max_rates 2"),
    "probe.max_iter": (lambda p: p["probe"].update(max_iter=0), "greater than or equal to 1"),
    "robustness.budget_factors.1": (lambda p: p["robustness"].update(budget_factors=[0.5, 0]), "greater than 0"),
    "robustness.lr_factors": (lambda p: p["robustness"].update(lr_factors=[3.0, 3.0]), "distinct"),
    "robustness.budget_factors": (lambda p: p["robustness"].update(budget_factors=[]), "at least 1 item"),
    "robustness.seed": (lambda p: p["robustness"].update(seed=1.5), "valid integer"),
    "robustness": (lambda p: p["robustness"].update(seed=7), "must be one of seeds"),
}


@pytest.mark.parametrize("key", list(CASES))
def test_invalid_params_name_the_key(tmp_path, key):
    edit, reason = CASES[key]
    with pytest.raises(ParamsError) as error:
        load_params(write_params(tmp_path, edit))
    message = str(error.value)
    assert f"- {key}: " in message and reason in message, message


def test_unreadable_params(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("seeds: [0\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_sweep_points_put_the_default_first_and_walk_each_kl_path():
    from sae_mnist.params import KLParams, KLPath, L1Params, L1Sweep, NoPenaltyParams, SweepParams, TopKParams, TopKSweep

    sweep = SweepParams(
        l0_range={"linear": (10, 100), "conv": (20, 200)},
        l1={"linear": L1Sweep(lam=[0.1, 0.3]), "conv": L1Sweep(lam=[1.0])},
        kl={"linear": [KLPath(beta=1.0, scale=2.0, rho=[0.01, 0.05]), KLPath(beta=3.0, scale=5.0, rho=[0.02])],
            "conv": [KLPath(beta=3.0, scale=1.0, rho=[0.02, 0.1])]},
        topk={"linear": TopKSweep(k=[4, 8]), "conv": TopKSweep(k=[2])},
    )
    assert sweep.points("none", NoPenaltyParams(), "linear") == [NoPenaltyParams()]
    assert sweep.points("l1", L1Params(lam=0.3), "linear") == [L1Params(lam=0.3), L1Params(lam=0.1)]
    assert sweep.points("topk", TopKParams(k=8), "linear") == [TopKParams(k=8), TopKParams(k=4)]
    default = KLParams(beta=2.0, rho=0.05, scale=2.0)
    # the default, then each path's rho values at its beta and scale
    assert sweep.points("kl", default, "linear") == [
        default, KLParams(beta=1.0, rho=0.01, scale=2.0), KLParams(beta=1.0, rho=0.05, scale=2.0),
        KLParams(beta=3.0, rho=0.02, scale=5.0)]
    # a listed point equal to the default is not repeated
    assert sweep.points("kl", KLParams(beta=3.0, rho=0.02), "conv") == [
        KLParams(beta=3.0, rho=0.02), KLParams(beta=3.0, rho=0.1)]
    assert sweep.l0_range.of("conv") == (20, 200)


def test_recipe_schedules_by_hand():
    from sae_mnist.params import RecipeParams
    from sae_mnist.training import lr_factor, penalty_factor

    r = RecipeParams(center_input=True, encoder_from_decoder=True, project_decoder_grad=True, lr_warmup=0.1,
                     lr_decay="cosine", lr_final=0.1, penalty_warmup=0.2)
    total = 100  # lr warm-up 10 steps, penalty warm-up 20
    assert [lr_factor(r, s, total) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    # cosine over the 90 steps after the warm-up: at step 55, half-way: 0.1 + 0.9 * 0.5 * (1 + cos(pi / 2)) = 0.55
    assert lr_factor(r, 10, total) == pytest.approx(1.0) and lr_factor(r, 55, total) == pytest.approx(0.55)
    assert lr_factor(r, 100, total) == pytest.approx(0.1)
    assert [penalty_factor(r, s, total) for s in (0, 9, 19, 50)] == pytest.approx([0.05, 0.5, 1.0, 1.0])
    plain = r.without("lr_schedule").without("penalty_warmup")
    assert {lr_factor(plain, s, total) for s in range(total)} == {1.0}
    assert {penalty_factor(plain, s, total) for s in range(total)} == {1.0}
    assert not r.without("center_input").center_input and not r.without("encoder_from_decoder").encoder_from_decoder
    assert not r.without("project_decoder_grad").project_decoder_grad
    assert r.model_copy(update={"grad_clip": 1.0}).without("grad_clip").grad_clip is None
    # A hold: the decay ends early and the last part of training runs at lr_final (10 + 70 decay, 20 held).
    held = r.model_copy(update={"lr_hold": 0.2})
    assert lr_factor(held, 45, total) == pytest.approx(0.55)  # half-way through the 70 decay steps
    assert all(lr_factor(held, s, total) == pytest.approx(0.1) for s in range(80, total))


def test_each_architecture_trains_at_its_own_budget(tmp_path):
    # Each budget is chosen by the verdict per architecture (the budget rule in params.yaml): they may differ.
    params = load_params(write_params(tmp_path, lambda p: p["train"].update(epochs={"linear": 30, "conv": 20})))
    for arch, epochs in (("linear", 30), ("conv", 20)):
        stack = params.train.of(arch)
        assert stack.epochs == epochs
        assert stack.model_dump() == {**params.train.model_dump(), "epochs": epochs}


def test_sparse_end_repeats_frontier_settings_on_new_seeds(tmp_path):
    extra = {"seeds": [3, 4], "l1": {"lam": [1.2, 2.5]}, "kl": [{"beta": 300.0, "scale": 2.0, "rho": [0.001]}]}
    params = load_params(write_params(tmp_path, lambda p: p.update(sparse_end={"conv": extra})))
    assert params.sparse_end.of("linear") is None and params.sparse_end.conv.seeds == [3, 4]
    assert [s.lam for s in params.sparse_end.conv.settings("l1")] == [1.2, 2.5]
    for change, reason in ((lambda e: e.update(seeds=[2, 3]), r"sparse_end.conv.seeds \[2\] are already among seeds"),
                           (lambda e: e["l1"].update(lam=[1.3]), r"sparse_end.conv.l1: lam=1.3 are not settings")):
        bad = {**extra, "l1": dict(extra["l1"])}
        change(bad)
        with pytest.raises(ParamsError, match=reason):
            load_params(write_params(tmp_path, lambda p: p.update(sparse_end={"conv": bad})))


def test_the_ablation_turns_off_only_the_parts_the_recipe_has():
    """grad_clip null is already off: no without-grad_clip arm repeating the full recipe; with a clip, one."""
    from sae_mnist.stages.ablation import ablation_members

    shipped = load_params(REPO / "params.yaml")
    off, on = (shipped.model_copy(update={"recipe": shipped.recipe.model_copy(update={"grad_clip": c})})
               for c in (None, 1.0))
    arms = {name: {m.suffix for m in ablation_members(p, "linear")} for name, p in (("off", off), ("on", on))}
    assert arms["on"] - arms["off"] == {"without-grad_clip"} and "without-all" in arms["off"]
