"""Session fixtures for a team's setup: a PostgreSQL-backed tracking server, a throwaway Slurm cluster, and the tiny
profile logged to that server. conftest.py imports them, so every test module shares one of each per session.

`team_pipeline` is what the tracking-server test inspects: where Slurm runs here (as in CI) it is the cluster
test's own run (every stage a job, two at once, all writing to the server), so the tiny pipeline is not run a third
time; elsewhere it is a `dvc repro` beside two train stages started together, as before.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import commit, copy_repo, edit_params, required, subprocess_env
from tests.slurm_cluster import slurm_cluster, unavailable_reason
from tests.tracking_server import HOW_TO_ENABLE, postgres_bin, postgres_tracking_server

BROKEN = "raise SystemExit(3)  # a fault injected by test_cluster_slurm\n"


class TeamRun(NamedTuple):
    repo: Path  # the copy of the repository the pipeline ran in
    uri: str  # the tracking server it logged to
    artifacts: Path  # the server's artifacts destination


@pytest.fixture(scope="session")
def server(request):
    """A PostgreSQL cluster and `mlflow server` (backend store on it, artifacts in a directory) on 127.0.0.1."""
    binaries = postgres_bin()
    if binaries is None:
        if required(request, "--require-postgres", "SAE_MNIST_REQUIRE_POSTGRES"):
            pytest.fail(f"required, but {HOW_TO_ENABLE}")
        pytest.skip(HOW_TO_ENABLE)
    try:
        with postgres_tracking_server(binaries, subprocess_env()) as (uri, artifacts):
            yield uri, artifacts
    except RuntimeError as e:  # the server did not start: its log says why
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def slurm(request):
    reason = unavailable_reason()
    if reason:
        if required(request, "--require-slurm", "SAE_MNIST_REQUIRE_SLURM"):
            pytest.fail(f"required, but {reason}")
        pytest.skip(reason)
    with slurm_cluster() as env:
        yield env


def cluster_profile(params: dict) -> None:
    """The tiny profile (one thread per stage), each job asking for one CPU."""
    from tests.test_pipeline_e2e import tiny

    tiny(params)
    params["cluster"] = {"default": {"cpus": 1, "time": "01:00:00"}}


def cluster(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sae_mnist.cluster", *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=3600)


def all_jobs(env: dict) -> list[str]:
    return subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.fixture(scope="session")
def cluster_runs(slurm, server, tiny_pipeline, tmp_path_factory):
    """The session's sequential `dvc repro` of the tiny profile (conftest.tiny_pipeline), then on the cluster: a
    SQLite store refused, a run with one stage broken, and the resubmission after its fix."""
    uri, artifacts = server
    sequential, _ = tiny_pipeline
    repo = copy_repo(tmp_path_factory.mktemp("cluster"))
    edit_params(repo, cluster_profile)
    commit(repo, "tiny profile")
    env = subprocess_env(**slurm)
    before = all_jobs(env)
    refused = cluster(repo, env, "submit")  # MLFLOW_TRACKING_URI unset: each job would write its own SQLite file
    refused_after = all_jobs(env)

    env["MLFLOW_TRACKING_URI"] = uri
    baselines = repo / "pipeline" / "baselines.py"
    original = baselines.read_text()
    baselines.write_text(original.replace("import argparse\n", "import argparse\n" + BROKEN, 1))
    commit(repo, "a broken stage")
    broken = cluster(repo, env, "submit")
    assert broken.returncode == 0, broken.stdout + broken.stderr
    broken_status = cluster(repo, env, "status", "--wait", "--poll", "2")

    baselines.write_text(original)
    commit(repo, "the stage fixed")
    fixed = cluster(repo, env, "submit")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    fixed_status = cluster(repo, env, "status", "--wait", "--poll", "2")
    run_dirs = sorted((repo / ".cluster" / "runs").iterdir())
    return {"sequential": sequential, "repo": repo, "env": env, "uri": uri, "artifacts": artifacts,
            "refused": refused, "jobs_before": before, "jobs_after_refusal": refused_after, "broken": broken_status,
            "fixed_submit": fixed, "fixed": fixed_status, "run_dirs": run_dirs}


def _two_stacks_then_repro(repo: Path, uri: str) -> None:
    """The tiny profile against the server without Slurm: the two first-seed stacks at once, then `dvc repro`."""
    from tests.test_pipeline_e2e import tiny

    edit_params(repo, tiny)
    env = subprocess_env(MLFLOW_TRACKING_URI=uri)
    # The rates the stacks train at come first (`dvc repro` would otherwise re-run them and then the stacks)
    subprocess.run(["dvc", "repro", "lr_select@linear", "lr_select@conv"], cwd=repo, env=env, check=True,
                   capture_output=True)
    stacks = [subprocess.Popen([sys.executable, "pipeline/train.py", "--arch", arch, "--seed", "0", "--data",
                                "data/mnist", "--rates", f"lr_select/{arch}.json", "--models", f"models/{arch}/seed-0",
                                "--logs",
                                f"logs/train/{arch}/seed-0"],
                               cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for arch in ("linear", "conv")]
    for process in stacks:
        assert process.wait(timeout=900) == 0, process.stderr.read()
    # Trained outside `dvc repro`: recorded in dvc.lock, so the repro below does not train them again.
    subprocess.run(["dvc", "commit", "--force", "train@linear-0", "train@conv-0"], cwd=repo, env=env, check=True,
                   capture_output=True)
    result = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="session")
def team_pipeline(request, server, tmp_path_factory) -> TeamRun:
    """The tiny profile, every stage logging to the server with two writing at once: the Slurm run where Slurm
    runs here (CI requires it), else a run of its own."""
    uri, artifacts = server
    if unavailable_reason() is None or required(request, "--require-slurm", "SAE_MNIST_REQUIRE_SLURM"):
        runs = request.getfixturevalue("cluster_runs")
        assert runs["fixed"].returncode == 0, runs["fixed"].stdout + runs["fixed"].stderr
        return TeamRun(runs["repo"], uri, artifacts)
    repo = copy_repo(tmp_path_factory.mktemp("team"))
    _two_stacks_then_repro(repo, uri)
    return TeamRun(repo, uri, artifacts)
