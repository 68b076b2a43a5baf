"""What a cluster run must do: DVC's stage graph, the clone every job works in, and the stages still missing.

A job works in its own clone of the workspace at the submitted commit, linked to one shared DVC cache, so that
outputs and DVC's run-cache are shared while DVC's per-repository locks are not. What is missing is found by
DVC's own logic: a scratch clone restores every stage it can from the run-cache, refusing to run any
(SAE_MNIST_RESTORE_ONLY), and `dvc status` lists the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import ClusterConfig, ClusterError


@dataclass(frozen=True)
class Stage:
    address: str          # as `dvc repro` takes it: train@linear-0
    parents: tuple[str, ...]  # the stages whose outputs it depends on


def stage_graph(root: Path) -> list[Stage]:
    """Every stage with a command, upstream first (a topological order of DVC's expanded DAG)."""
    import networkx as nx
    from dvc.repo import Repo

    # A stage's address is relative to the working directory (a stage in another dvc.yaml is dir/dvc.yaml:name).
    with contextlib.chdir(root), Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        order = [s for s in reversed(list(nx.topological_sort(graph))) if s.cmd]
        return [Stage(s.addressing, tuple(sorted(p.addressing for p in graph.successors(s) if p.cmd))) for s in order]


def uncached_outputs(root: Path) -> list[str]:
    """The outputs DVC does not keep in its cache (`cache: false`), as paths relative to `root`."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return sorted(out.def_path for stage in repo.index.stages for out in stage.outs if not out.use_cache)


def with_descendants(stages: list[Stage], seeds: set[str]) -> list[str]:
    """`seeds` and every stage downstream of one, upstream first."""
    chosen = set(seeds)
    for stage in stages:  # upstream first: a stage's parents are decided before it
        if chosen & set(stage.parents):
            chosen.add(stage.address)
    return [s.address for s in stages if s.address in chosen]


def job_environment(**extra: str) -> dict[str, str]:
    """This environment for DVC and stage processes: this interpreter's tools first, no DVC variables left over."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_") and not k.startswith("SAE_MNIST_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def cache_dir(workspace: Path, config: ClusterConfig) -> Path:
    """The shared DVC cache: the configured one, else the workspace's own (whatever it has serves every job)."""
    if config.cache_dir:
        return (workspace / config.cache_dir).resolve()
    from dvc.repo import Repo

    with Repo(str(workspace)) as repo:
        return Path(repo.cache.local_cache_dir).resolve()


def clone_commands(workspace: Path, clone: Path, sha: str, cache: Path, config: ClusterConfig,
                   checkout: str | None) -> str:
    """Bash that makes (or reuses) `clone` at `sha`, linked to the shared cache, with `checkout`'s inputs in place.

    A clone left by a failed job is reused: its stage's checkpoints let a training job resume.
    """
    q = shlex.quote
    lines = [
        f"clone={q(str(clone))}",
        'if [ ! -d "$clone/.git" ]; then',
        '  mkdir -p "$(dirname "$clone")"',
        f'  git clone --quiet --shared --no-checkout {q(str(workspace))} "$clone"',
        "fi",
        'cd "$clone"',
        f"git -c advice.detachedHead=false checkout --quiet --force --detach {sha}",
        f"dvc cache dir --local {q(str(cache))}",
        f"dvc config --local cache.type {','.join(config.link_types)}",
    ]
    if config.shared_group:
        lines.append("dvc config --local cache.shared group")
    # The committed outputs of up-to-date stages, from the shared cache; what is not there is left to `dvc repro`.
    target = f" --with-deps {q(checkout)}" if checkout else ""
    lines.append(f"dvc checkout --quiet --force --allow-missing{target}")
    return "\n".join(lines)


def missing_stages(workspace: Path, sha: str, stages: list[Stage], cache: Path, config: ClusterConfig, clones: Path,
                   log: Path) -> list[str]:
    """Upstream first, the stages (of `stages`, the graph at `sha`) whose results no job has produced yet."""
    scratch = clones / ".plan"
    shutil.rmtree(scratch, ignore_errors=True)
    script = "\n".join([
        "set -euo pipefail",
        clone_commands(workspace, scratch, sha, cache, config, checkout=None),
        # Restores every stage it can and runs none: a stage without a run-cache entry fails, its dependents skip.
        f"SAE_MNIST_RESTORE_ONLY=1 PYTHONPATH={shlex.quote(str(scratch / 'src'))} dvc repro --keep-going || true",
    ])
    try:
        with open(log, "w") as out:
            result = subprocess.run(["bash", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                                    env=job_environment())
        if result.returncode != 0:
            raise ClusterError(f"planning failed in a scratch clone at {sha[:8]}: see {log}")
        status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=scratch, capture_output=True,
                                text=True, env=job_environment())
        if status.returncode != 0:
            raise ClusterError(f"dvc status failed in the scratch clone:\n{status.stderr.strip()}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return with_descendants(stages, set(json.loads(status.stdout or "{}")))
