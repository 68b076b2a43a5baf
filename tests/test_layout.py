"""The train stages' names, as the code that logs them writes them, are dvc.yaml's."""

from __future__ import annotations

import re

import pytest
import yaml

from sae_mnist.layout import stack_dir, train_names
from tests.conftest import REPO


def test_train_names_are_the_stages_and_directories_dvc_yaml_declares():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("train", "train_topk"):
        cmd = stages[stage]["cmd"]
        penalties = re.search(r"--penalties ([a-z0-9 ]+?) --", cmd).group(1).split()
        assert train_names("conv", 2, penalties)[0] == f"{stage}@conv-2"
        models = re.search(r"--models models/(\S+)/seed-", cmd).group(1)
        assert models.replace("${item.arch}", "conv") == stack_dir("conv", penalties[-1])
    assert train_names("conv", 2, ["none", "l1", "kl"]) == ("train@conv-2", "conv-seed2")
    assert train_names("linear", 0, ["topk"]) == ("train_topk@linear-0", "linear-topk-seed0")


def test_a_reference_penalty_never_shares_a_stack():
    with pytest.raises(ValueError, match="trains alone"):
        train_names("linear", 0, ["l1", "topk"])
