"""What every stage entry point shares: expected failures end in one clear message, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import BenchmarkError


def run_stage(stage: Callable, *args) -> None:
    try:
        stage(*args)
    except BenchmarkError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(2)
