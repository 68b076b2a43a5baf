"""The report's comparison with the reference implementation (report/sections/reference.py), by hand: every
reference file (one a seed) against our L1 points of its seed, the check read inside the declared range."""

from __future__ import annotations

import pytest

from sae_mnist.report.sections import reference as report_reference

RECIPE = {"center_input": True, "lr_hold": 0.0}
SETTINGS = {"epochs": 40, "batch_size": 256, "lr": 0.009, "n_train": 50000, "hidden": 256, "recipe": RECIPE}
DECLARED = (15.0, 150.0)


def reference_file(**changes) -> dict:
    # SAELens points (10, 0.2) and (40, 0.05): log FVU linear in log L0 with slope -1, so FVU = 2 / L0 between
    # them: 0.1 at L0 20, 0.1667 at L0 12.
    return {"git_commit": "abcdef0123", "versions": {"sae-lens": "6.54.12"}, "seed": 0, "active_threshold": 0.1,
            "n_train": 50000, "train_split": "fit", "hidden": 256, "batch_size": 256, "steps": 7840,
            "lr": 0.009000000000000001, "epochs": 40, "ours": {"recipe": RECIPE},
            "saelens": {"points": [{"l0": 40.0, "fvu": 0.05}, {"l0": 10.0, "fvu": 0.2}]}, **changes}


def l1_point(seed: int, l0: float, fvu: float) -> dict:
    return {"seed": seed, "metrics": {"l0_at_0.1": l0, "fvu_at_0.1": fvu}}


def two_files(**seed1) -> dict[str, dict]:
    return {"benchmarks/reference_sae_lr_select.json": reference_file(),
            "benchmarks/reference_sae_lr_select_seed1.json": reference_file(seed=1, **seed1)}


def test_each_file_is_read_against_its_seed_and_only_the_declared_range_counts():
    # Seed 0: L0 12 is matched (0.2 / 0.16667 - 1 = +20%) but below the declared range, so it does not count; L0 20
    # is +0.5%; L0 100 lies beyond SAELens's points. Seed 1: L0 20 at 0.0995, -0.5%. Both within 1%: ✓.
    points = [l1_point(0, 12.0, 0.2), l1_point(0, 20.0, 0.1005), l1_point(0, 100.0, 0.01), l1_point(1, 20.0, 0.0995)]
    md, (ok, text) = report_reference.section(two_files(), points, 0.1, SETTINGS, DECLARED)
    assert ok and text == ("linear L1 training on par with SAELens: at most 1% above its FVU at every matched L0 "
                           "inside the declared range L0 15–150, on every reference file (seed 0: 1 point, worst "
                           "+0.5%; seed 1: 1 point, worst -0.5%)")
    assert "| 12.0 | 0.2000 | 0.1667 | +20.0% | no |" in md and "| 20.0 | 0.1005 | 0.1000 | +0.5% | yes |" in md
    assert "| 100.0 | 0.0100 | outside its L0 range | – | yes |" in md
    assert "`benchmarks/reference_sae_lr_select_seed1.json` (commit `abcdef0`, sae-lens 6.54.12, seed 1): 50,000 " \
           "training images (fit split)" in md
    assert "other training settings" not in md  # 0.009000000000000001 and 0.009 are the same rate


def test_one_file_above_the_target_or_with_nothing_compared_fails_the_check():
    points = [l1_point(0, 20.0, 0.1005), l1_point(1, 20.0, 0.1015)]  # seed 1: 0.1015 / 0.1 - 1 = +1.5%
    md, (ok, text) = report_reference.section(two_files(), points, 0.1, SETTINGS, DECLARED)
    assert not ok and text.endswith("(seed 0: 1 point, worst +0.5%; seed 1: 1 point, worst +1.5%)")
    md, (ok, text) = report_reference.section(two_files(), points[:1], 0.1, SETTINGS, DECLARED)
    assert not ok and text.endswith("(seed 0: 1 point, worst +0.5%; seed 1: nothing compared)")
    assert "No point of this run's L1 frontier on seed 1 is matched inside the declared range" in md


def test_a_reference_made_under_other_settings_is_named_and_fails_the_check():
    stale = reference_file(epochs=20, lr=0.003, ours={"recipe": {**RECIPE, "lr_hold": 0.2}})
    assert report_reference.differences(stale, SETTINGS) == ["epochs 20 (this run: 40)", "lr 0.003 (this run: 0.009)",
                                                             "recipe.lr_hold 0.2 (this run: 0.0)"]
    md, (ok, text) = report_reference.section({"old.json": stale}, [l1_point(0, 20.0, 0.1)], 0.1, SETTINGS, DECLARED)
    assert not ok and "not like for like: epochs 20 (this run: 40)" in text
    assert "Re-run `python benchmarks/reference_sae.py`" in md


def test_each_reference_is_drawn_with_its_own_marker_on_its_own_threshold_only():
    drawn = report_reference.drawn(reference_file(seed=1), 0.1, "+")
    assert drawn["l0"] == [10.0, 40.0] and drawn["fvu"] == pytest.approx([0.2, 0.05])
    assert drawn["label"] == "SAELens L1 (seed 1)" and drawn["marker"] == "+"
    assert report_reference.drawn(reference_file(), 0.2) is None
    md, check = report_reference.section(two_files(), [l1_point(0, 20.0, 0.1)], 0.2, SETTINGS, DECLARED)
    assert check is None and "(threshold 0.2: ✕ seed 0, + seed 1)" in md


def test_nothing_to_compare_when_no_point_lies_in_the_declared_range():
    points = [l1_point(0, 12.0, 0.2), l1_point(1, 500.0, 0.01)]  # matched below the range; beyond SAELens's points
    md, check = report_reference.section(two_files(), points, 0.1, SETTINGS, DECLARED)
    assert check is None and "nothing to compare" in md
    result = report_reference.reference_comparison([(12.0, 0.2)], [(10.0, 0.2), (40.0, 0.05)], l0_range=DECLARED)
    assert result["n_matched"] == 0 and result["points"][0]["relative_difference"] == pytest.approx(0.2)
    assert not result["passed"]
