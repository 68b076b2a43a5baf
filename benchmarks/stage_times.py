"""Run the pipeline one stage at a time and time each, process start-up included.

    python benchmarks/stage_times.py [--force] [--out benchmarks/stage_times.json]

Stages run in `dvc stage list` order (a valid order: download, train@*, evaluate@*,
report) with `dvc repro --single-item`, so the times are what `dvc repro` spends on
each. Prints a Markdown table and writes the numbers, with the machine, to JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from sae_mnist.provenance import cpu_name, git_commit  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--force", action="store_true", help="re-run stages even when DVC finds them up to date")
parser.add_argument("--skip", nargs="*", default=[], help="stages not to run (e.g. download when data are present)")
parser.add_argument("--out", type=Path, default=Path("benchmarks/stage_times.json"))
args = parser.parse_args()

stages = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True, check=True).stdout.split()
times = {}
for stage in stages:
    if stage in args.skip:
        continue
    started = time.perf_counter()
    subprocess.run(["dvc", "repro", "--single-item", *(["--force"] if args.force else []), stage], check=True)
    times[stage] = round(time.perf_counter() - started, 1)

total = round(sum(times.values()), 1)
print("\n| stage | wall time (s) |\n| --- | ---: |")
for stage, seconds in times.items():
    print(f"| {stage} | {seconds} |")
print(f"| **total** | **{total}** |")
args.out.parent.mkdir(parents=True, exist_ok=True)
args.out.write_text(json.dumps({
    "machine": f"{cpu_name()}, {platform.machine()}",
    "git_commit": git_commit(),
    "stages_s": times,
    "total_s": total,
}, indent=2) + "\n")
