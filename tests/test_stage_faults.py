"""Faults in real stage processes: bad params, divergence, SIGKILL, SIGTERM, an absent tracking server,
and two stages logging to one SQLite store at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import copy_repo, edit_params, subprocess_env

pytestmark = pytest.mark.e2e


def train_cmd(arch: str, seed: int = 0) -> list[str]:
    return [sys.executable, "pipeline/train.py", "--arch", arch, "--seed", str(seed), "--data", "data/mnist",
            "--rates", f"lr_select/{arch}.json", "--models", f"models/{arch}/seed-{seed}", "--logs",
            f"logs/train/{arch}/seed-{seed}"]


def small(params: dict) -> None:
    params["seeds"] = [0]  # one stack per architecture
    params["download"].update(mirror=None, mirrors=[])
    params["train"].update(epochs={"linear": 4, "conv": 4}, threads=1)
    params["model"]["linear"]["hidden"] = 256
    params["model"]["conv"]["channels"] = 4
    # one extra lam, beta, rho and k: stacks of 6 (none, l1 x 2, kl x 3) and of TopK's 2
    for arch in ("linear", "conv"):
        params["sweep"]["l1"][arch] = {"lam": [params["penalty"]["l1"][arch]["lam"] * 4]}
        kl = params["penalty"]["kl"][arch]
        params["sweep"]["kl"][arch] = [{"beta": kl["beta"] * 4, "scale": kl["scale"], "rho": [kl["rho"]]},
                                       {"beta": kl["beta"], "scale": kl["scale"], "rho": [kl["rho"] / 2]}]
        params["sweep"]["topk"][arch] = {"k": [params["penalty"]["topk"][arch]["k"] // 2]}
    params["sparse_end"] = {}  # its extra seeds repeat settings of the full sweep, which this one no longer has


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("faults"))
    edit_params(repo, small)
    subprocess.run(["dvc", "repro", "download"], cwd=repo, env=subprocess_env(), check=True, capture_output=True)
    return repo


def runs(repo: Path, run_name: str):
    """The MLflow runs named `run_name` (a stack, e.g. linear-seed0, or a model, e.g. linear-l1-seed0), oldest first."""
    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sae-mnist")
    if experiment is None:
        return client, []
    found = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{run_name}'",
                               order_by=["attributes.start_time ASC"])
    return client, found


def stack_runs(repo: Path, stack: str):
    """Every run of the stack's latest run: its parent run and its models' child runs."""
    client, (*_, parent) = runs(repo, stack)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return [parent, *children]


def test_invalid_params_stop_before_any_work(repo, tmp_path):
    bad = tmp_path / "params.yaml"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["penalty"]["kl"]["linear"]["rho"] = 1.5
    bad.write_text(yaml.safe_dump(params))
    started = time.monotonic()
    result = subprocess.run(train_cmd("linear") + ["--params", str(bad)], cwd=repo, env=subprocess_env(),
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "penalty.kl.linear.rho: Input should be less than 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (repo / "models/linear").exists() and not (repo / "mlflow.db").exists()
    assert time.monotonic() - started < 15


def test_a_seed_outside_params_is_refused(repo):
    result = subprocess.run(train_cmd("linear", seed=7), cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "seed 7 is not in seeds [0]" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_tracking_server_fails_fast(repo):
    started = time.monotonic()
    result = subprocess.run(train_cmd("linear"), cwd=repo, env=subprocess_env(MLFLOW_TRACKING_URI="http://127.0.0.1:9"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "MLflow tracking store http://127.0.0.1:9 does not answer" in result.stderr
    assert "unset MLFLOW_TRACKING_URI" in result.stderr
    assert time.monotonic() - started < 30
    assert not (repo / "models/linear").exists()


def test_divergence_fails_the_run_and_writes_no_weights(repo, tmp_path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["lr"] = 1e30
    diverging = tmp_path / "params.yaml"
    diverging.write_text(yaml.safe_dump(params))
    rates = json.loads((repo / "lr_select/conv.json").read_text())  # every penalty's chosen rate as absurd
    for choice in rates["chosen"].values():
        choice["lr"] = 1e30
    (tmp_path / "rates.json").write_text(json.dumps(rates))
    result = subprocess.run(train_cmd("conv") + ["--params", str(diverging), "--rates", str(tmp_path / "rates.json")],
                            cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2
    assert "conv-l1: loss became NaN or infinite at epoch 1, step" in result.stderr
    assert "no weights were written" in result.stderr and "Traceback" not in result.stderr
    assert not (repo / "models/conv").exists() and not list((repo / "models").glob("conv/.seed-0.partial"))
    found = stack_runs(repo, "conv-seed0")
    assert len(found) == 1 + 6 and {r.info.status for r in found} == {"FAILED"}


def _start_and_wait_for(cmd, cwd, marker: str) -> subprocess.Popen:
    process = subprocess.Popen(cmd, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    for line in process.stdout:
        if marker in line:
            return process
    pytest.fail(f"{cmd} ended before printing {marker!r}")


def test_sigkill_leaves_no_output_and_the_next_repro_resumes(repo):
    process = _start_and_wait_for(["dvc", "repro", "--single-item", "train@linear-0"], repo, "linear-seed0 epoch 2/4:")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (repo / "models/linear/seed-0").exists()
    assert (repo / ".checkpoints/linear-seed0.pt").is_file()
    status = json.loads(subprocess.run(["dvc", "status", "--json", "train@linear-0"], cwd=repo, env=subprocess_env(),
                                       capture_output=True, text=True, check=True).stdout)
    assert "train@linear-0" in status
    assert {r.info.status for r in stack_runs(repo, "linear-seed0")} == {"RUNNING"}  # a killed process cannot close them

    result = subprocess.run(["dvc", "repro", "--single-item", "train@linear-0"], cwd=repo, env=subprocess_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "resuming from the checkpoint after epoch 2" in result.stdout
    # the stack's run and its 6 models' (none, l1 x 2, kl x 3; TopK trains in train_topk's stacks)
    assert result.stdout.count("marked abandoned MLflow run") == 1 + 6
    assert (repo / "models/linear/seed-0/linear-l1.pt").is_file()
    assert not (repo / ".checkpoints/linear-seed0.pt").exists()
    client, found = runs(repo, "linear-l1-seed0")
    assert [r.info.status for r in found] == ["FAILED", "FINISHED"]
    history = client.get_metric_history(found[1].info.run_id, "train_recon")
    assert [m.step for m in history] == [1, 2, 3, 4]


def test_sigterm_marks_the_runs_failed(repo):
    process = _start_and_wait_for(train_cmd("conv"), repo, "conv-seed0 epoch 1/4:")
    process.terminate()
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not (repo / "models/conv/seed-0").exists() and not (repo / "models/conv/.seed-0.partial").exists()
    found = stack_runs(repo, "conv-seed0")
    assert len(found) == 1 + 6 and {r.info.status for r in found} == {"FAILED"}


def test_two_stages_log_to_one_sqlite_store_at_once(repo):
    processes = [subprocess.Popen(train_cmd(arch), cwd=repo, env=subprocess_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for arch in ("conv", "linear")]
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stderr.read()
    for stack in ("conv-seed0", "linear-seed0"):
        client, _ = runs(repo, stack)
        found = stack_runs(repo, stack)
        assert len(found) == 1 + 6 and {r.info.status for r in found} == {"FINISHED"}
        for run in found[1:]:
            for metric in ("train_recon", "train_loss"):
                assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1, 2, 3, 4]
            assert {"train_wall_time_s", "train_samples_per_s", "n_params", "stack_size"} <= set(run.data.metrics)
