"""The report's generated numbers and sentences, against hand-computed values."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sae_mnist import estimand
from sae_mnist.report import analysis as report_analysis
from sae_mnist.report import checks as report_checks
from sae_mnist.report import curve as report_curve
from sae_mnist.report import html as report_html
from sae_mnist.report import inputs as report_inputs
from sae_mnist.report import text as report_text
from sae_mnist.report.sections import probes as report_probes
from sae_mnist.stats import Difference


def test_difference_sentence_states_direction_size_interval_and_significance():
    d = Difference(diff=-0.012, ci_low=-0.016, ci_high=-0.008, t=-6.0, df=4.0, p=0.003)
    assert report_text.difference_sentence("FVU", d, ".4f", context="At L0 ≈ 40") == (
        "At L0 ≈ 40, KL's FVU is 0.0120 lower than L1's "
        "(95% CI of KL − L1 [-0.0160, -0.0080], p = 0.003; significant at 5%)."
    )
    d = Difference(diff=0.5, ci_low=-1.0, ci_high=2.0, t=0.7, df=3.0, p=0.2)
    assert "0.50 higher" in report_text.difference_sentence("L0", d, ".2f") and "not significant" in \
        report_text.difference_sentence("L0", d, ".2f")
    d = Difference(diff=0.5, ci_low=math.nan, ci_high=math.nan, t=math.nan, df=math.nan, p=math.nan)
    assert "too few seeds" in report_text.difference_sentence("L0", d, ".2f")


def test_pareto_front_keeps_only_points_not_beaten_by_a_sparser_one():
    l0 = [20, 10, 30, 40, 0]
    fvu = [0.3, 0.5, 0.35, 0.2, 0.9]  # (30, 0.35) is beaten by (20, 0.3); L0 = 0 cannot go on a log axis
    x, y = estimand.pareto_front(l0, fvu)
    assert x.tolist() == [10, 20, 40] and y.tolist() == [0.5, 0.3, 0.2]


def front(l0, fvu):
    return np.array(l0, float), np.array(fvu, float)


def test_primary_estimand_is_the_mean_paired_difference_over_the_common_range():
    # The old rule (FVU linear in log L0, now the sensitivity). Seed 0: KL is 0.1 above L1 everywhere; seed 1:
    # 0.2 above. Frontiers are straight lines in log10 L0, so the grid values are exact. Common range [10, 100]
    # (seed 1's KL starts at 10, L1 at 5).
    l1 = {0: front([10, 100], [0.4, 0.2]), 1: front([5, 100], [0.5, 0.2])}
    kl = {0: front([10, 100], [0.5, 0.3]), 1: front([10, 1000], [0.6, 0.2])}
    est = estimand.primary_estimand(l1, kl, n_grid=3, log_fvu=False)
    assert est.covered == (10.0, 100.0) and est.log_fvu is False
    assert est.grid == pytest.approx([10**1.25, 10**1.5, 10**1.75])
    # seed 1 at 10^1.5: L1 on the line from (log 5, 0.5) to (2, 0.2); KL from (1, 0.6) to (3, 0.2)
    l1_s1 = 0.5 + (1.5 - math.log10(5)) / (2 - math.log10(5)) * (0.2 - 0.5)
    assert est.fvu_l1[1, 1] == pytest.approx(l1_s1) and est.fvu_kl[1, 1] == pytest.approx(0.6 - 0.5 * 0.2)
    assert est.per_seed[0] == pytest.approx(0.1)
    expected = [np.mean(est.fvu_kl[s] - est.fvu_l1[s]) for s in (0, 1)]
    d = est.difference
    assert d.diff == pytest.approx(np.mean(expected)) and d.df == 1
    assert len(est.at_grid) == 3 and est.at_grid[0].df == 1


T_975_DF2 = 4.302653  # Student t 97.5% quantile, 2 dof


def test_primary_estimand_reads_log_fvu_and_gives_each_grid_point_a_paired_interval_by_hand():
    # Three seeds. L1: (10, 0.2) and (1000, 0.05) on every seed; KL: the same frontier times k = 1.1, 1.2, 1.3.
    # Both are straight on log-log axes, so log-log interpolation reads them exactly. n_grid = 1: the log
    # midpoint of the covered range [10, 1000], L0 = 100, where L1 = sqrt(0.2 * 0.05) = 0.1 and KL = 0.1 k.
    # Per seed KL − L1 = 0.01, 0.02, 0.03: mean 0.02, sd 0.01, half width 4.302653 * 0.01 / sqrt(3) = 0.024841
    # -> [-0.004841, 0.044841]; t = 0.02 / (0.01 / sqrt(3)) = 3.464102, two-sided p (2 dof) = 0.074180.
    l1 = {s: front([10, 1000], [0.2, 0.05]) for s in (0, 1, 2)}
    kl = {s: front([10, 1000], [0.2 * k, 0.05 * k]) for s, k in ((0, 1.1), (1, 1.2), (2, 1.3))}
    est = estimand.primary_estimand(l1, kl, n_grid=1)
    assert est.grid == pytest.approx([100.0]) and est.log_fvu is True
    assert est.fvu_l1[:, 0] == pytest.approx([0.1, 0.1, 0.1])
    d = est.at_grid[0]
    assert d.diff == pytest.approx(0.02) and d.df == 2
    assert (d.ci_low, d.ci_high) == (pytest.approx(-0.004841, abs=1e-6), pytest.approx(0.044841, abs=1e-6))
    assert d.t == pytest.approx(3.464102, abs=1e-6) and d.p == pytest.approx(0.074180, abs=1e-5)
    # The old rule reads L1 = (0.2 + 0.05) / 2 = 0.125 at L0 = 100: KL − L1 = 0.0125 k - ... = 0.0125, 0.025, 0.0375
    old = estimand.primary_estimand(l1, kl, n_grid=1, log_fvu=False)
    assert old.fvu_l1[0, 0] == pytest.approx(0.125) and old.difference.diff == pytest.approx(0.025)


def test_primary_estimand_reads_the_declared_range_inside_the_covered_one():
    # The same straight log-log frontiers as above cover [10, 1000]; declared [20, 80]: n_grid = 1 reads the log
    # midpoint sqrt(20 * 80) = 40, where L1 = 0.2 * (40 / 10) ** log(0.05 / 0.2) / log(100) = 0.2 * 4 ** -0.30103
    # = 0.2 * exp(-0.30103 * ln 4) = 0.131763. A declared range wider than the covered one is clipped to it: [5, 100] -> [10, 100], midpoint
    # sqrt(1000) = 31.62.
    l1 = {s: front([10, 1000], [0.2, 0.05]) for s in (0, 1)}
    kl = {s: front([10, 1000], [0.2 * k, 0.05 * k]) for s, k in ((0, 1.1), (1, 1.2))}
    est = estimand.primary_estimand(l1, kl, n_grid=1, l0_range=(20, 80))
    assert est.covered == (20.0, 80.0) and est.grid == pytest.approx([40.0])
    assert est.fvu_l1[:, 0] == pytest.approx([0.131763, 0.131763], abs=1e-6)
    assert est.difference.diff == pytest.approx(0.15 * 0.131763, abs=1e-6)  # mean of k - 1 = 0.1, 0.2
    clipped = estimand.primary_estimand(l1, kl, n_grid=1, l0_range=(5, 100))
    assert clipped.covered == (10.0, 100.0) and clipped.grid == pytest.approx([10**1.5])
    assert estimand.primary_estimand(l1, kl, l0_range=(2000, 3000)) is None  # no overlap with the frontiers


def test_each_grid_point_carries_the_widest_stretch_between_the_trained_points_it_is_read_across():
    # Amendment 3: L1 seed 1 has a hole from L0 20 to 90 (ratio 4.5); n_grid = 3 over the covered [10, 100] reads
    # L0 10^1.25 = 17.8 (L1 seed 0: 10-20, ratio 2; KL: 10-40, 4), 10^1.5 = 31.6 (seed 1's hole, 4.5) and
    # 10^1.75 = 56.2 (the hole again). A target on a point is a bracket of 1; outside the frontier, nan.
    assert estimand.bracket_ratios(np.array([10.0, 20.0, 90.0]), np.array([5, 10, 15, 50, 200])) == \
        pytest.approx([math.nan, 1.0, 2.0, 4.5, math.nan], nan_ok=True)
    l1 = {0: front([10, 20, 40, 100], [0.4, 0.3, 0.25, 0.2]), 1: front([10, 20, 90, 100], [0.4, 0.3, 0.21, 0.2])}
    kl = {s: front([10, 40, 100], [0.5, 0.35, 0.3]) for s in (0, 1)}
    est = estimand.primary_estimand(l1, kl, n_grid=3)
    assert est.grid == pytest.approx([10**1.25, 10**1.5, 10**1.75])
    assert est.bracket == pytest.approx([4.0, 4.5, 4.5])
    assert [g["bracket"] for g in est.as_json()["at_grid"]] == pytest.approx([4.0, 4.5, 4.5])


def test_primary_estimand_needs_overlapping_frontiers_on_every_seed():
    l1 = {0: front([1, 5], [0.5, 0.3])}
    kl = {0: front([10, 50], [0.4, 0.2])}
    assert estimand.primary_estimand(l1, kl) is None
    assert estimand.primary_estimand({0: front([10], [0.3])}, kl) is None  # one point is no frontier


def test_seed_frontiers_read_the_threshold_asked_for():
    points = [{"seed": 0, "metrics": {"l0_at_0.1": 10, "fvu_at_0.1": 0.5, "l0_at_0.01": 30, "fvu_at_0.01": 0.4, "p": 0.9}},
              {"seed": 0, "metrics": {"l0_at_0.1": 20, "fvu_at_0.1": 0.6, "l0_at_0.01": 40, "fvu_at_0.01": 0.3, "p": 0.8}}]
    assert estimand.seed_frontiers(points, 0.1)[0][0].tolist() == [10.0]  # (20, 0.6) is beaten by a sparser point
    x, y, p = estimand.seed_frontiers(points, 0.01, extra="p")[0]
    assert x.tolist() == [30.0, 40.0] and y.tolist() == [0.4, 0.3] and p.tolist() == [0.9, 0.8]


def _point(diff, p):
    return Difference(diff, diff - 0.01, diff + 0.01, 5.0, 2, p)


def _curve(grid, diffs, ps, average, average_p, covered, seeds=3):
    """A hand-made estimand: KL − L1 at each grid point (interval ±0.01) and its average over the grid, on
    `seeds` seeds (the sentences read only their number)."""
    n = len(grid)
    return estimand.Estimand(seeds=list(range(seeds)), covered=covered, grid=np.array(grid, float), log_fvu=True,
                             fvu_l1=np.full((seeds, n), np.nan), fvu_kl=np.full((seeds, n), np.nan),
                             per_seed=np.full(seeds, np.nan), difference=_point(average, average_p),
                             at_grid=[_point(d, p) for d, p in zip(diffs, ps)])


def _estimate(diff, p, lo=10.0, hi=100.0):
    return _curve([lo, hi], [diff, diff], [p, p], diff, p, (lo / 2, hi * 2))


def test_verdict_names_the_winner_over_the_whole_range_when_the_sign_holds_and_the_other_thresholds():
    by_t = {0.01: _estimate(-0.02, 0.2), 0.05: _estimate(-0.03, 0.01), 0.1: _estimate(-0.025, 0.004),
            0.2: _estimate(0.01, 0.3)}
    text = report_curve.verdict("linear", by_t, 0.1, holm_p=0.008)
    assert text == ("linear: KL reconstructs better at all 2 grid points of the covered range L0 ≈ 5–200 (the L0 "
                    "every seed's L1 and KL frontiers reach, threshold 0.1), L0 ≈ 10–100 (KL − L1 -0.0250 FVU, "
                    "significant at 2 of 2); significant: unadjusted, the point's paired 95% interval excludes "
                    "zero. Averaged over the grid (the primary estimand): KL − L1 = -0.0250 FVU (95% CI [-0.0350, "
                    "-0.0150], paired over 3 seeds; Holm-adjusted p = 0.008, significant at 5%). The average's sign "
                    "holds at 0.01 (not significant), 0.05; not at 0.2 (reversed).")
    assert "not significant at 5%" in report_curve.verdict("conv", {0.1: _estimate(0.01, 0.3)}, 0.1, holm_p=0.6)
    assert "do not overlap" in report_curve.verdict("conv", {0.1: None}, 0.1, holm_p=math.nan)


def test_verdict_says_where_a_reversing_curve_changes_sign():
    # KL − L1 = -0.02 at L0 = 10, +0.06 at 100, +0.08 at 1000. The sign changes between 10 and 100: on the line
    # through (log10 10, -0.02) and (log10 100, +0.06), zero lies 0.02 / 0.08 = 1/4 of the way: 10^1.25 = 17.8.
    est = _curve([10, 100, 1000], [-0.02, 0.06, 0.08], [0.01, 0.2, 0.03], 0.04, 0.02, (5.0, 2000.0))
    text = report_curve.verdict("conv", {0.1: est}, 0.1, holm_p=0.04)
    assert text == ("conv: the sign of KL − L1 reverses inside the covered range L0 ≈ 5–2000 (the L0 every seed's L1 "
                    "and KL frontiers reach, threshold 0.1): KL reconstructs better below L0 ≈ 17.8, L1 reconstructs "
                    "better above (KL better at L0 ≈ 10 (KL − L1 -0.0200 FVU, significant at 1 of 1); L1 better at L0 ≈ 100–1000 "
                    "(KL − L1 +0.0600 to +0.0800 FVU, significant at 1 of 2); significant: unadjusted, the point's "
                    "paired 95% interval excludes zero). Averaged over the grid (the primary estimand): KL − L1 = "
                    "+0.0400 FVU (95% CI [+0.0300, +0.0500], paired over 3 seeds; Holm-adjusted p = 0.04, significant "
                    "at 5%). The curve changes sign, so this average weighs the stretches by their share of the grid: "
                    "it names no winner for the whole range.")
    assert report_curve.zero_crossing(10, -0.02, 100, 0.06) == pytest.approx(10**1.25)
    # A stretch without a significant point is named as only nominally better. Zero between (log10 20, -0.01) and
    # (2, +0.06) lies 1/7 of the way: 10^(1.30103 + 0.69897 / 7) = 25.2.
    est = _curve([10, 20, 100, 1000], [-0.02, -0.01, 0.06, 0.08], [0.3, 0.2, 0.01, 0.03], 0.04, 0.02, (5.0, 2000.0))
    assert ("KL is nominally better (significant at none of its 2 grid points) below L0 ≈ 25.2, L1 reconstructs "
            "better above (") in report_curve.curve_sentence(est, 0.1)
    est = _curve([10, 100, 1000], [-0.02, 0.06, 0.08], [0.3, 0.01, 0.03], 0.04, 0.02, (5.0, 2000.0))
    assert "KL is nominally better (not significant at its one grid point) below" in report_curve.curve_sentence(est, 0.1)


def test_verdict_counts_several_sign_changes():
    est = _curve([10, 20, 40, 80], [-0.01, 0.02, 0.03, -0.01], [0.01, 0.3, 0.3, 0.5], 0.01, 0.5, (5.0, 100.0))
    sentence = report_curve.curve_sentence(est, 0.1)
    assert sentence.startswith("the sign of KL − L1 changes 2 times inside the covered range L0 ≈ 5–100")
    assert ("KL better at L0 ≈ 10 (KL − L1 -0.0100 FVU, significant at 1 of 1); L1 better at L0 ≈ 20–40 (KL − L1 "
            "+0.0200 to +0.0300 FVU, significant at 0 of 2); KL better at L0 ≈ 80") in sentence
    assert report_curve.sign_runs([-1.0, -2.0, 0.0, 3.0]) == [(-1, 0, 1), (0, 2, 2), (1, 3, 3)]


def test_sensitivity_sentence_compares_the_sign_under_the_other_rule():
    primary = _estimate(0.02, 0.01)
    assert report_curve.sensitivity_sentence("conv", primary, replace(_estimate(0.03, 0.0005), log_fvu=False)) == (
        "conv, sensitivity: with FVU interpolated linearly in log L0 (instead of log FVU interpolated linearly in "
        "log L0), the average KL − L1 is +0.0300 FVU (95% CI [+0.0200, +0.0400], paired p < 0.001): the same sign "
        "as the primary estimand (+0.0200).")
    opposite = report_curve.sensitivity_sentence("conv", primary, replace(_estimate(-0.01, 0.2), log_fvu=False))
    assert "paired p = 0.200): the opposite sign to the primary estimand" in opposite


def test_seed_summaries_and_mean_ci_format():
    seeds = [{"l0": v, "fvu": v, "name": n} for v, n in ((1.0, "a"), (2.0, "b"), (3.0, "c"))]
    summaries = report_inputs.seed_summaries(seeds)
    assert set(summaries) == {"l0", "fvu"}
    # L0 is unbounded here: mean 2, sd 1, half-width t_{0.975,2} / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    assert report_text.mean_ci(summaries["l0"], ".3f") == "2.000 [-0.484, 4.484]"
    assert report_text.full_summary(summaries["l0"], ".2f") == "2.00; sd 1.00; [-0.48, 4.48]"
    # FVU is positive: the interval of the log values (mean 0.597253, sd 0.555548, half 1.380059), exponentiated
    assert report_text.mean_ci(summaries["fvu"], ".3f") == "2.000 [0.457, 7.223]"


def test_html_is_self_contained(tmp_path):
    (tmp_path / "figures").mkdir()
    png = b"\x89PNG\r\n\x1a\n fake"
    (tmp_path / "figures" / "a.png").write_bytes(png)
    html = report_html.markdown_to_html("# T\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n![a](figures/a.png)\n", tmp_path, "T")
    assert "<table>" in html and 'src="figures/a.png"' not in html
    assert "data:image/png;base64," in html


def test_probes_at_grid_edge_names_the_smallest_and_largest_C_only():
    chosen = {"a": 0.001, "b": 0.01, "c": 1.0, "d": 0.1}
    assert report_probes.probes_at_grid_edge(chosen, [0.01, 0.001, 1.0, 0.1]) == ["a", "c"]
    assert report_probes.probes_at_grid_edge({"a": 1.0}, [1.0]) == []  # one value: nothing was chosen


def test_unit_counts_and_the_dead_unit_check_count_whole_units():
    conv = [{"code_units": 32, "dead_units": d, "always_on_units": a} for d, a in ((0, 32), (1, 32), (2, 31))]
    assert report_text.unit_counts(conv, "dead_fraction", "conv") == "0, 1, 2 of 32 channels"
    assert report_text.unit_counts(conv, "always_on_fraction", "conv") == "32, 32, 31 of 32 channels"
    # 2% of 32 channels is 0.64: below one channel, so the limit is one; seed 2 has two dead -> fails
    ok, text = report_checks.dead_unit_check("conv-none", "conv", conv, 0.02)
    assert not ok and text == ("conv-none: at most 1 dead channel of 32 on every seed (2% of 32, at least one channel; "
                               "dead per seed: 0, 1, 2 of 32 channels)")
    assert report_checks.dead_unit_check("conv-none", "conv", conv[:2], 0.02)[0]  # one dead channel passes
    # 10% of 32 = 3.2 -> 3 channels; 2% of 256 units = 5.12 -> 5 units (5 / 256 = 1.95% is within 2%)
    assert report_checks.dead_unit_check("conv-l1", "conv", conv, 0.10)[1].startswith("conv-l1: at most 3 dead channels")
    linear = [{"code_units": 256, "dead_units": d} for d in (5, 6)]
    ok, text = report_checks.dead_unit_check("linear-none", "linear", linear, 0.02)
    assert not ok and text.startswith("linear-none: at most 5 dead units of 256 on every seed (2% of 256; dead per")


def test_placement_puts_each_setting_by_its_mean_l0_over_seeds():
    def point(lam, seed, l0):
        return {"setting": {"lam": lam}, "seed": seed, "validation": {"l0_at_0.1": l0, "l0_at_0.2": l0 / 2}}

    # lam 0.1: L0 14 and 18 -> 16, inside [15, 150]; lam 1: 10 and 12 -> 11, below; lam 0.01: 150 on the bound.
    points = [point(0.1, 0, 14), point(1.0, 0, 10), point(0.01, 0, 150),
              point(0.1, 1, 18), point(1.0, 1, 12), point(0.01, 1, 150)]
    rows = report_analysis.placement(points, 0.1, (15, 150))
    assert [(r["setting"]["lam"], r["l0"], r["where"]) for r in rows] == [
        (0.1, 16.0, "inside"), (1.0, 11.0, "below"), (0.01, 150.0, "inside")]
    assert report_analysis.placement_counts(rows) == {"below": 1, "inside": 2, "above": 0}
    at_02 = report_analysis.placement(points, 0.2, (15, 150))  # the threshold asked for: L0 halves
    assert [r["where"] for r in at_02] == ["below", "below", "inside"]
