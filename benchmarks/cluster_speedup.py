"""Wall time of one profile on a throwaway single-node Slurm cluster against sequential `dvc repro`, in one run.

    python benchmarks/cluster_speedup.py [--mnist DIR] [--out benchmarks/cluster_speedup.json]

Needs root, Slurm and PostgreSQL, as the cluster test does. The profile is the quick one at train.threads 1, each
job asking for 1 CPU, so this machine's CPUs run as many jobs at once. Runs, one after another, nothing else
running:
  1. sequential   `dvc repro` of that profile in one copy (the default local SQLite store);
  2. cluster      `python -m sae_mnist.cluster submit` in another copy, logging to a PostgreSQL-backed tracking
                  server, until its collect job ends (the wall time counts from the submit command);
  3. sequential at train.threads = the CPU count: the most one `dvc repro` gets from this machine (other
                  numbers: thread count is part of the profile).
The float32 sgemm rate is measured before and after. Per job: its wall time from scontrol, so the overhead per
job (clone, checkout, DVC's restores, Python start) shows beside the stage's own time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
from benchmarks.stage_times import sgemm_rate  # noqa: E402
from sae_mnist.provenance import cpu_name, git_commit  # noqa: E402
from sae_mnist.quick import copy_repo, quick  # noqa: E402
from tests.slurm_cluster import slurm_cluster, unavailable_reason  # noqa: E402
from tests.tracking_server import HOW_TO_ENABLE, postgres_bin, postgres_tracking_server  # noqa: E402


def make_copy(dest: Path, threads: int, cpus: int) -> Path:
    dest.mkdir(parents=True)
    copy_repo(ROOT, dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    quick(params)
    params["train"]["threads"] = threads
    params["cluster"] = {"default": {"cpus": cpus, "time": "01:00:00"}}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "profile"],
                   cwd=dest, check=True)
    return dest


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def sequential(repo: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--quiet"], cwd=repo, env=env, check=True)
    return time.perf_counter() - start


def job_seconds(job_id: str, env: dict[str, str]) -> float:
    fields = dict(f.split("=", 1) for f in subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env,
                                                          capture_output=True, text=True).stdout.split() if "=" in f)
    return (datetime.fromisoformat(fields["EndTime"]) - datetime.fromisoformat(fields["StartTime"])).total_seconds()


def on_cluster(repo: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sae_mnist.cluster", "submit"], cwd=repo, env=env, check=True)
    status = subprocess.run([sys.executable, "-m", "sae_mnist.cluster", "status", "--wait", "--poll", "1"],
                            cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if status.returncode != 0:
        raise SystemExit(f"the cluster run failed:\n{status.stdout}\n{status.stderr}")
    run_dir = sorted((repo / ".cluster" / "runs").iterdir())[-1]
    jobs = json.loads((run_dir / "run.json").read_text())["jobs"]
    return wall, {job["name"]: job_seconds(job["job_id"], env) for job in jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="a local MNIST mirror (MNIST_MIRROR for the download stage)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cluster_speedup.json")
    args = parser.parse_args()
    if reason := unavailable_reason():
        raise SystemExit(reason)
    binaries = postgres_bin()
    if binaries is None:
        raise SystemExit(HOW_TO_ENABLE)
    cpus = os.cpu_count()
    scratch = Path(tempfile.mkdtemp(prefix="sae-mnist-speedup-"))
    mirror = {"MNIST_MIRROR": str(args.mnist.resolve())}
    try:
        sgemm_before = sgemm_rate()
        seq_s = sequential(make_copy(scratch / "sequential", threads=1, cpus=1), environment(**mirror))
        print(f"sequential, 1 thread: {seq_s:.0f} s", flush=True)
        with slurm_cluster() as slurm, postgres_tracking_server(binaries, environment()) as (uri, _):
            env = environment(**mirror, **slurm, MLFLOW_TRACKING_URI=uri)
            cluster_s, jobs = on_cluster(make_copy(scratch / "cluster", threads=1, cpus=1), env)
        print(f"cluster, {cpus} jobs of 1 CPU at once: {cluster_s:.0f} s", flush=True)
        seq_all_s = sequential(make_copy(scratch / "threads", threads=cpus, cpus=cpus), environment(**mirror))
        print(f"sequential, {cpus} threads: {seq_all_s:.0f} s", flush=True)
        sgemm_after = sgemm_rate()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stage_jobs = {name: s for name, s in jobs.items() if name != "collect"}
    result = {
        "git_commit": git_commit(), "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": cpu_name(), "cpus": cpus, "sgemm_gflops_before": sgemm_before, "sgemm_gflops_after": sgemm_after,
        "profile": "quick, train.threads 1, 1 CPU per job", "sequential_s": round(seq_s, 1),
        "cluster_s": round(cluster_s, 1), "speedup": round(seq_s / cluster_s, 2),
        f"sequential_{cpus}_threads_s": round(seq_all_s, 1),
        "jobs": len(stage_jobs), "job_seconds_sum": round(sum(stage_jobs.values()), 1),
        "collect_s": jobs.get("collect"), "job_s": stage_jobs,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "job_s"}, indent=1))


if __name__ == "__main__":
    main()
