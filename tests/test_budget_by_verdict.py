"""The budget rule of benchmarks/budget_by_verdict.py, by hand."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import REPO
from tests.test_robustness import WIDE, M, frontier

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


def test_the_rule_on_the_budget_study_reads_its_seed_of_the_main_frontier_on_validation(tmp_path):
    # Seed 0 of the main frontier at 40 epochs: KL 1.1 x L1 on validation (2.0 x on test, which must not be read);
    # seed 1 is another seed (must not be read). The study: x0.5 (20 epochs) k 1.3, x2 (80 epochs) k 1.09.
    # KL - L1 is (k - 1) M on these straight frontiers (tests/test_robustness.py): 0.3 M, 0.1 M, 0.09 M.
    main, on_validation, other = frontier(0, 2.0), frontier(0, 1.1), frontier(1, 3.0)
    for p in ("l1", "kl"):
        main[p] = [pt | {"validation": v["metrics"]} for pt, v in zip(main[p], on_validation[p])]
        (tmp_path / f"linear-{p}.json").write_text(json.dumps({"points": main[p] + other[p]}))
    study = {"arch": "linear", "study": "budget", "seed": 0, "split": "validation", "base": {"epochs": 40},
             "variations": [{"factor": f, "epochs": e, "points": [pt | {"penalty": p} for p, pts in
                                                                  frontier(0, k).items() for pt in pts]}
                            for f, e, k in ((0.5, 20, 1.3), (2.0, 80, 1.09))]}
    found = budget.study_estimands(study, tmp_path, WIDE, 0.1)
    assert list(found) == [20, 40, 80] and [b["factor"] for b in found.values()] == [0.5, 1.0, 2.0]
    assert [b["estimand"] for b in found.values()] == pytest.approx([0.3 * M, 0.1 * M, 0.09 * M])
    # 20 -> 40 moves by 0.2 M, 40 -> 80 by 0.01 M: neither below 10% of the doubled (0.01 M, 0.009 M)
    assert budget.choose_budget({e: b["estimand"] for e, b in found.items()}, None)["chosen_epochs"] is None
    with pytest.raises(SystemExit, match="validation split"):
        budget.study_estimands(study | {"split": "test"}, tmp_path, WIDE, 0.1)
