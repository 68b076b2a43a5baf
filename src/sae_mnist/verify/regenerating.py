"""Which results `make verify` checks while HEAD's are being regenerated.

A regeneration under changed code or params runs in committed parts over several sessions (docs/reproducibility.md):
between its first commit and its last, some stages are stale at HEAD, and HEAD's code would not retrain the points
of the result files it holds. The results a reader cites are then those of the newest commit whose results were
current (no stale stage), with that commit's own code and params. `newest_current` finds it by walking HEAD's
first-parent history, each commit checked out in a scratch worktree; `checkout` is that worktree.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..staleness import dvc_status, stale_stages

MAX_WALK = 200  # commits looked at before giving up: a regeneration spans tens of commits, not hundreds
VERIFY_PACKAGE = Path("src/sae_mnist/verify")  # a commit older than `make verify` cannot be verified by itself


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}")
    return result.stdout.strip()


def stale(tree: Path) -> dict[str, dict[str, list[str]]]:
    """The stale stages of the checkout at `tree` (outputs only missing from it do not count)."""
    return stale_stages(dvc_status(tree))


def has_uncommitted_changes(root: Path) -> bool:
    """Tracked files changed in the working tree: what the reader checks is then the working tree itself."""
    return bool(git(root, "status", "--porcelain", "--untracked-files=no"))


@contextmanager
def checkout(root: Path, commit: str) -> Iterator[Path]:
    """`commit` checked out in a scratch git worktree of `root`, removed afterwards (root's files are untouched)."""
    with tempfile.TemporaryDirectory(prefix="sae-mnist-results-") as scratch:
        tree = Path(scratch) / "tree"
        git(root, "worktree", "add", "--quiet", "--detach", str(tree), commit)
        try:
            yield tree
        finally:
            git(root, "worktree", "remove", "--force", str(tree))


def newest_current(root: Path, max_walk: int = MAX_WALK) -> str | None:
    """The newest commit before HEAD, on HEAD's first-parent line, whose results were current and which has `make
    verify`; None when none of the last `max_walk` commits qualifies (or the history is too shallow to hold one)."""
    for commit in git(root, "rev-list", "--first-parent", f"--max-count={max_walk}", "HEAD").split()[1:]:
        with checkout(root, commit) as tree:
            if (tree / VERIFY_PACKAGE).is_dir() and not stale(tree):
                return commit
    return None
