"""The report's generated numbers and sentences, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sae_mnist import reporting
from sae_mnist.stats import Difference


def test_difference_sentence_states_direction_size_interval_and_significance():
    d = Difference(diff=-0.012, ci_low=-0.016, ci_high=-0.008, t=-6.0, df=4.0, p=0.003)
    assert reporting.difference_sentence("FVU", d, ".4f", context="At L0 ≈ 40") == (
        "At L0 ≈ 40, KL's FVU is 0.0120 lower than L1's "
        "(95% CI of KL − L1 [-0.0160, -0.0080], p = 0.003; significant at 5%)."
    )
    d = Difference(diff=0.5, ci_low=-1.0, ci_high=2.0, t=0.7, df=3.0, p=0.2)
    assert "0.50 higher" in reporting.difference_sentence("L0", d, ".2f") and "not significant" in \
        reporting.difference_sentence("L0", d, ".2f")
    d = Difference(diff=0.5, ci_low=math.nan, ci_high=math.nan, t=math.nan, df=math.nan, p=math.nan)
    assert "too few seeds" in reporting.difference_sentence("L0", d, ".2f")


def test_pareto_front_keeps_only_points_not_beaten_by_a_sparser_one():
    l0 = [20, 10, 30, 40, 0]
    fvu = [0.3, 0.5, 0.35, 0.2, 0.9]  # (30, 0.35) is beaten by (20, 0.3); L0 = 0 cannot go on a log axis
    x, y = reporting.pareto_front(l0, fvu)
    assert x.tolist() == [10, 20, 40] and y.tolist() == [0.5, 0.3, 0.2]


def test_matched_l0_interpolates_both_frontiers_and_borrows_seed_noise():
    points = {"l1": (np.array([10.0, 100.0]), np.array([0.4, 0.2])),
              "kl": (np.array([10.0, 100.0]), np.array([0.5, 0.3]))}
    rows = reporting.matched_l0(points, seed_sd={"l1": 0.01, "kl": 0.01}, n_seeds={"l1": 3, "kl": 3})
    # Overlap [10, 100]; grid at 25/50/75% of it in log10: 10^1.25, 10^1.5, 10^1.75.
    assert [r["l0"] for r in rows] == pytest.approx([10**1.25, 10**1.5, 10**1.75])
    middle = rows[1]
    assert middle["fvu_l1"] == pytest.approx(0.3) and middle["fvu_kl"] == pytest.approx(0.4)
    d = middle["difference"]
    # se = sqrt(0.01^2 + 0.01^2); Welch df = (2e-4)^2 / (2 * (1e-4)^2 / 2) = 4; t_{0.975, 4} = 2.776445
    half = 2.776445 * math.sqrt(2) * 0.01
    assert d.diff == pytest.approx(0.1) and d.df == pytest.approx(4.0)
    assert (d.ci_low, d.ci_high) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)
    assert reporting.matched_verdict("linear", rows).startswith(
        "linear: at matched sparsity (L0 ≈ 17.8 to 56.2) L1 reconstructs better than KL")


def test_no_overlap_gives_no_matched_rows_and_says_so():
    points = {"l1": (np.array([1.0, 5.0]), np.array([0.5, 0.3])), "kl": (np.array([10.0, 50.0]), np.array([0.4, 0.2]))}
    rows = reporting.matched_l0(points, seed_sd={"l1": 0.01, "kl": 0.01}, n_seeds={"l1": 3, "kl": 3})
    assert rows == [] and "do not overlap" in reporting.matched_verdict("conv", rows)


def test_mixed_results_are_reported_point_by_point():
    def row(l0, diff, p):
        return {"l0": l0, "difference": Difference(diff, diff - 0.01, diff + 0.01, 1.0, 4.0, p)}

    verdict = reporting.matched_verdict("conv", [row(20, -0.02, 0.01), row(40, 0.01, 0.3)])
    assert verdict == ("conv: no consistent winner at matched sparsity (L0 ≈ 20 to 40): lower FVU for "
                       "KL at L0 ≈ 20, L1 at L0 ≈ 40 (not significant).")
    verdict = reporting.matched_verdict("conv", [row(20, 0.02, 0.01), row(40, 0.01, 0.3)])
    assert verdict == ("conv: at matched sparsity (L0 ≈ 20 to 40) L1 has the lower FVU at every L0 compared; "
                       "the difference is significant at 5% at L0 ≈ 20 only.")
    assert "at none is the difference significant" in reporting.matched_verdict("conv", [row(20, -0.02, 0.2)])


def test_seed_summaries_and_mean_ci_format():
    summaries = reporting.seed_summaries([{"fvu": 1.0, "name": "a"}, {"fvu": 2.0, "name": "b"}, {"fvu": 3.0, "name": "c"}])
    assert set(summaries) == {"fvu"}
    # mean 2, sd 1, half-width t_{0.975,2} / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    assert reporting.mean_ci(summaries["fvu"], ".3f") == "2.000 ± 2.484"
    assert reporting.full_summary(summaries["fvu"], ".2f") == "2.00; sd 1.00; [-0.48, 4.48]"


def test_html_is_self_contained(tmp_path):
    (tmp_path / "figures").mkdir()
    png = b"\x89PNG\r\n\x1a\n fake"
    (tmp_path / "figures" / "a.png").write_bytes(png)
    html = reporting.markdown_to_html("# T\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n![a](figures/a.png)\n", tmp_path, "T")
    assert "<table>" in html and 'src="figures/a.png"' not in html
    assert "data:image/png;base64," in html
