"""No decision code reads the test split (docs/design/verdict-protocol.md, section 1): every choice is made on the
validation split, and models train on the fit split. Read from the source: every `load_split` call of a decision
module names `fit` or `validation`, every `train_members` call trains on `fit`, and no other string names a split
that holds test or validation images for training."""

from __future__ import annotations

import ast
import pytest

from tests.conftest import REPO

# The code that chooses: the learning rate (lr_select), the budget rule, the probe's C (probes.py sees arrays only:
# its callers pass validation codes, which evaluate and baselines load), and the studies that check choices (the
# recipe ablation, the robustness of the verdict's sign to budget and rate).
DECISION_MODULES = ["src/sae_mnist/stages/lr_select.py", "src/sae_mnist/selection.py",
                    "benchmarks/budget_by_verdict.py", "src/sae_mnist/probes.py", "src/sae_mnist/stages/ablation.py",
                    "src/sae_mnist/stages/robustness.py"]
# Every stage that trains models: they train on the fit split, never on the validation images.
TRAINING_MODULES = ["src/sae_mnist/stages/train.py", "src/sae_mnist/stages/wide.py",
                    "src/sae_mnist/stages/sparse_end.py", *DECISION_MODULES[-2:]]
ALLOWED = {"load_split": {"fit", "validation"}, "train_members": {"fit"}}


def split_arguments(tree: ast.AST) -> list[tuple[str, ast.expr | None, int]]:
    """(function, the split argument or None when absent, line) of every load_split and train_members call."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "load_split":
                found.append((name, node.args[1] if len(node.args) > 1 else None, node.lineno))
            elif name == "train_members":
                split = next((k.value for k in node.keywords if k.arg == "split"), None)
                found.append((name, split, node.lineno))
    return found


def violations(source: str) -> list[str]:
    problems = []
    for name, split, line in split_arguments(ast.parse(source)):
        if not (isinstance(split, ast.Constant) and split.value in ALLOWED[name]):
            shown = ast.unparse(split) if split is not None else "its default"
            problems.append(f"line {line}: {name} with split {shown}, not one of {sorted(ALLOWED[name])}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in ("test", "train"):
            problems.append(f"line {node.lineno}: the string {node.value!r}")
    return problems


@pytest.mark.parametrize("module", DECISION_MODULES)
def test_decision_code_reads_only_fit_and_validation(module):
    assert violations((REPO / module).read_text()) == []


@pytest.mark.parametrize("module", TRAINING_MODULES)
def test_every_model_trains_on_the_fit_split(module):
    calls = [(split, line) for name, split, line in split_arguments(ast.parse((REPO / module).read_text()))
             if name == "train_members"]
    assert calls and all(isinstance(split, ast.Constant) and split.value == "fit" for split, _ in calls), calls


def test_the_check_catches_a_decision_that_reads_the_test_split():
    lr_select = (REPO / "src/sae_mnist/stages/lr_select.py").read_text()
    assert split_arguments(ast.parse(lr_select)), "lr_select loads its data: the check must see those calls"
    leaked = lr_select.replace('load_split(data_dir, "validation"', 'load_split(data_dir, "test"', 1)
    assert leaked != lr_select
    assert "load_split with split 'test', not one of ['fit', 'validation']" in violations(leaked)[0]
    default = lr_select.replace(', split="fit")', ")", 1)
    assert default != lr_select and violations(default) == [
        f"line {default.splitlines().index(next(l for l in default.splitlines() if 'train_members(' in l)) + 1}: "
        "train_members with split its default, not one of ['fit']"]
    assert violations('x = "test"\n') == ["line 1: the string 'test'"]
