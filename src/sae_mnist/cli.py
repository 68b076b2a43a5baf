"""What every stage entry point shares: expected failures end in one clear message, not a traceback."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from .errors import BenchmarkError


def _terminate(signum, frame):
    # Unwind like an exception, so MLflow marks the run FAILED and staging directories are removed.
    raise SystemExit(128 + signum)


def _refuse_outside_its_job() -> None:
    """A cluster job, or the final restore, must never run a stage DVC could not restore from its run-cache.

    `dvc repro` silently runs a stage whose run-cache entry is missing. In a cluster job for stage X
    (SAE_MNIST_ONLY_STAGE=X) that would redo another job's work; in the final restore (SAE_MNIST_RESTORE_ONLY=1)
    it would train on the login node. DVC names the stage it runs in $DVC_STAGE.
    """
    running = os.environ.get("DVC_STAGE", "this stage")
    if os.environ.get("SAE_MNIST_RESTORE_ONLY") == "1":
        sys.exit(f"ERROR: {running} has no run-cache entry, so it cannot be restored: its cluster job did not finish "
                 "(python -m sae_mnist.cluster status names it); resubmit with python -m sae_mnist.cluster submit")
    only = os.environ.get("SAE_MNIST_ONLY_STAGE")
    if only and running != only:
        sys.exit(f"ERROR: the cluster job for {only} would run {running}, which has no run-cache entry: its job did "
                 "not finish (python -m sae_mnist.cluster status names it); resubmit with "
                 "python -m sae_mnist.cluster submit")


def run_stage(stage: Callable, *args) -> None:
    _refuse_outside_its_job()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        stage(*args)
    except BenchmarkError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(2)
