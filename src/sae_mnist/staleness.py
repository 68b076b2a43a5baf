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
stage and what changed) or when a committed output names a "-dirty" commit (made by uncommitted code, so no commit
can reproduce it), 2 when dvc itself fails. A dependency directory that is only partly present (some of
its upstream outputs pulled, some not) reads as modified, hence stale: pull all of it to check.

`python -m sae_mnist.staleness --relock-code` records in dvc.lock the code of every stage that is stale only
because code it runs changed (`dvc commit -f` of those stages, which DVC refuses in a checkout without their data
and upstream outputs). Only after showing the change computes the same numbers (docs/pipeline.md: "Moving code
without re-running"): it re-runs nothing. A stage whose parameters, data, definition or outputs changed is
refused, unless `--with-outputs` names outputs edited in git on purpose (then they are re-hashed too).
"""

from __future__ import annotations

import argparse
import contextlib
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


def code_only(changes: dict[str, list[str]], tracked: set[str], with_outputs: bool) -> bool:
    """Whether a stale stage's changes (stale_stages) are all to code (git-tracked .py files) and, with
    `with_outputs`, to outputs kept in git (files or directories of them)."""
    def paths(kind: str) -> list[str]:
        return [item.rsplit(" (", 1)[0] for item in changes.get(kind, [])]

    allowed = {"changed deps", "changed outs"} if with_outputs else {"changed deps"}
    return (set(changes) <= allowed and all(p.endswith(".py") and p in tracked for p in paths("changed deps"))
            and all(p in tracked or any(t.startswith(p.rstrip("/") + "/") for t in tracked)
                    for p in paths("changed outs")))


def relock_code(repo: Path, with_outputs: bool = False, only: list[str] | None = None) -> list[str]:
    """`dvc commit -f` (missing data and outputs allowed) of every stage stale only in git-tracked files; returns
    the stages re-locked. Raises RuntimeError naming the stages that changed otherwise, before touching any.
    `only`: glob patterns of the stages to consider (e.g. ["lr_select@*"] while a regeneration leaves others stale
    for other reasons); the rest are left as they are."""
    from fnmatch import fnmatch

    from dvc.repo import Repo

    stale = stale_stages(dvc_status(repo))
    if only is not None:
        stale = {stage: changes for stage, changes in stale.items() if any(fnmatch(stage, p) for p in only)}
    tracked = set(subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True,
                                 check=True).stdout.split("\n"))
    refused = {stage: changes for stage, changes in stale.items() if not code_only(changes, tracked, with_outputs)}
    if refused:
        raise RuntimeError("not only code changed; `dvc repro` these stages instead: " + "; ".join(
            f"{stage}: " + "; ".join(f"{kind} {', '.join(items)}" for kind, items in changes.items())
            for stage, changes in refused.items()))
    with contextlib.chdir(repo), Repo(".") as dvc_repo, dvc_repo.lock:  # DVC resolves paths against the cwd
        stages = [stage for stage in dvc_repo.index.stages if stage.addressing in stale]
        for stage in stages:
            # What `dvc commit -f` does, without the run cache, which would hash the missing data and upstream
            # outputs: present deps and outputs re-hashed, missing ones keep what dvc.lock recorded.
            stage.save(allow_missing=True, run_cache=False)
        for dvcfile in {stage.dvcfile.path: stage.dvcfile for stage in stages}.values():
            dvcfile.dump_stages([s for s in stages if s.dvcfile.path == dvcfile.path], update_pipeline=False)
    return [stage.addressing for stage in stages]


def dirty_results(repo: Path) -> list[str]:
    """The git-tracked outputs of the pipeline (dvc.lock's outs) that name a "-dirty" commit: made by code that no
    commit holds (provenance.git_commit), so `make verify` cannot check out what made them."""
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text()) if (repo / "dvc.lock").exists() else {}
    outs = sorted({out["path"] for stage in (lock or {}).get("stages", {}).values() for out in stage.get("outs", [])})
    if not outs:
        return []
    found = subprocess.run(["git", "grep", "-l", "-E", "[0-9a-f]{40}-dirty", "--", *outs], cwd=repo,
                           capture_output=True, text=True)
    return found.stdout.split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fail when a DVC stage's results are stale (module docstring).")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: here)")
    parser.add_argument("--relock-code", action="store_true",
                        help="record in dvc.lock the changed code of stages stale only in code (module docstring)")
    parser.add_argument("--with-outputs", action="store_true",
                        help="with --relock-code: also outputs kept in git and edited on purpose")
    parser.add_argument("--stages", nargs="+", metavar="PATTERN",
                        help="with --relock-code: only the stages matching these glob patterns, e.g. 'lr_select@*'")
    args = parser.parse_args(argv)
    try:
        if args.relock_code:
            relocked = relock_code(args.repo, args.with_outputs, args.stages)
            print(f"re-locked {len(relocked)} stage(s) whose code changed: {', '.join(relocked) or 'none'}")
            return 0
        status = dvc_status(args.repo)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 2
    stale = stale_stages(status)
    if dirty := dirty_results(args.repo):
        print("results made by uncommitted code (their git_commit ends in -dirty): commit the code, then re-run the "
              "stage that writes each (`dvc repro -f -s STAGE`):\n  " + "\n  ".join(dirty), file=sys.stderr)
        return 1
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
