"""A team's tracking server, for real: `mlflow server` on a throwaway PostgreSQL cluster, a small pipeline logging to it.

Skipped, with the reason, where PostgreSQL (initdb, pg_ctl) or psycopg2 is missing; `--require-postgres` or
SAE_MNIST_REQUIRE_POSTGRES=1 (as CI runs) makes that a failure.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pytest
import torch

from tests.conftest import copy_repo, edit_params, subprocess_env
from tests.test_pipeline_e2e import BUDGET_FACTORS, EPOCHS, LR_FACTORS, SEEDS, VARIANTS, tiny

pytestmark = pytest.mark.e2e
HOW_TO_ENABLE = ("PostgreSQL is not available: install it (Debian: apt-get install postgresql, which puts initdb and "
                 "pg_ctl in /usr/lib/postgresql/<version>/bin) and psycopg2-binary (pip install -e '.[server]')")


def postgres_bin() -> Path | None:
    for candidate in [*sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
                      *(str(Path(p).parent) for p in [shutil.which("initdb")] if p)]:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until `url` answers 200; fails, with the server's log, if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    state = f"exited with {process.returncode}" if process.poll() is not None else f"did not answer within {timeout} s"
    pytest.fail(f"{url} {state}; the server's log ends:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """A PostgreSQL cluster and `mlflow server` (backend store on it, artifacts in a directory) on 127.0.0.1."""
    binaries = postgres_bin()
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        binaries = None
    if binaries is None:
        if request.config.getoption("--require-postgres") or os.environ.get("SAE_MNIST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"required, but {HOW_TO_ENABLE}")
        pytest.skip(HOW_TO_ENABLE)
    # Not under pytest's basetemp: that is private to its owner (0700), and as root the cluster runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="sae-mnist-server-"))
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    data, sockets = root / "pgdata", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    pg_port = free_port()
    subprocess.run(as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-o",
                                f"-p {pg_port} -k {sockets} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run(as_postgres([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres",
                                    "mlflow"]), check=True, capture_output=True)
        port = free_port()
        artifacts = root / "artifacts"
        log_file = root / "mlflow-server.log"
        log = open(log_file, "w")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/mlflow",
             "--artifacts-destination", artifacts.as_uri(), "--workers", "2"],
            env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # Its first start creates MLflow's schema in PostgreSQL (every migration): slow on a busy 2-core machine.
            wait_for(f"http://127.0.0.1:{port}/health", process, log_file, timeout=600)
            yield f"http://127.0.0.1:{port}", artifacts
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()
    finally:
        subprocess.run(as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)


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
