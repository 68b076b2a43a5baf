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
