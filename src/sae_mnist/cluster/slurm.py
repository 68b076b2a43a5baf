"""The Slurm commands the submitter needs: sbatch, and job states from squeue and scontrol.

Plain commands, no accounting database: `sacct` is not there on many small clusters, so states come from
`squeue -t all`, which shows finished jobs for MinJobAge seconds (300 by default); after that the run's own
marker files tell (see run.py).
"""

from __future__ import annotations

import shutil
import subprocess

from .config import ClusterError

ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "RESIZING",
          "STAGE_OUT", "SIGNALING", "REQUEUE_FED", "SPECIAL_EXIT", "STOPPED", "RESV_DEL_HOLD")


def require_slurm() -> None:
    missing = [c for c in ("sbatch", "squeue", "scancel") if shutil.which(c) is None]
    if missing:
        raise ClusterError(f"Slurm's client commands are not on PATH ({', '.join(missing)} missing): run this on a "
                           "login node of the cluster, or install slurm-client and point SLURM_CONF at its slurm.conf")


def sbatch(script: str, options: list[str], env: dict[str, str]) -> str:
    """Submit `script` (a path); return the job id."""
    result = subprocess.run(["sbatch", "--parsable", *options, script], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise ClusterError(f"sbatch refused {script}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip().split(";", 1)[0]


def scancel(job_ids: list[str], env: dict[str, str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, env=env)


def job_states(job_ids: list[str], env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """{job id: (state, reason)} for the jobs Slurm still knows; jobs purged since are left out."""
    result = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%r"], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise ClusterError(f"squeue failed: {result.stderr.strip()}")
    wanted = set(job_ids)
    states = {}
    for line in result.stdout.splitlines():
        job_id, state, reason = (line.split("|") + ["", ""])[:3]
        if job_id.strip() in wanted:
            states[job_id.strip()] = (state.strip(), reason.strip())
    return states


def job_fields(job_id: str, env: dict[str, str]) -> dict[str, str]:
    """`scontrol show job` as {field: value} (JobState, ExitCode, StartTime, ...); {} once Slurm has forgotten it."""
    result = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, env=env)
    return dict(field.split("=", 1) for field in result.stdout.split() if "=" in field)


def exit_code(job_id: str, env: dict[str, str]) -> str | None:
    """The job's exit code as scontrol reports it (`1:0` is exit 1, signal 0); None once Slurm has forgotten it."""
    return job_fields(job_id, env).get("ExitCode")
