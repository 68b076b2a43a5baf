"""A team's tracking server, for real: `mlflow server` on a throwaway PostgreSQL cluster, a small pipeline logging to it.

The pipeline is tests/team.py's `team_pipeline`: the Slurm test's cluster run where Slurm runs here (as in CI),
else a run of its own with two train stages writing at once. Skipped, with the reason, where PostgreSQL (initdb,
pg_ctl) or psycopg2 is missing; `--require-postgres` or SAE_MNIST_REQUIRE_POSTGRES=1 (as CI runs) makes that a
failure.
"""

from __future__ import annotations

import json

import mlflow
import mlflow.pyfunc
import pytest
import torch

from tests.test_pipeline_e2e import BUDGET_FACTORS, EPOCHS, EXTRA_SEEDS, LR_FACTORS, SEEDS, SELECT_FACTORS, VARIANTS

pytestmark = pytest.mark.e2e


def test_a_pipeline_logs_everything_to_a_postgres_backed_server(team_pipeline):
    repo, uri, artifacts = team_pipeline
    assert "sqlite" not in (repo / "models/linear/seed-0/linear-l1.json").read_text()  # the store by kind, no path
    assert json.loads((repo / "models/linear/seed-0/linear-l1.json").read_text())["tracking_store"] == "MLflow tracking server"
    assert not (repo / "mlflow.db").exists() and not (repo / "mlruns").exists()  # nothing went to local stores

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("sae-mnist")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert runs and {r.info.status for r in runs} == {"FINISHED"}
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.run_name != "report"]
    studies = 2 * (len(BUDGET_FACTORS) + len(LR_FACTORS) + len(SELECT_FACTORS))  # robustness and lr_select stacks
    # frontier (the compared and TopK's), ablation, wide, study stacks and sparse_end@conv's extra seeds
    assert len(parents) == 2 * 2 * len(SEEDS) + 2 + len(SEEDS) + studies + len(EXTRA_SEEDS)
    frontier = [r for r in runs if r.data.tags.get("dvc_stage", "").startswith(("train@", "train_topk@"))
                and "mlflow.parentRunId" in r.data.tags]
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
