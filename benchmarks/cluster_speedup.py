"""Wall time of one profile on a throwaway single-node Slurm cluster against sequential `dvc repro`, in one run.

    python benchmarks/cluster_speedup.py [--mnist DIR] [--out benchmarks/cluster_speedup.json]

Needs root, Slurm and PostgreSQL, as the cluster test does. The profile is the quick one at train.threads 1, each
job asking for 1 CPU, so this machine's CPUs run as many jobs at once. The runs (RUNS below; --runs picks some,
the others already in --out are kept), one after another in throwaway copies, nothing else running:
  sequential              `dvc repro`, the default local SQLite store;
  sequential-server       `dvc repro`, logging to the PostgreSQL-backed tracking server the cluster run uses;
  cluster                 `python -m sae_mnist.cluster submit` until its collect job ends (timed from the submit
                          command), logging to that server;
  sequential-all-threads  `dvc repro` at train.threads = the CPU count: the most one `dvc repro` gets from this
                          machine (other numbers: the thread count is part of the profile).
Each run records the commit and the float32 sgemm rate before and after it; the cluster run, each job's wall time
from scontrol, so the overhead per job (clone, checkout, DVC's restores, Python start) shows.
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
from sae_mnist.cluster.slurm import job_fields  # noqa: E402
from sae_mnist.provenance import cpu_name, git_commit  # noqa: E402
from sae_mnist.quick import copy_repo, quick  # noqa: E402
from tests.conftest import subprocess_env as environment  # noqa: E402  (this interpreter's tools, no user store)
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


def sequential(repo: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--quiet"], cwd=repo, env=env, check=True)
    return time.perf_counter() - start


def job_seconds(job_id: str, env: dict[str, str]) -> float:
    fields = job_fields(job_id, env)
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


RUNS = {  # name: (train.threads, MLflow store, where)
    "sequential": "dvc repro, 1 thread, the default local SQLite store",
    "sequential-server": "dvc repro, 1 thread, the PostgreSQL-backed tracking server",
    "cluster": "one Slurm job per stage, 1 CPU and 1 thread each, the PostgreSQL-backed tracking server",
    "sequential-all-threads": "dvc repro, train.threads = the CPU count, the default local SQLite store",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="a local MNIST mirror (MNIST_MIRROR for the download stage)")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="which runs (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cluster_speedup.json",
                        help="JSON to write; runs already in it and not run now are kept")
    args = parser.parse_args()
    if reason := unavailable_reason():
        raise SystemExit(reason)
    binaries = postgres_bin()
    if binaries is None:
        raise SystemExit(HOW_TO_ENABLE)
    cpus = os.cpu_count()
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.update(machine=cpu_name(), cpus=cpus, profile="quick (python -m sae_mnist.quick), 2 seeds, 23 stages",
                  runs_described=RUNS)
    scratch = Path(tempfile.mkdtemp(prefix="sae-mnist-speedup-"))
    mirror = {"MNIST_MIRROR": str(args.mnist.resolve())}
    try:
        # One server for every run, so that its idle cost is in all of them.
        with postgres_tracking_server(binaries, environment()) as (uri, _):
            for name in args.runs:
                record = {"git_commit": git_commit(), "sgemm_gflops_before": sgemm_rate(),
                          "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                threads = cpus if name == "sequential-all-threads" else 1
                repo = make_copy(scratch / name, threads=threads, cpus=threads)
                server = {"MLFLOW_TRACKING_URI": uri} if name in ("sequential-server", "cluster") else {}
                if name == "cluster":
                    with slurm_cluster() as slurm:
                        seconds, jobs = on_cluster(repo, environment(**mirror, **server, **slurm))
                    stage_jobs = {n: s for n, s in jobs.items() if n != "collect"}
                    record.update(jobs=len(stage_jobs), job_seconds_sum=sum(stage_jobs.values()),
                                  collect_s=jobs.get("collect"), job_s=stage_jobs)
                else:
                    seconds = sequential(repo, environment(**mirror, **server))
                record.update(seconds=round(seconds, 1), sgemm_gflops_after=sgemm_rate())
                result.setdefault("runs", {})[name] = record
                print(f"{name}: {seconds:.0f} s", flush=True)
                args.out.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = result["runs"]
    for base in ("sequential", "sequential-server", "sequential-all-threads"):
        if base in runs and "cluster" in runs:
            result[f"speedup_over_{base}"] = round(runs[base]["seconds"] / runs["cluster"]["seconds"], 2)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
