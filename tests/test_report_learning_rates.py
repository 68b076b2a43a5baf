"""The learning-rate section (report/sections/learning_rates.py) on an lr_select file built by hand."""

from __future__ import annotations

import pytest

from sae_mnist.report.sections import learning_rates
from sae_mnist.selection import choose

L0S = (10.0, 20.0, 40.0, 80.0)
# FVU = c * (L0 / 10) ** -0.5 with c per penalty and rate: KL − L1 at every L0 is then (c_kl - c_l1) * (L0/10)^-0.5
C = {("l1", 1.0): 0.10, ("l1", 3.0): 0.08, ("kl", 1.0): 0.14, ("kl", 3.0): 0.15}


def point(penalty: str, factor: float, l0: float) -> dict:
    return {"penalty": penalty, "seed": 0, "setting": {"x": l0},
            "metrics": {"l0_at_0.1": l0, "fvu_at_0.1": C[penalty, factor] * (l0 / 10) ** -0.5}}


def selection() -> dict:
    variations = [{"factor": f, "lr": 0.003 * f, "points": [point(p, f, l0) for p in ("l1", "kl") for l0 in L0S]}
                  for f in (1.0, 3.0)]
    chosen = {p: choose(p, {v["factor"]: [q for q in v["points"] if q["penalty"] == p] for v in variations}, 0.1,
                        (1, 1000)).as_json(0.003) for p in ("l1", "kl")}
    return {"arch": "linear", "seed": 0, "base_lr": 0.003, "epochs": 40, "chosen": chosen, "variations": variations,
            "splits": {"validation": {"images": 10000, "sha256": "ab" * 32}}}


def test_each_penalty_keeps_its_best_rate_and_the_table_shows_every_score():
    s = selection()
    assert (s["chosen"]["l1"]["best_factor"], s["chosen"]["kl"]["best_factor"]) == (3.0, 1.0)
    rows = learning_rates.score_rows(s)
    # mean log10 FVU over the grid = log10 c + mean of -0.5 * log10(L0/10) over 9 points between L0 10 and 80
    assert rows[0][0] == "L1" and rows[0][2].startswith("**") and rows[0][3] == "0.009"
    assert "best at the grid's highest rate: not bracketed" in rows[0][4]
    assert rows[1][0] == "KL" and rows[1][1].startswith("**") and rows[1][3] == "0.003"
    assert rows[1][4] == "best at the grid's lowest rate: not bracketed"  # two rates: every best is at an edge


def test_the_shared_rate_sensitivity_pairs_each_penalty_at_its_rate():
    shared, own = learning_rates.shared_rate_sensitivity(selection(), 0.1, (1, 1000))
    # the grid: 9 points evenly in log L0 inside [10, 80]; the mean of (L0/10)^-0.5 over them, m
    m = sum((8 ** (k / 10)) ** -0.5 for k in range(1, 10)) / 9
    assert shared.difference.diff == pytest.approx((0.14 - 0.10) * m)
    assert own.difference.diff == pytest.approx((0.14 - 0.08) * m)
    md = learning_rates.section({"linear": selection()}, 0.1, {"linear": (1, 1000)})
    assert md.startswith("## Learning rates")
    assert "| penalty | lr 0.003 (×1) | lr 0.009 (×3) | chosen lr | notes |" in md
    assert f"{(0.14 - 0.10) * m:+.4f} FVU with both at 0.003, and {(0.14 - 0.08) * m:+.4f} with each at its own" in md
