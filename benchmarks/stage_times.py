"""Run pipeline stages one at a time and time each, process start-up included; sum them per group.

    python benchmarks/stage_times.py [--stages PATTERN ...] [--force] [--skip STAGE ...]
        [--out benchmarks/stage_times_reference.json] [--merge]

Stages run in `dvc stage list` order (a valid order: download, train@*, evaluate@*, ..., report) with
`dvc repro --single-item`, so the times are what `dvc repro` spends on each. --stages keeps the stages
matching any of the glob patterns (e.g. 'train@linear-*' 'evaluate@linear-*'). With --merge the times are
added to those already in --out (of the stages dvc.yaml still has) (a reference run done in parts, each part committed: every stage keeps the
commit, sgemm rate and date it was measured at). Prints a Markdown table and writes the numbers, with the
machine and the float32 sgemm rate before and after each part, to JSON, with the sums per group: the core
(what the verdict, checks and tables rest on) and each study (GROUPS).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from sae_mnist.provenance import cpu_name, git_commit  # noqa: E402

# Stage name patterns per group; a stage belongs to the first group one of whose patterns it matches.
GROUPS = {
    "core": ["download", "train@*", "evaluate@*", "baselines", "report"],
    "recipe ablation": ["ablation@*"],
    "wide code": ["wide@*"],
    "budget sensitivity": ["robustness@*-budget"],
    "learning-rate sensitivity": ["robustness@*-lr"],
    # one study per architecture: each is its own stage, needing nothing of the other (docs/design/verdict-protocol.md)
    "learning-rate selection, linear": ["lr_select@linear"],
    "learning-rate selection, conv": ["lr_select@conv"],
    "extra seeds at the sparse end": ["sparse_end@*"],  # section 3's seeds for points 3 seeds leave unresolved
    "TopK reference": ["train_topk@*", "evaluate_topk@*"],  # a reference frontier beside the verdict
    "probes along the frontiers": ["probes@*"],  # the compared frontiers' other points (the defaults: evaluate)
}
TARGETS_S = {"core": 5400, "study": 3600}  # issue 22: core at most 90 min, each study at most 60 min


def group_of(stage: str) -> str:
    return next((g for g, patterns in GROUPS.items() if any(fnmatch.fnmatch(stage, p) for p in patterns)), "other")


def group_sums(stages_s: dict[str, float]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for stage, seconds in stages_s.items():
        sums[group_of(stage)] = round(sums.get(group_of(stage), 0.0) + seconds, 1)
    return sums


def sgemm_rate() -> float:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from training_speed import matmul_gflops  # this directory's, as flop_bound.py does

    torch.set_num_threads(2)
    return round(matmul_gflops(torch.device("cpu"))[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="*", default=["*"], help="glob patterns of the stages to run (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run stages even when DVC finds them up to date")
    parser.add_argument("--skip", nargs="*", default=[], help="stages not to run (e.g. download when data are present)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/stage_times_reference.json"))
    parser.add_argument("--merge", action="store_true", help="add to the stages already in --out")
    args = parser.parse_args()

    listed = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True,
                            check=True).stdout.split()
    stages = [s for s in listed if s not in args.skip and any(fnmatch.fnmatch(s, p) for p in args.stages)]
    previous = json.loads(args.out.read_text()) if args.merge and args.out.is_file() else {}
    part = {"git_commit": git_commit(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sgemm_gflops_before": sgemm_rate(), "stages": stages}
    # A stage renamed or removed since an earlier part no longer counts.
    times = {s: t for s, t in previous.get("stages_s", {}).items() if s in listed}
    measured = {s: m for s, m in previous.get("measured", {}).items() if s in listed}
    for stage in stages:
        started = time.perf_counter()
        subprocess.run(["dvc", "repro", "--single-item", *(["--force"] if args.force else []), stage], check=True)
        times[stage] = round(time.perf_counter() - started, 1)
        measured[stage] = {"git_commit": part["git_commit"], "part": len(previous.get("parts", []))}
        print(f"{stage}: {times[stage]} s", flush=True)
    part["sgemm_gflops_after"] = sgemm_rate()

    sums = group_sums(times)
    print("\n| stage | group | wall time (s) |\n| --- | --- | ---: |")
    for stage, seconds in times.items():
        print(f"| {stage} | {group_of(stage)} | {seconds} |")
    for group, seconds in sums.items():
        target = TARGETS_S["core" if group == "core" else "study"]
        print(f"| **{group}** | | **{seconds}** (target ≤ {target}) |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": f"{cpu_name()}, {platform.machine()}",
        "sgemm_note": "4096^2 float32 matmul, 2 threads, median of 5, before and after each part",
        "parts": [*previous.get("parts", []), part],
        "stages_s": times,
        "measured": measured,
        "groups": {g: patterns for g, patterns in GROUPS.items()},
        "group_s": sums,
        "core_s": sums.get("core"),
        "targets_s": TARGETS_S,
        "total_s": round(sum(times.values()), 1),
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
