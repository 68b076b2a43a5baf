"""benchmarks/stage_times.py's grouping of stages into the core and the studies."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("stage_times", REPO / "benchmarks" / "stage_times.py")
stage_times = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stage_times)


def test_stages_sum_per_group():
    times = {"download": 10.0, "train@linear-0": 100.0, "evaluate@conv-kl": 50.5, "report": 5.0,
             "ablation@conv": 30.0, "wide@1": 20.0, "robustness@conv-budget": 40.0, "robustness@linear-lr": 7.0}
    assert stage_times.group_sums(times) == {"core": 165.5, "recipe ablation": 30.0, "wide code": 20.0,
                                             "budget sensitivity": 40.0, "learning-rate sensitivity": 7.0}
    assert stage_times.group_of("something-new") == "other"
    assert stage_times.group_of("sparse_end@conv") == "extra seeds at the sparse end"
    # The TopK reference is outside the core, though its stages' names start like the core's.
    assert stage_times.group_of("train_topk@conv-1") == stage_times.group_of("evaluate_topk@conv-topk") == \
        "TopK reference"
