"""What every stage entry point shares: expected failures end in one clear message, not a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from .errors import BenchmarkError


def _terminate(signum, frame):
    # Unwind like an exception, so MLflow marks the run FAILED and staging directories are removed.
    raise SystemExit(128 + signum)


def run_stage(stage: Callable, *args) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        stage(*args)
    except BenchmarkError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(2)
