"""The pipeline on a real Slurm cluster: every stage a job, a PostgreSQL-backed tracking server, a failure and a resume.

A throwaway single-node cluster (tests/slurm_cluster.py) runs the end-to-end test's tiny profile (every stage, on
the offline fallback data) at one thread per job, so the 2-CPU node runs two jobs at once. What is under test is
the orchestration, not the numbers: the run is compared with a sequential `dvc repro` of the same profile.
Skipped, with the reason, where Slurm or PostgreSQL is missing; `--require-slurm` or SAE_MNIST_REQUIRE_SLURM=1
(as CI runs) makes that a failure.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import mlflow
import pytest

from sae_mnist.cluster.slurm import job_fields
from tests.team import commit

pytestmark = pytest.mark.e2e


def job_times(job_id: str, env: dict) -> tuple[datetime, datetime]:
    fields = job_fields(job_id, env)
    return datetime.fromisoformat(fields["StartTime"]), datetime.fromisoformat(fields["EndTime"])


def manifest(run_dir: Path) -> dict[str, dict]:
    return {job["name"]: job for job in json.loads((run_dir / "run.json").read_text())["jobs"]}


def test_a_sqlite_store_is_refused_before_any_job_is_submitted(cluster_runs):
    assert cluster_runs["refused"].returncode == 2
    assert "MLFLOW_TRACKING_URI is not set" in cluster_runs["refused"].stderr
    assert "set MLFLOW_TRACKING_URI to the team's tracking server" in cluster_runs["refused"].stderr
    assert cluster_runs["jobs_after_refusal"] == cluster_runs["jobs_before"]


def test_a_failed_stage_is_named_with_its_log_and_its_dependents_are_cancelled(cluster_runs):
    status = cluster_runs["broken"]
    assert status.returncode == 1, status.stdout + status.stderr
    jobs = manifest(cluster_runs["run_dirs"][0])
    log = jobs["baselines"]["log"]
    # DVC exits 255 when a stage fails; the log has the stage's own exit code.
    assert f"FAILED baselines (job {jobs['baselines']['job_id']}, exit 255): its log is {log}" in status.stdout
    assert "cancelled because of it: report, collect" in status.stdout
    assert "fix it, commit, and submit again" in status.stdout
    assert "exited with 3" in Path(log).read_text()  # DVC's own words on the stage's exit
    assert {name: state for state, name in re.findall(r"^\s+(\w+)\s+(\S+)\s+job", status.stdout, flags=re.M)} == {
        **{name: "COMPLETED" for name in jobs if name not in ("baselines", "report", "collect")},
        "baselines": "FAILED", "report": "CANCELLED", "collect": "CANCELLED"}


def test_every_stage_ran_as_its_own_job_in_dependency_order_two_at_once(cluster_runs):
    env, jobs = cluster_runs["env"], manifest(cluster_runs["run_dirs"][0])
    ran = {name: job for name, job in jobs.items() if name not in ("baselines", "report", "collect")}
    times = {name: job_times(job["job_id"], env) for name, job in ran.items()}
    for name, job in ran.items():
        log = Path(job["log"]).read_text()
        assert re.findall(r"Running stage '([^']+)'", log) == [name], log[-2000:]  # its own stage only
        for parent in job["parents"]:
            assert times[parent][1] <= times[name][0], (parent, name)
    spans = sorted(times.values())
    assert any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), "no two jobs overlapped"


def test_resubmission_runs_only_what_was_missing_and_restores_everything(cluster_runs):
    assert cluster_runs["fixed"].returncode == 0, cluster_runs["fixed"].stdout + cluster_runs["fixed"].stderr
    assert "done: every stage restored in the workspace" in cluster_runs["fixed"].stdout
    assert list(manifest(cluster_runs["run_dirs"][1])) == ["baselines", "report", "collect"]
    submitted = cluster_runs["fixed_submit"].stdout
    assert "submitted 2 stage jobs and collect (30 stages come from the run-cache)" in submitted
    collect_log = Path(manifest(cluster_runs["run_dirs"][1])["collect"]["log"]).read_text()
    # collect restores every stage: the 30 from the run-cache and the 2 this resubmission ran
    assert "Running stage" not in collect_log and collect_log.count("is cached - skipping run") == 32
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=cluster_runs["repo"],
                            env=cluster_runs["env"], capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) == {}
    for path in ("metrics/headline.json", "ablation/linear.json", "reports/report.md"):
        target = cluster_runs["repo"] / path
        assert target.is_file() and not target.is_symlink() and target.stat().st_nlink == 1, path


def test_the_cluster_run_s_metrics_equal_the_sequential_run_s(cluster_runs):
    repo, sequential = cluster_runs["repo"], cluster_runs["sequential"]
    commit(repo, "cluster results")
    commit(sequential, "sequential results")
    subprocess.run(["git", "fetch", "-q", str(sequential), "HEAD"], cwd=repo, check=True)
    diff = subprocess.run([sys.executable, "-m", "dvc", "metrics", "diff", "FETCH_HEAD", "HEAD", "--json"], cwd=repo,
                          env=cluster_runs["env"], capture_output=True, text=True, check=True)
    assert json.loads(diff.stdout or "{}") == {}
    headline = json.loads((repo / "metrics" / "headline.json").read_text())
    assert headline == json.loads((sequential / "metrics" / "headline.json").read_text())


def test_every_run_is_in_the_tracking_server(cluster_runs):
    client = mlflow.MlflowClient(cluster_runs["uri"])
    experiment = client.get_experiment_by_name("sae-mnist")
    logged = {(r.data.tags.get("dvc_stage"), r.info.run_name, r.info.status)
              for r in client.search_runs([experiment.experiment_id], max_results=5000)}
    with sqlite3.connect(cluster_runs["sequential"] / "mlflow.db") as db:  # the sequential run's local store
        expected = set(db.execute("SELECT t.value, r.name, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                                  "AND t.key = 'dvc_stage'").fetchall())
    assert expected and {status for _, _, status in expected} == {"FINISHED"}
    assert logged == expected
