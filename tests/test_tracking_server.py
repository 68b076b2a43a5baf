"""A team's tracking server, for real: `mlflow server` on a throwaway PostgreSQL cluster, a small pipeline logging to it.

Skipped, with the reason, where PostgreSQL (initdb, pg_ctl) or psycopg2 is missing; `--require-postgres` or
SAE_MNIST_REQUIRE_POSTGRES=1 (as CI runs) makes that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import mlflow.pyfunc
import pytest
import torch

from tests.conftest import copy_repo, edit_params, subprocess_env
from tests.test_pipeline_e2e import BUDGET_FACTORS, EPOCHS, LR_FACTORS, SEEDS, VARIANTS, tiny
from tests.tracking_server import HOW_TO_ENABLE, postgres_bin, postgres_tracking_server

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def server(request):
    """A PostgreSQL cluster and `mlflow server` (backend store on it, artifacts in a directory) on 127.0.0.1."""
    binaries = postgres_bin()
    if binaries is None:
        if request.config.getoption("--require-postgres") or os.environ.get("SAE_MNIST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"required, but {HOW_TO_ENABLE}")
        pytest.skip(HOW_TO_ENABLE)
    try:
        with postgres_tracking_server(binaries, subprocess_env()) as (uri, artifacts):
            yield uri, artifacts
    except RuntimeError as e:  # the server did not start: its log says why
        pytest.fail(str(e))


def test_a_pipeline_logs_everything_to_a_postgres_backed_server(server, tmp_path_factory):
    uri, artifacts = server
    repo = copy_repo(tmp_path_factory.mktemp("team"))
    edit_params(repo, tiny)
    env = subprocess_env(MLFLOW_TRACKING_URI=uri)
    subprocess.run(["dvc", "repro", "download"], cwd=repo, env=env, check=True, capture_output=True)
    # Two stages writing to the server at once: the two architectures' first-seed stacks.
    stacks = [subprocess.Popen([sys.executable, "pipeline/train.py", "--arch", arch, "--seed", "0", "--data", "data/mnist",
                                "--models", f"models/{arch}/seed-0", "--logs", f"logs/train/{arch}/seed-0"],
                               cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for arch in ("linear", "conv")]
    for process in stacks:
        assert process.wait(timeout=900) == 0, process.stderr.read()
    # Trained outside `dvc repro`: recorded in dvc.lock, so the repro below does not train them again.
    subprocess.run(["dvc", "commit", "--force", "train@linear-0", "train@conv-0"], cwd=repo, env=env, check=True,
                   capture_output=True)
    result = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sqlite" not in (repo / "models/linear/seed-0/linear-l1.json").read_text()  # the store by kind, no path
    assert json.loads((repo / "models/linear/seed-0/linear-l1.json").read_text())["tracking_store"] == "MLflow tracking server"
    assert not (repo / "mlflow.db").exists() and not (repo / "mlruns").exists()  # nothing went to local stores

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("sae-mnist")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert runs and {r.info.status for r in runs} == {"FINISHED"}
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.run_name != "report"]
    robustness = 2 * (len(BUDGET_FACTORS) + len(LR_FACTORS))
    assert len(parents) == 2 * len(SEEDS) + 2 + len(SEEDS) + robustness  # frontier, ablation, wide, robustness stacks
    frontier = [r for r in runs if r.data.tags.get("dvc_stage", "").startswith("train@") and "mlflow.parentRunId" in r.data.tags]
    defaults = [r for r in frontier if r.data.tags["default_setting"] == "true"]
    assert sorted(r.info.run_name for r in defaults) == sorted(f"{v}-seed{s}" for v in VARIANTS for s in SEEDS)
    for r in frontier:
        epochs = EPOCHS[r.data.tags["arch"]]
        assert [m.step for m in client.get_metric_history(r.info.run_id, "train_loss")] == list(range(1, epochs + 1))
        assert {"test_fvu", "test_l0", "stack_size"} <= set(r.data.metrics)
        probed = r.data.tags["penalty"] in ("l1", "kl") or r.data.tags["default_setting"] == "true"
        assert ("test_probe_accuracy" in r.data.metrics) == probed  # the references: their defaults only
    first = next(r for r in defaults if r.info.run_name == "linear-l1-seed0")
    assert {"reconstructions.png", "features.png", "activations.png"} <= {a.path for a in client.list_artifacts(first.info.run_id)}
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(f"runs:/{first.info.run_id}/model")  # through the server's artifact proxy
    assert loaded.predict(torch.rand(3, 1, 28, 28).numpy())["reconstruction"].shape == (3, 1, 28, 28)
    assert {m.name for m in client.search_registered_models()} == {f"sae-mnist-{v}" for v in VARIANTS}
    report = next(r for r in runs if r.info.run_name == "report")
    assert "report.html" in {a.path for a in client.list_artifacts(report.info.run_id)}
    assert any(artifacts.rglob("report.html"))  # stored in the server's artifacts destination
