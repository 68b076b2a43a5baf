"""Every threshold's labelled curve (report/sections/thresholds.py) on frontiers whose difference is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sae_mnist.report.analysis import analyse_arch
from sae_mnist.report.sections import thresholds

L0S = [10.0, 20.0, 40.0, 80.0, 160.0]
CROSS = 40.0  # KL's frontier is steeper: above L1 below L0 40, below it above


def fvu_l1(l0):
    return 0.1 * (l0 / 10) ** -0.5


def fvu_kl(l0, seed):
    # log FVU linear in log L0 for both, so reading them at any L0 between points is exact; a seed moves KL by
    # ±0.2% of itself, so far from L0 40 every point is directed and near it the difference shrinks to nothing
    return 0.1 * 4 ** 0.2 * (l0 / 10) ** -0.7 * (1 + 0.002 * (seed - 1))


def points(penalty: str) -> list[dict]:
    out = []
    for seed in (0, 1, 2):
        for l0 in L0S:
            fvu = fvu_l1(l0) if penalty == "l1" else fvu_kl(l0, seed)
            out.append({"setting": {"x": l0}, "seed": seed, "metrics": {
                "l0_at_0.1": l0, "fvu_at_0.1": fvu, "l0_at_0.2": l0 / 2, "fvu_at_0.2": fvu * 1.5,
                "probe_accuracy": 0.9}})
    return out


@pytest.fixture(scope="module")
def result():
    pts = {"l1": points("l1"), "kl": points("kl")}
    return analyse_arch("linear", pts, [0.1, 0.2], 0.1, np.linspace(1, 0, 784), (15.0, 120.0))


def test_each_point_is_labelled_by_its_paired_difference(result):
    curves = thresholds.labelled_curves(result, 0.1, 0.005, (15.0, 120.0))
    declared, wide, other = curves
    assert (declared.threshold, declared.declared, wide.threshold, wide.declared) == (0.1, None, 0.1, (15.0, 120.0))
    assert other.threshold == 0.2 and other.declared is None
    for i, (l0, point) in enumerate(zip(declared.estimand.grid, declared.points)):
        expected = np.mean([fvu_kl(l0, s) for s in (0, 1, 2)]) - fvu_l1(l0)
        assert point.diff == pytest.approx(expected, rel=1e-9)
        if abs(expected) > 0.001:  # far from the crossing: the seeds' ±0.2% spread cannot hide the sign
            assert point.label == ("L1 better" if expected > 0 else "KL better"), (l0, expected)
    assert declared.points[0].label == "L1 better" and declared.points[-1].label == "KL better"


def test_the_crossing_is_where_the_difference_reaches_zero(result):
    declared = thresholds.labelled_curves(result, 0.1, 0.005, (15.0, 120.0))[0]
    (crossing,) = declared.crossings
    assert (crossing.before, crossing.after) == ("L1 better", "KL better")
    assert crossing.low < CROSS < crossing.high
    # between two grid points the mean difference is linear in log L0: its zero lies within 2% of the true 40
    assert crossing.l0 == pytest.approx(CROSS, rel=0.02)
    # its 95% interval, over the 3 seeds every point of the stretch has, holds the crossing and the true 40
    assert crossing.n == 3 and crossing.low <= crossing.ci_low <= CROSS <= crossing.ci_high <= crossing.high
    text = thresholds.sentence("linear", declared)
    assert text.startswith("linear at threshold 0.1, along its grid: L1 better at L0 ")
    assert "the sign changes at L0 ≈" in text and "95% CI " in text and " over 3 seeds; between the grid points " in text


def test_the_primary_thresholds_covered_range_is_read_beyond_the_declared_one(result):
    wide = thresholds.labelled_curves(result, 0.1, 0.005, (15.0, 120.0))[1]
    assert wide.estimand.covered == (10.0, 160.0)
    in_declared = [r[-1] for r in thresholds.rows(wide)]
    grid = wide.estimand.grid
    assert in_declared == ["yes" if 15 <= l0 <= 120 else "no" for l0 in grid] and "no" in in_declared
    assert "the covered range, beyond the declared one" in thresholds.sentence("linear", wide)


def test_section_and_figure(result, tmp_path):
    curves = thresholds.all_curves({"linear": result}, 0.1, 0.005, {"linear": (15.0, 120.0)})
    md = thresholds.section(curves, 0.1, 0.005)
    assert md.startswith("## Every threshold's curve") and "±0.005 FVU" in md
    assert md.count("| L0 | KL − L1 | 95% CI | 90% CI | seeds | label | read across (L0 ratio) |") == 3
    # every grid point of the declared range lies between L0 10 and 20, 20 and 40, ... (ratio 2 on every frontier)
    assert [row[6] for row in thresholds.rows(curves["linear"][0])] == ["2.00"] * len(curves["linear"][0].points)
    assert "the widest stretch between the trained models a point is read across: L0 ratio 2.00 at L0 18.5" in md
    assert "outside the primary estimand" in md and "Extra seeds" not in md
    assert "![linear: KL − L1 at every threshold](figures/thresholds-linear.png)" in md
    thresholds.save_figures(curves, 0.1, 0.005, tmp_path)
    assert (tmp_path / "thresholds-linear.png").stat().st_size > 10_000


def test_summary_holds_every_curves_labels_and_crossings(result):
    curves = thresholds.all_curves({"linear": result}, 0.1, 0.005, {"linear": (15.0, 120.0)})
    summary = thresholds.curves_json(curves)["linear"]
    assert [(c["threshold"], c["beyond_declared"]) for c in summary] == [(0.1, False), (0.1, True), (0.2, False)]
    assert summary[1]["l0_range"] == [10.0, 160.0]
    first = summary[0]["points"][0]
    assert first["label"] == "L1 better" and first["n"] == 3 and isinstance(first["within_margin"], bool)
    assert first["l0"] == pytest.approx(curves["linear"][0].estimand.grid[0])
    (crossing,) = summary[0]["crossings"]
    assert crossing["before"] == "L1 better" and crossing["l0"] == pytest.approx(CROSS, rel=0.02)


def test_one_seed_has_no_labels():
    pts = {p: [pt for pt in points(p) if pt["seed"] == 0] for p in ("l1", "kl")}
    one = analyse_arch("linear", pts, [0.1, 0.2], 0.1, np.linspace(1, 0, 784), (15.0, 120.0))
    curves = thresholds.all_curves({"linear": one}, 0.1, 0.005, {"linear": (15.0, 120.0)})
    assert curves == {"linear": []}
    assert "nothing to label" in thresholds.section(curves, 0.1, 0.005)


def test_a_point_inside_the_margin_is_equivalent_when_its_interval_is_too():
    from sae_mnist.equivalence import resolve

    # per-seed differences 0.001, 0.002, 0.003: mean 0.002, sd 0.001; 95% CI 0.002 ± 4.303 * 0.001 / sqrt(3)
    # = [-0.00048, 0.00448] includes 0; 90% CI 0.002 ± 2.920 * 0.000577 = [0.00031, 0.00369] inside ±0.005
    point = resolve(np.array([0.101, 0.102, 0.103]), np.array([0.1, 0.1, 0.1]), 0.005)
    assert point.label == "equivalent" and point.tost_high == pytest.approx(0.002 + 2.919986 / math.sqrt(3) * 0.001)


def test_extra_seeds_join_only_the_grid_points_their_frontiers_reach(result):
    from sae_mnist.estimand import seed_frontiers

    declared = thresholds.labelled_curves(result, 0.1, 0.005, (15.0, 120.0))[0]
    # three more seeds of the settings at L0 20 and 40 only: their frontiers reach the grid points between them
    extra_points = {p: [pt for pt in points(p) if pt["metrics"]["l0_at_0.1"] in (20.0, 40.0)] for p in ("l1", "kl")}
    for p in extra_points:
        extra_points[p] = [{**pt, "seed": pt["seed"] + 3, "penalty": p} for pt in extra_points[p]]
    extra = {p: seed_frontiers(v, 0.1) for p, v in extra_points.items()}
    more = thresholds.labelled(declared.estimand, 0.1, 0.005, extra=extra)
    grid = declared.estimand.grid
    assert [p.n for p in more.points] == [6 if 20 <= l0 <= 40 else 3 for l0 in grid]
    i = next(i for i, l0 in enumerate(grid) if 20 <= l0 <= 40)
    _, kl, l1 = thresholds.with_extra_seeds(declared.estimand, extra, i)
    assert kl[3:] == pytest.approx(kl[:3]) and l1[3:] == pytest.approx(l1[:3])  # the same seeds' values again
    assert more.points[i].diff == pytest.approx(declared.points[i].diff)
    # the same through a sparse_end file, as the report reads it: the labels gain the seeds, the estimand does not
    sparse_end = {"linear": {"arch": "linear", "seeds": [3, 4, 5], "rates": {"l1": 0.009, "kl": 0.027},
                             "points": extra_points["l1"] + extra_points["kl"]}}
    curves = thresholds.all_curves({"linear": result}, 0.1, 0.005, {"linear": (15.0, 120.0)}, sparse_end)
    assert [p.n for p in curves["linear"][0].points] == [p.n for p in more.points]
    assert curves["linear"][0].estimand.seeds == [0, 1, 2]
    md = thresholds.section(curves, 0.1, 0.005, sparse_end)
    assert "Extra seeds 3, 4, 5 (`sparse_end@linear`" in md and "L1 at lr 0.009, KL at lr 0.027" in md
    assert thresholds.extra_points(None) is None


def test_an_unresolved_point_names_the_seeds_that_would_resolve_it():
    from types import SimpleNamespace

    from sae_mnist.equivalence import resolve

    # conv's sparsest primary point before issue 33: mean -0.0057, sd 0.0054 over 3 seeds -> 9 seeds (the protocol)
    point = resolve(np.array([-0.0111, -0.0057, -0.0003]) + 0.1, np.full(3, 0.1), 0.005)
    assert point.label == "unresolved" and point.sd == pytest.approx(0.0054)
    curve = thresholds.LabelledCurve(0.1, SimpleNamespace(grid=np.array([29.4])), [point], [], None)
    assert thresholds.seeds_needed(curve) == [(29.4, 9)]


def test_a_crossing_without_an_interval_says_why():
    from sae_mnist.equivalence import Crossing

    few = Crossing(25.0, 20.0, 30.0, "KL better", "L1 better")
    assert "(no interval: fewer than 2 seeds shared by every point of the stretch; between the grid points 20 and " \
           "30: KL better below, L1 better above)" in thresholds.crossing_text(few)
    empty = Crossing(25.0, 20.0, 30.0, "KL better", "L1 better", None, None, 4)
    assert "no interval: over the 4 seeds the stretch shares, no L0 of it holds 0" in thresholds.crossing_text(empty)
    both = Crossing(25.2, 19.3, 30.0, "KL better", "L1 better", 21.0, 26.8, 9)
    assert thresholds.crossing_text(both) == ("L0 ≈ 25.2 (95% CI 21–26.8 over 9 seeds; between the grid points 19.3 "
                                             "and 30: KL better below, L1 better above)")
