"""The learning-rate choice (sae_mnist.selection) against hand-computed scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sae_mnist.selection import Choice, choose, next_factor


def points(*l0_fvu: tuple[float, float]) -> list[dict]:
    return [{"metrics": {"l0_at_0.1": l0, "fvu_at_0.1": fvu}} for l0, fvu in l0_fvu]


# Each frontier runs from L0 10 to 100 with log10 FVU falling by 1 per decade: log10 FVU = a - (log10 L0 - 1).
# The 9 grid points split log10 L0 in [1, 2] into tenths, so the mean score is log10 FVU at log10 L0 = 1.5: a - 0.5.
LINES = {1 / 3: points((10, 0.4), (100, 0.04)), 1.0: points((10, 0.2), (100, 0.02)),
         3.0: points((10, 0.1), (100, 0.01))}


def test_scores_are_mean_log10_fvu_over_the_grid_by_hand():
    choice = choose("l1", LINES, 0.1, (1, 1000))
    np.testing.assert_allclose(choice.grid, 10 ** (1 + np.arange(1, 10) / 10))
    assert choice.scores[3.0] == pytest.approx(-1.0 - 0.5)
    assert choice.scores[1.0] == pytest.approx(math.log10(0.2) - 0.5)
    assert choice.scores[1 / 3] == pytest.approx(math.log10(0.4) - 0.5)
    assert choice.best == 3.0 and choice.at_edge == "high"
    assert choice.as_json(0.003)["lr"] == pytest.approx(0.009)


def test_grid_is_what_every_factor_covers_inside_the_declared_range():
    # the declared range cuts the top: log10 L0 in [1, log10 50]; a factor covering only L0 20-100 cuts the bottom
    narrow = {**LINES, 9.0: points((20, 0.05), (100, 0.01))}
    choice = choose("kl", narrow, 0.1, (5, 50))
    lo, hi = math.log10(20), math.log10(50)
    np.testing.assert_allclose(np.log10(choice.grid), lo + (hi - lo) * np.arange(1, 10) / 10)
    middle = (lo + hi) / 2  # every frontier is a line in log-log, so its mean over the grid is its value here
    assert choice.scores[1.0] == pytest.approx(math.log10(0.2) - (middle - 1))
    # 9.0: from log10 0.05 at L0 20 to -2 at L0 100, a slope of -(log10 0.05 + 2) / log10 5 per decade
    slope = (-2 - math.log10(0.05)) / (2 - math.log10(20))
    assert choice.scores[9.0] == pytest.approx(math.log10(0.05) + slope * (middle - math.log10(20)))


def test_dominated_points_leave_the_frontier():
    # a denser point with a higher FVU than a sparser one is not on the frontier, so it cannot raise the score
    extra = {f: p + points((50, 0.9)) for f, p in LINES.items()}
    assert choose("l1", extra, 0.1, (1, 1000)).scores == pytest.approx(choose("l1", LINES, 0.1, (1, 1000)).scores)


def test_a_single_point_frontier_leaves_nothing_to_compare():
    choice = choose("topk", {**LINES, 3.0: points((10, 0.1))}, 0.1, (1, 1000))
    assert choice.grid_range == "none" and choice.best == 1.0 and len(choice.grid) == 0

def test_frontiers_outside_the_declared_range_are_scored_where_they_overlap_and_flagged():
    choice = choose("l1", LINES, 0.1, (200, 1000))
    assert choice.grid_range == "shared" and choice.as_json(0.003)["grid_range"] == "shared"
    assert choice.scores[3.0] == pytest.approx(-1.5)  # the grid of the first test: L0 10 to 100
    assert choose("l1", LINES, 0.1, (1, 1000)).grid_range == "declared"
    # frontiers sharing no L0 at all: nothing to compare, so the base rate stays and no rate is added
    apart = choose("kl", {1 / 3: points((1, 0.5), (5, 0.3)), 1.0: points((10, 0.2), (20, 0.1)),
                          3.0: points((30, 0.1), (100, 0.01))}, 0.1, (1, 1000))
    assert apart.grid_range == "none" and apart.best == 1.0 and apart.at_edge is None
    assert next_factor([apart], 3.0, 5) is None and apart.as_json(0.003)["mean_log10_fvu"]["3"] is None


def test_grid_extends_beyond_the_edge_of_a_best_until_the_cap():
    inside = Choice("l1", np.array([10.0]), "declared", {1 / 3: -1.0, 1.0: -1.2, 3.0: -1.1})
    high = Choice("kl", np.array([10.0]), "declared", {1 / 3: -1.0, 1.0: -1.2, 3.0: -1.3})
    low = Choice("topk", np.array([10.0]), "declared", {1 / 3: -1.4, 1.0: -1.2, 3.0: -1.1})
    assert inside.at_edge is None and next_factor([inside], 3.0, 5) is None
    assert next_factor([inside, high, low], 3.0, 5) == pytest.approx(9.0)
    assert next_factor([inside, low, high], 3.0, 5) == pytest.approx(1 / 9)
    assert next_factor([high], 3.0, 3) is None  # the cap: the edge stays, and as_json names it
    assert high.as_json(0.003)["at_edge"] == "high"


def test_ties_go_to_the_rate_nearest_the_base():
    assert Choice("l1", np.array([10.0]), "declared", {1 / 3: -1.0, 1.0: -1.0, 3.0: -1.0}).best == 1.0


def test_rates_are_read_for_their_architecture(tmp_path):
    from sae_mnist.rates import read_rates

    path = tmp_path / "linear.json"
    choice = choose("l1", LINES, 0.1, (1, 1000))
    path.write_text(json.dumps({"arch": "linear", "chosen": {"l1": choice.as_json(0.003)}}))
    assert read_rates(path, "linear") == {"l1": pytest.approx(0.009)}
    with pytest.raises(ValueError, match="holds the rates of 'linear', not 'conv'"):
        read_rates(path, "conv")
    with pytest.raises(FileNotFoundError, match=r"run `dvc repro lr_select@conv`"):
        read_rates(tmp_path / "conv.json", "conv")
