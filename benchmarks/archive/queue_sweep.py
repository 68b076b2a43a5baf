"""The penalty sweep as queued DVC experiments, run with 1 and then 2 parallel jobs.

    python benchmarks/queue_sweep.py [--values 0.05 0.1 0.4 0.8] [--out benchmarks/queue_sweep.json]

In a throwaway copy of the repository (git and DVC included, small configuration: offline data subset,
1 thread per job), it runs `dvc repro` once, then for each --jobs in (1, 2) queues one experiment per
L1 strength (`dvc exp run --queue -S penalty.l1.linear.lam=<v>`; the --jobs 2 batch uses the
values x 1.5, as DVC's run cache would restore repeated ones without training), starts the queue with
`dvc queue start --jobs N`, waits for it, and times it. Each experiment re-runs the linear stacks
train@linear-<seed> (one parent MLflow run per seed and a child run per model in it: the three defaults,
and on the first seed every sweep point), the linear evaluate stages and the report.
It then checks the shared MLflow store, grouping runs by the `dvc_experiment` tag (DVC's experiment
name): every expected run present, FINISHED, none duplicated within an experiment.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import mlflow
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import copy_repo, edit_params, subprocess_env  # noqa: E402


def small(params: dict) -> None:
    params["download"].update(mirror=None, mirrors=[])  # offline fallback: the same data for every job
    params["seeds"] = [0, 1, 2]
    params["train"].update(epochs={"linear": 2, "conv": 2}, max_samples=2000, threads=1)
    params["sweep"]["l1"]["linear"]["lam"] = [0.05, 0.8]


def dvc(repo: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def wait_for_queue(repo: Path) -> None:
    while True:
        time.sleep(5)
        status = dvc(repo, "queue", "status")
        if not any(word in status for word in ("Queued", "Running")):
            return


def sweep_runs(repo: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sae-mnist")
    return client.search_runs([experiment.experiment_id], max_results=5000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", type=float, nargs="+", default=[0.05, 0.1, 0.4, 0.8])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/queue_sweep.json")
    args = parser.parse_args()
    record = {"values": args.values, "jobs": {}}
    with tempfile.TemporaryDirectory(prefix="queue-sweep-") as tmp:
        repo = copy_repo(Path(tmp))
        edit_params(repo, small)
        subprocess.run(["git", "commit", "-qam", "small configuration"], cwd=repo, check=True,
                       env=subprocess_env(GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@localhost",
                                          GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@localhost"))
        print("baseline dvc repro ...", flush=True)
        dvc(repo, "repro")
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-qm", "baseline"],
                       cwd=repo, check=True)
        params = yaml.safe_load((repo / "params.yaml").read_text())
        for jobs, scale in ((1, 1.0), (2, 1.5)):
            # Fresh strengths for each batch: DVC's run cache would restore repeated ones without training.
            values = [round(v * scale, 6) for v in args.values]
            before = {r.info.run_id for r in sweep_runs(repo)}
            for value in values:
                dvc(repo, "exp", "run", "--queue", "-S", f"penalty.l1.linear.lam={value}")
            started = time.perf_counter()
            dvc(repo, "queue", "start", "--jobs", str(jobs))
            wait_for_queue(repo)
            seconds = time.perf_counter() - started
            new = [r for r in sweep_runs(repo) if r.info.run_id not in before]
            # Per experiment and seed: the stack's run and one per default (none, l1, kl); on the first seed also
            # one per sweep point: each L1 strength other than the experiment's own, and KL's betas and rhos.
            sweep_values, kl = params["sweep"]["l1"]["linear"]["lam"], params["sweep"]["kl"]["linear"]
            expected = {v: 4 * len(params["seeds"]) + len({s for s in sweep_values if s != v})
                        + len(kl["beta"]) + len(kl["rho"]) for v in values}
            by_experiment = Counter(r.data.tags.get("dvc_experiment", "?") for r in new)
            per_run = Counter((r.data.tags.get("dvc_experiment", "?"), r.info.run_name) for r in new)
            result = {
                "seconds": round(seconds, 1),
                "values": values,
                "experiments": len(values),
                "expected_runs": sum(expected.values()),
                "new_runs": len(new),
                "finished": sum(r.info.status == "FINISHED" for r in new),
                "runs_per_experiment": dict(by_experiment),
                "duplicated": sum(c - 1 for c in per_run.values()),
                "queue_status": dvc(repo, "queue", "status"),
            }
            print(f"--jobs {jobs}: {seconds:.0f} s, {len(new)} new MLflow runs (expected {result['expected_runs']}) "
                  f"in {len(by_experiment)} experiments, {result['finished']} FINISHED, {result['duplicated']} duplicated",
                  flush=True)
            record["jobs"][str(jobs)] = result
            dvc(repo, "queue", "remove", "--all")
        shutil.rmtree(repo / ".dvc" / "tmp", ignore_errors=True)
    record["speedup_2_vs_1"] = round(record["jobs"]["1"]["seconds"] / record["jobs"]["2"]["seconds"], 2)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"jobs 2 vs 1: {record['speedup_2_vs_1']}x faster; wrote {args.out}")


if __name__ == "__main__":
    main()
