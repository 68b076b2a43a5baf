"""The budget rule of benchmarks/budget_by_verdict.py, by hand."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("budget_by_verdict", REPO / "benchmarks" / "budget_by_verdict.py")
budget = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budget)


def test_the_smallest_budget_whose_estimand_holds_when_doubled_is_chosen():
    # 20 -> 40 moves 0.030 -> 0.040: 0.010 >= 10% of 0.040; 40 -> 80 moves 0.040 -> 0.042: 0.002 < 0.0042.
    decision = budget.choose_budget({20: 0.030, 40: 0.040, 80: 0.042}, ci_half_width=None)
    assert [r["stable"] for r in decision["doublings"]] == [False, True]
    assert decision["doublings"][1]["tolerance"] == pytest.approx(0.0042)
    assert decision["chosen_epochs"] == 40
    # A CI half-width wider than 10% rules: 0.010 < 0.012 makes 20 epochs enough.
    assert budget.choose_budget({20: 0.030, 40: 0.040, 80: 0.042}, ci_half_width=0.012)["chosen_epochs"] == 20
    # No doubling holds: none chosen (the budget must grow).
    assert budget.choose_budget({20: 0.01, 40: 0.02}, ci_half_width=None)["chosen_epochs"] is None
