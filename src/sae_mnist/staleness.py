"""`make check-results`: do the committed results still come from the code, data and parameters they name?

Runs `dvc status --json` in the repository and reads each stage's entries:

  changed deps      a dependency differs from what dvc.lock recorded: code or data (path -> status), or
                    parameters (params file -> {key: status}). Stale, except a dependency that is only missing
                    because it is another stage's output not in the workspace: a fresh clone has no models and
                    no data until `dvc pull`, which makes no result stale.
  changed outs      an output differs from dvc.lock: stale when modified (e.g. a report edited by hand); not
                    when it is only missing ("not in cache", "deleted").
  changed command,  the stage's definition changed since it ran: stale.
  changed checksum
  always changed    a stage that always re-runs: no sign of staleness.

`python -m sae_mnist.staleness [--repo DIR]` exits 0 when no stage is stale, 1 when one is (naming each stale
stage and what changed), 2 when dvc itself fails. A dependency directory that is only partly present (some of
its upstream outputs pulled, some not) reads as modified, hence stale: pull all of it to check.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MISSING = ("not in cache", "deleted")  # an output or dependency absent from the workspace, not changed
STALE_FLAGS = ("changed command", "changed checksum")


def dvc_status(repo: Path) -> dict:
    """`dvc status --json` of the pipeline in `repo`: {stage: [entry, ...]}, {} when everything is up to date."""
    result = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc status failed ({result.returncode}):\n{result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def _entries(status: dict, kind: str) -> dict[str, dict]:
    """Per stage, the merged {path: status} of its `kind` entries ("changed deps" or "changed outs")."""
    found: dict[str, dict] = {}
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, dict) and kind in entry:
                found.setdefault(stage, {}).update(entry[kind])
    return found


def changed_params(status: dict) -> list[str]:
    """The parameter keys that some stage read and that changed since dvc.lock recorded them, e.g.
    ["evaluate", "evaluate.batch_size"] (sorted, each once)."""
    return sorted({key for deps in _entries(status, "changed deps").values() for state in deps.values()
                   if isinstance(state, dict) for key in state})


def missing_outputs(status: dict) -> set[str]:
    """The paths of every stage output that is only missing from the workspace."""
    return {path for outs in _entries(status, "changed outs").values() for path, state in outs.items()
            if state in MISSING}


def _overlaps(path: str, others: set[str]) -> bool:
    """`path` is one of `others`, inside one, or holds one (a dependency on a directory of outputs)."""
    return any(path == o or path.startswith(o.rstrip("/") + "/") or o.startswith(path.rstrip("/") + "/")
               for o in others)


def stale_stages(status: dict) -> dict[str, dict[str, list[str]]]:
    """{stage: {kind: [what, ...]}} for every stale stage (module docstring), in `status` order; kinds are
    "changed deps", "changed params", "changed outs" and "changed definition", e.g.
    {"report": {"changed deps": ["src/sae_mnist/stats.py (modified)"], "changed params": ["params.yaml: seeds
    (modified)"]}}."""
    missing = missing_outputs(status)
    deps, outs = _entries(status, "changed deps"), _entries(status, "changed outs")
    stale: dict[str, dict[str, list[str]]] = {}
    for stage, entries in status.items():
        changes: dict[str, list[str]] = {}
        for path, state in deps.get(stage, {}).items():
            if isinstance(state, dict):  # a params file: {key: "modified" | "new" | "deleted"}
                changes.setdefault("changed params", []).extend(f"{path}: {k} ({v})" for k, v in state.items())
            elif not (state in MISSING and _overlaps(path, missing)):
                changes.setdefault("changed deps", []).append(f"{path} ({state})")
        modified = [f"{path} ({state})" for path, state in outs.get(stage, {}).items() if state not in MISSING]
        definition = [flag for flag in entries if flag in STALE_FLAGS]
        changes |= {kind: items for kind, items in (("changed outs", modified), ("changed definition", definition))
                    if items}
        if changes:
            stale[stage] = changes
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fail when a DVC stage's results are stale (module docstring).")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        status = dvc_status(args.repo)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 2
    stale = stale_stages(status)
    if not stale:
        print(f"results are current: no stage has changed code, data or parameters ({len(status)} stage(s) only "
              "miss outputs that `dvc pull` restores)" if status else "results are current: every stage is up to date")
        return 0
    print(f"stale results: {len(stale)} stage(s) changed since dvc.lock; `dvc repro` re-runs them", file=sys.stderr)
    for stage, changes in stale.items():
        print(f"  {stage}:", file=sys.stderr)
        print("\n".join(f"    {kind}: {', '.join(items)}" for kind, items in changes.items()), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
