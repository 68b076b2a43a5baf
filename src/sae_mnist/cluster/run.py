"""A cluster run: submit every missing stage as a Slurm job, follow it, and restore the results in the workspace.

    submit   plan (the stages no job has produced yet), write one job script per stage, sbatch them upstream
             first, each `--dependency=afterok` on its parents, then the collect job after all of them.
    status   each job's state and log; a failed job by name, with the jobs cancelled because of it.
    collect  in the workspace: `dvc repro` restores every stage from the run-cache (running none) and writes
             dvc.lock once; the collect job does this, and it can be run again by hand.

A run lives in <work_dir>/runs/<time>-<commit>/: run.json (the jobs), jobs/ (the scripts), logs/, and state/
(a `.ok` or `.failed` marker per job, which outlives Slurm's memory of finished jobs).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import tracking
from . import slurm
from .config import ClusterConfig, ClusterError, load_cluster_config
from .plan import cache_dir, clone_commands, job_environment, missing_stages, stage_graph, uncached_outputs
from .store import require_shared_store

COLLECT = "collect"  # the final job's name in run.json, logs and state
TERMINAL_FAILURES = ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                     "DEADLINE")


def _git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout


def _committed_head(workspace: Path, allowed: set[str] = frozenset()) -> str:
    """HEAD's commit; ClusterError when tracked files differ from it (jobs would not see the change)."""
    listed = _git(workspace, "status", "--porcelain", "-z", "--untracked-files=no")
    changed = [entry[3:] for entry in listed.split("\0") if len(entry) > 3]
    changed = [path for path in changed if not any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)]
    if changed:
        raise ClusterError(f"uncommitted changes in {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}: "
                           "every job runs the committed code and params, so commit them (or stash them) first")
    return _git(workspace, "rev-parse", "HEAD").strip()


def _file_name(name: str) -> str:
    return name.replace("/", "_").replace(":", "_")


