"""`python -m sae_mnist.cluster {submit,status,collect}`: see sae_mnist.cluster."""

import argparse
import sys
from pathlib import Path

from sae_mnist.cluster import run
from sae_mnist.errors import BenchmarkError

parser = argparse.ArgumentParser(prog="python -m sae_mnist.cluster", description=__doc__)
commands = parser.add_subparsers(dest="command", required=True)
submit = commands.add_parser("submit", help="submit every stage that is missing as a Slurm job, then collect")
submit.add_argument("--partition", help="the Slurm partition (default: params.yaml's cluster.partition)")
submit.add_argument("--dry-run", action="store_true", help="plan and print the sbatch commands; submit nothing")
status = commands.add_parser("status", help="each job's state and log; a failed job by name")
status.add_argument("--wait", action="store_true", help="poll until every job has finished")
status.add_argument("--poll", type=float, default=10.0, metavar="SECONDS", help="how often --wait asks Slurm")
collect = commands.add_parser("collect", help="restore every stage in the workspace from the run-cache")
for sub in (submit, status, collect):
    sub.add_argument("--repo", type=Path, default=Path("."), help="the workspace (default: here)")
for sub in (status, collect):
    sub.add_argument("--run", type=Path, help="the run's directory (default: the latest under cluster.work_dir)")
args = parser.parse_args()


def main() -> None:
    if args.command == "submit":
        run.submit(args.repo, partition=args.partition, dry_run=args.dry_run)
        return
    run_dir = args.run or run.latest_run(args.repo.resolve())
    if args.command == "status":
        raise SystemExit(run.status(run_dir, wait=args.wait, poll_s=args.poll))
    run.collect(run_dir)


try:
    main()
except BenchmarkError as e:  # expected failures: one clear message, exit 2 (1 is a failed job, see `status`)
    print(f"ERROR: {e}", file=sys.stderr)
    sys.exit(2)
