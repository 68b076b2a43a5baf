"""Dead units along the frontiers (report/sections/dead_units.py and its check), on records built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sae_mnist.report.checks import frontier_dead_units_check
from sae_mnist.report.sections import dead_units
from sae_mnist.selection import choose

L0S = (10.0, 20.0, 40.0, 80.0)
# FVU = c * (L0 / 10) ** -0.5, c per penalty and rate (as tests/test_report_learning_rates.py): KL − L1 at every
# L0 is (c_kl - c_l1) * (L0 / 10) ** -0.5
C = {("l1", 1.0): 0.10, ("l1", 3.0): 0.08, ("kl", 1.0): 0.14, ("kl", 3.0): 0.15}


def point(penalty: str, factor: float, l0: float, dead: float = 0.0, seed: int = 0) -> dict:
    fvu = C[penalty, factor] * (l0 / 10) ** -0.5
    return {"penalty": penalty, "seed": seed, "setting": {"x": l0},
            "metrics": {"l0_at_0.1": l0, "fvu_at_0.1": fvu, "l0": l0, "fvu": fvu, "dead_fraction": dead}}


def selection(l1_dead_at_3: float) -> dict:
    """Two rates; L1 at x3 (its better rate) loses `l1_dead_at_3` of its units at L0 20, KL keeps its units."""
    variations = [{"factor": f, "lr": 0.003 * f,
                   "points": [point(p, f, l0, l1_dead_at_3 if (p, f, l0) == ("l1", 3.0, 20.0) else 0.0)
                              for p in ("l1", "kl") for l0 in L0S]}
                  for f in (1.0, 3.0)]
    chosen = {p: choose(p, {v["factor"]: [q for q in v["points"] if q["penalty"] == p] for v in variations}, 0.1,
                        (1, 1000)).as_json(0.003) for p in ("l1", "kl")}
    return {"arch": "conv", "seed": 0, "base_lr": 0.003, "epochs": 20, "chosen": chosen, "variations": variations}


def test_a_grid_point_takes_the_larger_dead_fraction_of_the_two_runs_it_is_read_between():
    front = (np.array([10.0, 20.0, 40.0]), np.array([0.3, 0.2, 0.1]), np.array([0.0, 0.5, 0.1]))
    got = dead_units.bracket_dead(front, np.array([10.0, 15.0, 20.0, 30.0, 40.0]))
    assert got.tolist() == [0.0, 0.5, 0.5, 0.5, 0.1]  # on a run: that run alone; between runs: the worse of the two


def test_grid_dead_reads_each_seeds_pareto_front():
    # seed 1's run at L0 20 is beaten by a sparser run (higher FVU): off the front, its dead units do not count
    points = [point("l1", 1.0, l0, seed=0) for l0 in L0S] + [point("l1", 1.0, l0, seed=1) for l0 in (10.0, 40.0)]
    beaten = point("l1", 1.0, 20.0, dead=0.9, seed=1)
    beaten["metrics"]["fvu_at_0.1"] = 1.0
    dead = dead_units.grid_dead([*points, beaten], 0.1, np.array([15.0, 30.0]), [0, 1])
    assert dead.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    points[1]["metrics"]["dead_fraction"] = 0.25  # seed 0, L0 20: on the front, read by both grid points
    assert dead_units.grid_dead(points, 0.1, np.array([15.0, 30.0]), [0, 1]).tolist() == [[0.25, 0.25], [0.0, 0.0]]


def test_many_dead_counts_only_runs_inside_the_range():
    points = [point("l1", 1.0, 10.0, 0.5), point("l1", 1.0, 20.0, 0.11), point("l1", 1.0, 40.0, 0.10),
              point("l1", 1.0, 80.0, 0.9)]
    assert dead_units.many_dead(points, (15, 50)) == (1, 2, 0.11)  # 0.10 is not more than the 10% limit
    assert dead_units.many_dead(points, (100, 200)) == (0, 0, 0.0)


def test_the_check_names_each_penalty_s_count_and_fails_on_any_run_with_many_dead_units():
    points = {"l1": [point("l1", 1.0, 20.0, 0.5), point("l1", 1.0, 40.0)], "kl": [point("kl", 1.0, 20.0)]}
    check = frontier_dead_units_check("conv", points, (15, 50), 32)
    assert not check.ok
    assert "L1 1 of 2 (most dead: 16 of 32); KL 0 of 1 (most dead: 0 of 32)" in check.text
    assert "loses more than 10% of its channels" in check.text
    points["l1"][0]["metrics"]["dead_fraction"] = 3 / 32  # 9.4%: within the limit
    assert frontier_dead_units_check("conv", points, (15, 50), 32).ok


def test_the_rate_table_marks_the_chosen_rate_and_counts_runs_with_many_dead_units():
    s = selection(0.5)
    assert s["chosen"]["l1"]["best_factor"] == 3.0
    rows = dead_units.rate_rows(s, 32, (15, 50))
    assert rows[0] == ["L1", "0 (0 of 2)", "**16 (1 of 2)**"]
    assert rows[1] == ["KL", "**0 (0 of 2)**", "0 (0 of 2)"]


def test_the_live_rate_sensitivity_moves_l1_to_its_best_rate_that_keeps_its_units():
    # grid: 9 points evenly in log L0 inside [10, 80]; m, the mean of (L0/10)^-0.5 over them
    m = sum((8 ** (k / 10)) ** -0.5 for k in range(1, 10)) / 9
    best, live, chosen = dead_units.live_rate_sensitivity(selection(0.5), 0.1, (1, 1000))
    assert best == 1.0
    assert live.difference.diff == pytest.approx((0.14 - 0.10) * m)  # L1 at x1, KL at its chosen x1
    assert chosen.difference.diff == pytest.approx((0.14 - 0.08) * m)  # both at their chosen rates
    text = dead_units.live_rate_sentence(selection(0.5), "conv", 0.1, (1, 1000))
    assert f"is {(0.14 - 0.10) * m:+.4f} FVU (at the chosen rates {(0.14 - 0.08) * m:+.4f})" in text
    assert "(lr 0.003, ×1;" in text
    # the chosen rate keeps its units: nothing to say
    assert dead_units.live_rate_sensitivity(selection(0.05), 0.1, (1, 1000)) is None
    assert dead_units.live_rate_sentence(selection(0.05), "conv", 0.1, (1, 1000)) == ""
