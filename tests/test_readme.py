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


def full_summary() -> dict:
    """What results_block reads, by hand: one architecture with a primary at 0.1 and one other threshold."""
    primary = {"threshold": 0.1, "holm_p": 2.82e-05, "l0_range": [15.0, 150.0], "diff": 0.02391, "ci_low": 0.0235,
               "ci_high": 0.0243, "p": 1.4e-05}
    return {"smoke": False, "dataset": "mnist", "data_digest": "sha256:ab", "params_sha256": "cd",
            "git_commits": ["0123456789abcdef"], "primary": {"linear": primary},
            "sensitivity": {"linear": {"interpolation": "FVU interpolated linearly in log L0", "diff": 0.0241,
                                       "ci_low": 0.0237, "ci_high": 0.0246, "p": 0.0021}},
            "robustness": {"linear": {"sentence": "linear, robustness: the sign survives all 8 checks."}},
            "by_threshold": {"linear": {"0.2": {"l0_range": [9.53, 113.2], "diff": 0.0176, "ci_low": 0.0168,
                                                "ci_high": 0.0183, "p": 0.012},
                                        "0.1": {"l0_range": [12.0, 160.0], **primary}}},
            "checks": [{"ok": True, "check": "every probe converged (1 of 1)"},
                       {"ok": False, "check": "every run converged (2 of 3 frontier runs)"}]}


def test_the_results_doc_block_holds_provenance_sensitivity_every_threshold_and_the_checks():
    text = readme.results_block(full_summary())
    assert all(len(line) <= readme.WIDTH for line in text.splitlines() if not line.startswith("|"))
    flat = " ".join(text.split())  # the prose is wrapped at WIDTH
    assert "data digest `sha256:ab`, `params.yaml` SHA-256 `cd`, models trained at `0123456`." in flat
    assert ("- linear, sensitivity: with FVU interpolated linearly in log L0, the average KL − L1 is +0.0241 FVU (95% "
            "CI [+0.0237, +0.0246], paired p 0.002); the primary estimand: +0.0239.") in flat
    assert "- linear, robustness: the sign survives all 8 checks." in text
    rows = [line for line in text.splitlines() if line.startswith("| linear")]
    # thresholds in order; the primary's row reads the declared range and its Holm p, the other its own range
    assert rows == ["| linear (primary) | 0.1 | 15 – 150 | +0.0239 | [+0.0235, +0.0243] | < 0.001 | < 0.001 |",
                    "| linear | 0.2 | 9.53 – 113 | +0.0176 | [+0.0168, +0.0183] | 0.012 | – |"]
    assert text.endswith("- ✓ every probe converged (1 of 1)\n- ✗ every run converged (2 of 3 frontier runs)")
    assert readme.results_block({**full_summary(), "smoke": True}).startswith("> Smoke run: not for citing.")


def test_the_committed_results_doc_shows_the_committed_results():
    committed = json.loads((REPO / "reports" / "summary.json").read_text())
    text = (REPO / "docs" / "results.md").read_text()
    assert readme.updated(text, committed, readme.results_block) == text, \
        "docs/results.md's results block is stale: run `make readme`"
