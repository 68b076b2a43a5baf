"""The README's results block (sae_mnist.report.readme): generated from the committed summary, never by hand."""

from __future__ import annotations

import json

import pytest

from sae_mnist.report import readme
from tests.conftest import REPO


def summary(smoke: bool = False) -> dict:
    primary = {"diff": 0.02391, "ci_low": 0.0235, "ci_high": 0.0243, "holm_p": 2.82e-05, "l0_range": [15.0, 150.0],
               "seeds": [0, 1, 2]}
    return {"smoke": smoke, "primary": {"linear": primary, "conv": {"threshold": 0.1, "holm_p": float("nan")}},
            "verdicts": {"linear": "linear: L1 reconstructs better. " * 6, "conv": "conv: no overlap."}}


def test_the_block_tabulates_each_primary_estimand_and_wraps_each_verdict():
    lines = readme.block(summary()).splitlines()
    assert lines[2] == "| linear | +0.0239 | [+0.0235, +0.0243] | 2.82e-05 | 15–150 | 3 |"
    assert lines[3] == "| conv | no overlap | – | – | – | – |"
    verdict = [line for line in lines if line.startswith(("- linear", "  "))]
    assert len(verdict) == 2 and all(len(line) <= readme.WIDTH for line in verdict)
    assert " ".join(line[2:] for line in verdict) == ("linear: L1 reconstructs better. " * 6).strip()
    assert readme.block(summary(smoke=True)).startswith("> Smoke run: not for citing.")


def test_only_the_text_between_the_markers_is_replaced():
    text = f"intro\n{readme.BEGIN}\nold numbers\n{readme.END}\nafter\n"
    new = readme.updated(text, summary())
    assert new.startswith(f"intro\n{readme.BEGIN}\n| architecture |") and new.endswith(f"\n{readme.END}\nafter\n")
    assert readme.updated(new, summary()) == new
    with pytest.raises(ValueError, match="marker lines"):
        readme.updated("no markers\n", summary())


def test_the_committed_readme_shows_the_committed_results():
    committed = json.loads((REPO / "reports" / "summary.json").read_text())
    text = (REPO / "README.md").read_text()
    assert readme.updated(text, committed) == text, "README.md's results block is stale: run `make readme`"
