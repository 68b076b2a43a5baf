"""dvc.yaml lists, for every stage, each module of the package that its script imports, directly or through
other modules, except those that compute none of its numbers (NOT_NUMBERS): a change to any code that computes a
stage's outputs makes `dvc repro` re-run that stage, and a change to tracking, CLI or provenance code re-runs
nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The source file of module `name` if it is part of this repository's package, else None."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports(path: Path, package: list[str]) -> set[str]:
    """Every module `path` imports anywhere in its body (also inside functions); relative ones resolved
    against `package`, and `from a import b` counted as module a.b where b is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names if module_file(f"{module}.{alias.name}")}
    return {m for m in found if module_file(m)}


def closure(script: Path) -> set[Path]:
    """The package's source files that `script` runs: its imports, theirs, and so on."""
    todo, seen = [(script, [])], set()
    while todo:
        path, package = todo.pop()
        for name in imports(path, package):
            file = module_file(name)
            if file not in seen:
                seen.add(file)
                parts = name.split(".")
                todo.append((file, parts if file.name == "__init__.py" else parts[:-1]))
    return {f for f in seen if f.name != "__init__.py"}  # package markers, no code


# Imported by stages, but none of their numbers depend on them: argument parsing, error classes, MLflow logging,
# the provenance record (commit, versions) written beside the numbers.
NOT_NUMBERS = {"src/sae_mnist/cli.py", "src/sae_mnist/errors.py", "src/sae_mnist/tracking.py",
               "src/sae_mnist/provenance.py"}

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_the_closure_follows_relative_and_function_level_imports():
    files = {f.relative_to(REPO).as_posix() for f in closure(REPO / "pipeline" / "train.py")}
    # pipeline/train.py -> stages/train.py -> (inside run) ..members -> (inside train_members) .tracking, .stacked
    # -> .models
    assert {"src/sae_mnist/stages/train.py", "src/sae_mnist/members.py", "src/sae_mnist/tracking.py",
            "src/sae_mnist/stacked.py", "src/sae_mnist/models.py", "src/sae_mnist/params.py"} <= files


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_depends_on_the_code_that_computes_its_numbers_and_no_other(stage):
    definition = STAGES[stage].get("do", STAGES[stage])
    script = re.search(r"python (pipeline/\S+\.py)", definition["cmd"]).group(1)
    code_deps = {d for d in definition["deps"] if d.endswith(".py")}
    needed = ({f.relative_to(REPO).as_posix() for f in closure(REPO / script)} | {script}) - NOT_NUMBERS
    assert needed <= code_deps, f"dvc.yaml stage {stage} misses deps: {sorted(needed - code_deps)}"
    assert code_deps <= needed, f"dvc.yaml stage {stage} depends on code it does not run: {sorted(code_deps - needed)}"


def test_report_figures_download_code_and_an_unused_params_section_rerun_no_train_or_evaluate_stage(tmp_path):
    """What a stage's numbers do not depend on leaves it up to date: `dvc status` of a copy of this checkout, with
    a report-only figure restyled, the download code changed and the `cluster:` section (read by no stage) edited."""
    from sae_mnist import staleness
    from sae_mnist.quick import copy_repo

    repo = copy_repo(REPO, tmp_path / "repo")

    def stale() -> dict:
        return staleness.stale_stages(staleness.dvc_status(repo))

    def computing(changes: dict) -> dict:
        return {stage: c for stage, c in changes.items() if stage.startswith(("train@", "evaluate@"))}

    before = stale()
    edits = {"src/sae_mnist/report/figures.py": ("figsize=(6.5, 3.5)", "figsize=(7.0, 4.0)"),
             "src/sae_mnist/download.py": ("READ_DEADLINE_FACTOR = 10", "READ_DEADLINE_FACTOR = 12"),
             "params.yaml": ("  partition: null", "  partition: cpu")}
    for path, (old, new) in edits.items():
        text = (repo / path).read_text()
        assert old in text, f"{path} no longer holds {old!r}: update this test's edit"
        (repo / path).write_text(text.replace(old, new, 1))
    after = stale()
    assert computing(after) == computing(before)
    # each edit is seen by the stage that runs it
    assert "src/sae_mnist/report/figures.py (modified)" in after["report"]["changed deps"]
    assert "src/sae_mnist/download.py (modified)" in after["download"]["changed deps"]