def _script_head(what: str, marker: Path) -> list[str]:
    """A job script's first lines: strict bash, `<marker>.failed` holding the exit code, this environment's tools."""
    return ["#!/bin/bash", f"# sae-mnist cluster job: {what}", "set -euo pipefail",
            f"trap 'rc=$?; if [ $rc -ne 0 ]; then echo $rc > {shlex.quote(str(marker))}.failed; fi' EXIT",
            f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH"]


def job_script(address: str, workspace: Path, run_dir: Path, clone: Path, sha: str, cache: Path,
               config: ClusterConfig) -> str:
    """The bash a stage's job runs: its clone, `dvc repro` of that one stage, and its run-cache entry saved."""
    q = shlex.quote
    marker = run_dir / "state" / _file_name(address)
    return "\n".join([
        *_script_head(f"DVC stage {address} at commit {sha}", marker),
        "unset DVC_ROOT DVC_STAGE SAE_MNIST_RESTORE_ONLY",
        'echo "job ${SLURM_JOB_ID:-?} on $(hostname): ' + address + ' at ' + sha[:8] + ', $(date -u +%FT%TZ)"',
        clone_commands(workspace, clone, sha, cache, config, checkout=address),
        # The clone's code, not the code the environment's editable install points at: DVC hashes the clone's.
        'export PYTHONPATH="$clone/src" SAE_MNIST_ONLY_STAGE=' + q(address),
        "python -c 'import sae_mnist, sys; sys.exit(None if sae_mnist.__file__.startswith(sys.argv[1]) else "
        "\"sae_mnist imports from \" + sae_mnist.__file__ + \", not from the clone\")' \"$clone/\"",
        'echo "[${SECONDS} s] clone ready"',
        # Ancestors come back from the run-cache; only this stage runs (the guard in sae_mnist.cli refuses others).
        f"dvc repro {q(address)}",
        'echo "[${SECONDS} s] stage done"',
        # `dvc repro` saves no run-cache entry for a stage with `cache: false` outputs; a forced commit does.
        f"dvc commit --force --quiet {q(address)}",
        'echo "[${SECONDS} s] run-cache entry saved"',
        f"touch {q(str(marker))}.ok",
        "cd / && rm -rf \"$clone\"",
        "",
    ])


def collect_script(workspace: Path, run_dir: Path) -> str:
    q = shlex.quote
    return "\n".join([
        *_script_head("restore every stage in the workspace and write dvc.lock once", run_dir / "state" / COLLECT),
        "unset DVC_ROOT DVC_STAGE SAE_MNIST_ONLY_STAGE",
        f"cd {q(str(workspace))}",
        f"python -m sae_mnist.cluster collect --run {q(str(run_dir))}",
        "",
    ])


def _sbatch_options(config: ClusterConfig, name: str, log: Path, cpus: int, time_limit: str,
                    mem_mb: int | None = None, gres: str | None = None) -> list[str]:
    options = [f"--job-name=sae-mnist:{name}", f"--output={log}", "--kill-on-invalid-dep=yes",
               f"--cpus-per-task={cpus}", f"--time={time_limit}"]
    if config.partition:
        options.append(f"--partition={config.partition}")
    if mem_mb:
        options.append(f"--mem={mem_mb}")
    if gres:
        options.append(f"--gres={gres}")
    return options + list(config.sbatch_extra)


def _refuse_while_a_run_is_going(work_dir: Path) -> None:
    """Two runs at once would run the same stages twice and race for the workspace's dvc.lock."""
    for manifest in sorted((work_dir / "runs").glob("*/run.json"))[-1:]:
        jobs = json.loads(manifest.read_text())["jobs"]
        states = slurm.job_states([j["job_id"] for j in jobs], job_environment()) if jobs else {}
        going = [j["job_id"] for j in jobs if states.get(j["job_id"], ("",))[0] in slurm.ACTIVE]
        if going:
            raise ClusterError(f"the run in {manifest.parent} is still going ({len(going)} jobs pending or running): "
                               f"wait for it (python -m sae_mnist.cluster status --wait) or cancel it: "
                               f"scancel {' '.join(going)}")


def submit(workspace: Path, partition: str | None = None, dry_run: bool = False) -> Path | None:
    """Plan and submit; returns the run directory (None when nothing is missing)."""
    workspace = workspace.resolve()
    config, params = load_cluster_config(workspace / "params.yaml")
    if partition:
        config = config.model_copy(update={"partition": partition})
    sha = _committed_head(workspace)
    stages = stage_graph(workspace)  # the graph at `sha`: the workspace's tracked files are that commit's
    config.check_stages([s.address for s in stages], params.train.threads)  # before any work
    if not dry_run:
        slurm.require_slurm()
        require_shared_store(os.environ.get("MLFLOW_TRACKING_URI"))
    work_dir = (workspace / config.work_dir).resolve()
    if not dry_run:
        _refuse_while_a_run_is_going(work_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = work_dir / "runs" / f"{stamp}-{sha[:8]}"
    for sub in ("jobs", "logs", "state"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    cache = cache_dir(workspace, config)
    clones = work_dir / "clones" / sha
    print(f"planning at {sha[:8]}: restoring what the run-cache holds in a scratch clone ...", flush=True)
    missing = missing_stages(workspace, sha, stages, cache, config, clones, run_dir / "logs" / "plan.log")
    if not missing:
        print("nothing to submit: every stage's results are in the run-cache; "
              f"python -m sae_mnist.cluster collect --run {run_dir} restores them here")
        (run_dir / "run.json").write_text(json.dumps({"sha": sha, "workspace": str(workspace), "jobs": []}, indent=1))
        return None
    if not dry_run:
        # Once, before any job: fails fast when the store is down, and no two jobs race to create the experiment.
        tracking.init_store(params.tracking.experiment)
    parents = {s.address: [p for p in s.parents if p in missing] for s in stages}
    env = job_environment()
    jobs: list[dict] = []
    ids: dict[str, str] = {}
    try:
        for address in missing:
            resources = config.resources(address)
            script = run_dir / "jobs" / f"{_file_name(address)}.sh"
            script.write_text(job_script(address, workspace, run_dir, clones / _file_name(address), sha, cache, config))
            log = run_dir / "logs" / f"{_file_name(address)}-%j.log"
            options = _sbatch_options(config, address, log, resources.cpus, resources.time, resources.mem_mb,
                                      resources.gres)
            needs = [ids.get(p, f"<{p}>") for p in parents[address]]
            if needs:
                options.append("--dependency=afterok:" + ":".join(needs))
            if dry_run:
                print("sbatch " + " ".join(shlex.quote(o) for o in options) + f" {script}")
                continue
            ids[address] = slurm.sbatch(str(script), options, env)
            jobs.append({"name": address, "job_id": ids[address], "parents": parents[address],
                         "log": str(log).replace("%j", ids[address])})
        script = run_dir / "jobs" / f"{COLLECT}.sh"
        script.write_text(collect_script(workspace, run_dir))
        log = run_dir / "logs" / f"{COLLECT}-%j.log"
        options = _sbatch_options(config, COLLECT, log, 1, config.default.time)
        options.append("--dependency=afterok:" + ":".join(ids.get(a, f"<{a}>") for a in missing))
        if dry_run:
            print("sbatch " + " ".join(shlex.quote(o) for o in options) + f" {script}")
            print(f"dry run: {len(missing)} stage jobs and collect, not submitted; scripts in {run_dir / 'jobs'}")
            return run_dir
        ids[COLLECT] = slurm.sbatch(str(script), options, env)
        jobs.append({"name": COLLECT, "job_id": ids[COLLECT], "parents": missing,
                     "log": str(log).replace("%j", ids[COLLECT])})
    except BaseException:
        slurm.scancel(list(ids.values()), env)  # all or nothing: no half-submitted run keeps going
        raise
    manifest = {"sha": sha, "workspace": str(workspace), "submitted": stamp, "jobs": jobs}
    (run_dir / "run.json").write_text(json.dumps(manifest, indent=1))
    skipped = len(stages) - len(missing)
    print(f"submitted {len(missing)} stage jobs and collect ({skipped} stages come from the run-cache): "
          f"jobs {jobs[0]['job_id']}..{jobs[-1]['job_id']}, logs in {run_dir / 'logs'}")
    print(f"  follow it:  python -m sae_mnist.cluster status --run {run_dir}")
    print(f"  cancel it:  scancel {' '.join(ids.values())}")
    return run_dir


def latest_run(workspace: Path) -> Path:
    config, _ = load_cluster_config(workspace / "params.yaml")
    runs = sorted((workspace / config.work_dir / "runs").glob("*/run.json"))
    if not runs:
        raise ClusterError(f"no cluster run in {workspace / config.work_dir / 'runs'}: "
                           "python -m sae_mnist.cluster submit starts one")
    return runs[-1].parent


def job_table(run_dir: Path) -> list[dict]:
    """run.json's jobs, each with its `state` (and `reason`, `exit`) now."""
    manifest = json.loads((run_dir / "run.json").read_text())
    env = job_environment()
    states = slurm.job_states([j["job_id"] for j in manifest["jobs"]], env) if manifest["jobs"] else {}
    table = []
    for job in manifest["jobs"]:
        marker = run_dir / "state" / _file_name(job["name"])
        state, reason = states.get(job["job_id"], ("", ""))
        failed_marker = marker.with_name(marker.name + ".failed")
        exit_code = failed_marker.read_text().strip() if failed_marker.exists() else None
        if not state:  # Slurm has forgotten the job: its marker tells (a job killed outright leaves none)
            state = ("COMPLETED" if marker.with_name(marker.name + ".ok").exists()
                     else "FAILED" if exit_code else "UNKNOWN")
        elif state in TERMINAL_FAILURES and exit_code is None:
            exit_code = slurm.exit_code(job["job_id"], env)
        table.append({**job, "state": state, "reason": reason, "exit": exit_code})
    return table


def report(run_dir: Path, table: list[dict]) -> int:
    """Print the table and, for a failure, what failed, where its log is and what to do; return the exit status."""
    manifest = json.loads((run_dir / "run.json").read_text())
    width = max((len(j["name"]) for j in table), default=10)
    print(f"cluster run {run_dir} at {manifest['sha'][:8]}:")
    for job in table:
        print(f"  {job['state']:<11} {job['name']:<{width}}  job {job['job_id']:<7} {job['log']}")
    failed = [j for j in table if j["state"] in TERMINAL_FAILURES and j["reason"] != "DependencyNeverSatisfied"]
    cancelled = [j for j in table if j["reason"] == "DependencyNeverSatisfied"]
    for job in failed:
        print(f"{job['state']} {job['name']} (job {job['job_id']}, exit {job['exit']}): its log is {job['log']}")
    if cancelled:
        print(f"cancelled because of it: {', '.join(j['name'] for j in cancelled)}")
    if failed or cancelled:
        print("fix it, commit, and submit again: python -m sae_mnist.cluster submit (finished stages come back from "
              "the run-cache; only what is missing runs)")
        return 1
    if all(j["state"] == "COMPLETED" for j in table):
        print("done: every stage restored in the workspace; commit dvc.lock and the results")
        return 0
    return 3


def status(run_dir: Path, wait: bool = False, poll_s: float = 5.0) -> int:
    """0: the run finished; 1: a job failed (named, with its log); 3: still running (without `wait`)."""
    while True:
        table = job_table(run_dir)
        finished = all(j["state"] not in slurm.ACTIVE for j in table)
        if finished or not wait:
            return report(run_dir, table)
        time.sleep(poll_s)


def collect(run_dir: Path) -> None:
    """In the workspace: restore every stage from the run-cache, running none, and write dvc.lock once."""
    manifest = json.loads((run_dir / "run.json").read_text())
    workspace = Path(manifest["workspace"])
    uncached = uncached_outputs(workspace)
    # A collect run again by hand finds its own earlier writes: those may differ from the commit.
    sha = _committed_head(workspace, allowed={"dvc.lock", *uncached})
    if sha != manifest["sha"]:
        raise ClusterError(f"the workspace is at {sha[:8]}, not at the run's commit {manifest['sha'][:8]}: check out "
                           f"{manifest['sha'][:8]} and run python -m sae_mnist.cluster collect --run {run_dir}")
    env = job_environment(SAE_MNIST_RESTORE_ONLY="1", PYTHONPATH=str(workspace / "src"))
    if subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=workspace, env=env).returncode != 0:
        raise ClusterError("a stage could not be restored from the run-cache (named above): its job did not finish; "
                           f"python -m sae_mnist.cluster status --run {run_dir}")
    # Restored `cache: false` outputs may be links into the cache; git must see plain files.
    present = [p for p in uncached if (workspace / p).exists()]
    if present:
        subprocess.run([sys.executable, "-m", "dvc", "unprotect", *present], cwd=workspace, env=env, check=True,
                       capture_output=True)
    if subprocess.run([sys.executable, "-m", "sae_mnist.staleness", "--repo", str(workspace)], env=env).returncode:
        raise ClusterError("the workspace is not up to date after restoring (see above)")
    (run_dir / "state" / f"{COLLECT}.ok").touch()
    print("every stage restored from the run-cache and dvc.lock written: commit dvc.lock with the results "
          "(git status lists them)")
