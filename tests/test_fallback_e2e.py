"""The committed params.yaml, end to end, on the offline fallback (mnist-5k): what `make repro` does with no network.

Only the budgets are shortened (training epochs; the probe's iteration limit, and one C, still chosen on the
held-out part; one factor per robustness study; the first two seeds, the fewest that paired statistics use); every
size that depends on the data (the probe's held-out part, sample counts, the sweep, the wide code) is the committed
one, so a setting that fits full MNIST but not the fallback's 4,000 training images fails here rather than 30
minutes into a user's first run.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from sae_mnist.data import FALLBACK_DATASET
from tests.conftest import copy_repo, edit_params, subprocess_env

pytestmark = pytest.mark.e2e


def shorten(params: dict) -> None:
    params["download"].update(mirror=None, mirrors=[])  # no mirror: the fallback, as offline
    params["train"]["epochs"] = {"linear": 1, "conv": 1}
    # lbfgs on every frontier point's codes was most of the run's time (37 of conv-kl's 52 s at 50 iterations):
    # 15 iterations, and one C (one fit on the probe's training part before the refit, instead of one per C)
    params["probe"].update(max_iter=15, C=params["probe"]["C"][:1])
    params["robustness"].update(budget_factors=[0.5], lr_factors=[3.0])  # a stack each, of 1 epoch
    params["lr_select"].update(factors={"linear": [1.0, 3.0], "conv": [1.0, 3.0]}, max_rates=2)  # two stacks each
    params["seeds"] = params["seeds"][:2]  # a stack per seed; how many does not depend on the data


def test_committed_params_run_every_stage_on_the_fallback(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    edit_params(repo, shorten)
    result = subprocess.run(["dvc", "repro"], cwd=repo, env=subprocess_env(), capture_output=True, text=True,
                            timeout=3600)
    assert result.returncode == 0, f"dvc repro failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    status = subprocess.run(["dvc", "status"], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert status.stdout.strip() == "Data and pipelines are up to date."
    summary = json.loads((repo / "reports/summary.json").read_text())
    assert (repo / "reports/report.md").read_text().startswith(f"# Sparse autoencoders on {FALLBACK_DATASET}")
    assert summary["smoke"] is False and set(summary["verdicts"]) == {"linear", "conv"}
