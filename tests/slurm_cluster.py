"""A throwaway single-node Slurm cluster on this machine, for the cluster tests and the speed-up benchmark.

    python -m tests.slurm_cluster DIR      start one in DIR, print the SLURM_CONF to export, keep it up until Ctrl-C

It starts, as root and without systemd, a private `munged` (its own key and socket) and `slurmctld` and `slurmd`
with a minimal slurm.conf in DIR: this host as the one node with its real CPU count and memory, `cons_tres` so
that jobs share the node CPU by CPU, no accounting (poll with squeue and scontrol). Nothing is written to /etc or
/run, and the daemons are stopped by their pid files. Debian: apt-get install slurmctld slurmd slurm-client munge.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.tracking_server import free_port

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
HOW_TO_ENABLE = ("Slurm is not available: the cluster tests start a throwaway single-node cluster, which needs root "
                 "and Debian's packages (apt-get install slurmctld slurmd slurm-client munge)")


def unavailable_reason() -> str | None:
    """Why no throwaway cluster can start here, or None when one can."""
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).is_file()]
    if missing:
        return f"{HOW_TO_ENABLE}; missing: {', '.join(missing)}"
    if os.geteuid() != 0:
        return f"{HOW_TO_ENABLE}; this process is not root"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return f"{HOW_TO_ENABLE}; there is no munge user"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _node_line() -> str:
    """This host as slurmd sees it, memory rounded down a little (a node claiming more than it has is drained)."""
    fields = dict(f.split("=", 1) for f in subprocess.run([_binary("slurmd"), "-C"], capture_output=True, text=True,
                                                          check=True).stdout.split()
                  if "=" in f and not f.startswith("UpTime"))
    memory = int(int(fields["RealMemory"]) * 0.95)
    return (f"NodeName={fields['NodeName']} NodeAddr=127.0.0.1 CPUs={fields['CPUs']} RealMemory={memory} "
            f"State=UNKNOWN")


def _stop(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def slurm_cluster(root: Path | None = None) -> Iterator[dict[str, str]]:
    """Start the cluster; yield the environment variables a client needs (SLURM_CONF); stop it on exit."""
    root = Path(root or tempfile.mkdtemp(prefix="sae-mnist-slurm-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the munge user reaches its directory through it
    munge_dir = root / "munge"
    munge_dir.mkdir()
    munge_dir.chmod(0o755)  # munged requires its socket directory searchable by all (the key stays 0600)
    user = pwd.getpwnam("munge")
    os.chown(munge_dir, user.pw_uid, user.pw_gid)
    key, munge_socket = munge_dir / "munge.key", munge_dir / "munge.socket"
    as_munge = ["runuser", "-u", "munge", "--"]
    subprocess.run([*as_munge, _binary("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
    for path in ("state", "spool"):
        (root / path).mkdir()
    conf = root / "slurm.conf"
    host = socket.gethostname().split(".")[0]
    conf.write_text("\n".join([
        "ClusterName=saetest", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none", "ReturnToService=2",
        "MinJobAge=3600",  # no accounting: finished jobs stay visible to squeue and scontrol for an hour
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SchedulerType=sched/backfill",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        _node_line(), "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", "",
    ]))
    env = {"SLURM_CONF": str(conf)}
    daemon_env = {**os.environ, **env}
    try:
        subprocess.run([*as_munge, _binary("munged"), f"--key-file={key}", f"--socket={munge_socket}",
                        f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={munge_dir / 'munged.log'}",
                        f"--seed-file={munge_dir / 'munged.seed'}"], check=True, capture_output=True)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([_binary(daemon), "-f", str(conf)], env=daemon_env, check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while True:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=daemon_env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                break
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {log}\n{(root / log).read_text()[-2000:]}"
                                 for log in ("slurmctld.log", "slurmd.log") if (root / log).exists())
                raise RuntimeError(f"the Slurm node is {state.strip() or 'not reported'}, not idle, after 60 s:\n"
                                   f"{logs}")
            time.sleep(0.5)
        yield env
    finally:
        for pid_file in (root / "slurmd.pid", root / "slurmctld.pid", munge_dir / "munged.pid"):
            _stop(pid_file)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if reason := unavailable_reason():
        sys.exit(reason)
    # A background job ignores SIGINT: let SIGTERM (kill) stop the daemons too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with slurm_cluster(Path(sys.argv[1]) if len(sys.argv) > 1 else None) as environment:
        print(f"export SLURM_CONF={environment['SLURM_CONF']}   # Ctrl-C (or kill) stops the cluster", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
