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
    assert params.seeds and params.penalty.of("kl", "linear").rho == pytest.approx(0.05)


CASES = {
    "penalty.l1.linear.lam": (lambda p: p["penalty"]["l1"]["linear"].update(lam=-0.1), "greater than or equal to 0"),
    "penalty.kl.conv.beta": (lambda p: p["penalty"]["kl"]["conv"].update(beta=-1), "greater than or equal to 0"),
    "penalty.kl.linear.rho": (lambda p: p["penalty"]["kl"]["linear"].update(rho=1.5), "less than 1"),
    "penalty.l1.conv.lam": (lambda p: p["penalty"]["l1"]["conv"].update(lam=float("inf")), "finite number"),
    "train.batch_size": (lambda p: p["train"].update(batch_size=0), "greater than or equal to 1"),
    "model.linear.hidden": (lambda p: p["model"]["linear"].update(hidden=0), "greater than or equal to 1"),
    "train.lr": (lambda p: p["train"].update(lr=0), "greater than 0"),
    "train.epochs": (lambda p: p["train"].update(epochs="ten"), "valid integer"),
    "train.device": (lambda p: p["train"].update(device="tpu"), "'auto', 'cpu' or 'cuda'"),
    "train.lerning_rate": (lambda p: p["train"].update(lerning_rate=0.1), "unknown key"),
    "penalty.l2": (lambda p: p["penalty"].update(l2={"linear": {}}), "unknown key"),
    "model.mlp": (lambda p: p["model"].update(mlp={"hidden": 3}), "unknown key"),
    "seeds": (lambda p: p.update(seeds=[1, 1]), "distinct"),
    "evaluate": (lambda p: p.pop("evaluate"), "Field required"),
    "sweep.kl.conv.rho.1": (lambda p: p["sweep"]["kl"]["conv"].update(rho=[0.01, 1.0]), "less than 1"),
    "sweep.l1.linear.lam.0": (lambda p: p["sweep"]["l1"]["linear"].update(lam=[-1.0]), "greater than or equal to 0"),
    "sweep.kl.linear.beta": (lambda p: p["sweep"]["kl"]["linear"].update(beta=[1.0, 1.0]), "distinct"),
    "probe.max_iter": (lambda p: p["probe"].update(max_iter=0), "greater than or equal to 1"),
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


def test_sweep_points_put_the_default_first_and_sweep_beta_and_rho_apart():
    from sae_mnist.params import KLParams, KLSweep, L1Params, L1Sweep, SweepParams

    sweep = SweepParams(
        l1={"linear": L1Sweep(lam=[0.1, 0.3]), "conv": L1Sweep(lam=[1.0])},
        kl={"linear": KLSweep(beta=[0.5, 2.0], rho=[0.01]), "conv": KLSweep(beta=[1.0], rho=[0.1])},
    )
    assert sweep.points("l1", L1Params(lam=0.3), "linear") == [L1Params(lam=0.3), L1Params(lam=0.1)]
    assert sweep.points("kl", KLParams(beta=2.0, rho=0.05), "linear") == [
        KLParams(beta=2.0, rho=0.05), KLParams(beta=0.5, rho=0.05), KLParams(beta=2.0, rho=0.01)]
