"""The report's comparison with the reference implementation (report/sections/reference.py), by hand."""

from __future__ import annotations

import pytest

from sae_mnist.report.sections import reference as report_reference

RECIPE = {"center_input": True, "lr_hold": 0.0}
SETTINGS = {"epochs": 40, "batch_size": 256, "lr": 0.003, "n_train": 60000, "hidden": 256, "recipe": RECIPE}


def reference_file(**changes) -> dict:
    # SAELens points (10, 0.2) and (40, 0.05): read at L0 20 it is sqrt(0.2 * 0.05) = 0.1 (halfway in log-log).
    return {"git_commit": "abcdef0123", "versions": {"sae-lens": "6.54.12"}, "seed": 0, "active_threshold": 0.1,
            "n_train": 60000, "hidden": 256, "batch_size": 256, "steps": 9400, "lr": 0.003, "epochs": 40,
            "ours": {"recipe": RECIPE}, "saelens": {"points": [{"l0": 40.0, "fvu": 0.05}, {"l0": 10.0, "fvu": 0.2}]},
            **changes}


def l1_point(seed: int, l0: float, fvu: float) -> dict:
    return {"seed": seed, "metrics": {"l0_at_0.1": l0, "fvu_at_0.1": fvu}}


def test_ours_is_read_against_the_reference_at_matched_l0_on_its_seed():
    points = [l1_point(0, 20.0, 0.101), l1_point(0, 100.0, 0.01), l1_point(1, 20.0, 0.5)]  # seed 1: not compared
    md, (ok, text) = report_reference.section(reference_file(), points, 0.1, SETTINGS)
    assert ok and "at most 2% above its FVU at every matched L0 (1 point, worst +1.0%" in text
    assert "| 20.0 | 0.1010 | 0.1000 | +1.0% |" in md and "| 100.0 | 0.0100 | outside its L0 range | – |" in md
    assert "other training settings" not in md
    md, (ok, text) = report_reference.section(reference_file(), [l1_point(0, 20.0, 0.103)], 0.1, SETTINGS)
    assert not ok and "worst +3.0%" in text


def test_a_reference_made_under_other_settings_is_named_and_fails_the_check():
    stale = reference_file(epochs=20, ours={"recipe": {**RECIPE, "lr_hold": 0.2}})
    assert report_reference.differences(stale, SETTINGS) == ["epochs 20 (this run: 40)",
                                                             "recipe.lr_hold 0.2 (this run: 0.0)"]
    md, (ok, text) = report_reference.section(stale, [l1_point(0, 20.0, 0.1)], 0.1, SETTINGS)
    assert not ok and "not like for like: epochs 20 (this run: 40)" in text
    assert "Re-run `python benchmarks/reference_sae.py`" in md


def test_the_reference_is_drawn_on_its_own_threshold_only():
    drawn = report_reference.drawn(reference_file(), 0.1)
    assert drawn["l0"] == [10.0, 40.0] and drawn["fvu"] == pytest.approx([0.2, 0.05])
    assert report_reference.drawn(reference_file(), 0.2) is None
    assert report_reference.section(reference_file(), [l1_point(0, 20.0, 0.1)], 0.2, SETTINGS)[1] is None


def test_nothing_to_compare_when_no_point_lies_in_the_reference_range():
    md, check = report_reference.section(reference_file(), [l1_point(0, 500.0, 0.01)], 0.1, SETTINGS)
    assert check is None and "nothing to compare" in md
