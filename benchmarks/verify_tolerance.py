"""How far float rounding moves a retrained frontier point: the measurement behind `make verify`'s tolerances.

    MNIST_MIRROR=../shared/data/mnist python benchmarks/verify_tolerance.py [--out benchmarks/verify_tolerance.json]
        [--points NAME@SEED ...] [--stack ARCH@SEED]

Each point (default: per architecture and compared penalty, the sparsest and densest setting inside the declared
L0 range and the default, seeds in turn) is retrained from scratch alone, as `make verify` does, under several
configurations, each in a fresh process so that its environment variables reach torch:

  alone-2t        train.threads (2) threads, the kernels torch picks on this CPU: what `make verify` runs
  alone-1t        1 thread
  alone-2t-avx2   2 threads, torch's and MKL's AVX2 code paths (ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS):
                  another set of BLAS kernels, as an older CPU would run (skipped where the CPU lacks AVX-512)
  stack-2t        one whole frontier stack (--stack, default the first sampled conv point's architecture and
                  seed), trained as the train stage trains it: its points inside their stack, on this CPU

and each is compared with the committed frontier files, which were trained inside their stacks on the CPU that
made them (named in reports/report.md). Per point and configuration: the largest relative difference in test FVU
and in L0 over the activity thresholds. For scale, the seed-to-seed spread of the same settings (the standard
deviation over seeds of the committed FVU, relative to its mean), which the report's intervals are made of.
The sgemm rate is measured before and after (benchmarks/training_speed.py's).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sae_mnist.verify import compare

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
THRESHOLDS = ("0.01", "0.05", "0.1", "0.2")
CONFIGS = {
    "alone-2t": ({}, 2),
    "alone-1t": ({}, 1),
    "alone-2t-avx2": ({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 2),
}


def default_points(root: Path) -> list[str]:
    """Per architecture and compared penalty: the sparsest and densest setting inside the declared L0 range and
    the default, on seeds 0, 1, 2 in turn."""
    import yaml

    from sae_mnist.verify.retrain import committed_points

    params = yaml.safe_load((root / "params.yaml").read_text())
    theta = f"{params['evaluate']['active_threshold']:g}"
    points, chosen = committed_points(root), []
    for arch in ("linear", "conv"):
        lo, hi = params["sweep"]["l0_range"][arch]
        for penalty in ("l1", "kl"):
            mine = [p for p in points if p.variant == f"{arch}-{penalty}" and p.seed == 0]
            inside = sorted((p for p in mine if lo <= p.metrics[f"l0_at_{theta}"] <= hi),
                            key=lambda p: p.metrics[f"l0_at_{theta}"])
            names = [inside[0].name, next(p.name for p in mine if p.name == f"{arch}-{penalty}"), inside[-1].name]
            chosen += [f"{name}@{seed}" for name, seed in zip(names, (0, 1, 2))]
    return chosen


def worker(labels: list[str], threads: int, stack: str | None, out: Path) -> None:
    """In this process: retrain each point alone (or one whole stack) and write its metrics to `out`."""
    import torch

    from sae_mnist.params import load_params
    from sae_mnist.members import at_rates, frontier_members
    from sae_mnist.rates import read_rates
    from sae_mnist.verify.retrain import (committed_points, load_data, parse_points, prepare_data, retrain,
                                          train_in_memory)

    params = load_params(ROOT / "params.yaml")
    data = load_data(prepare_data(params, Path(os.environ["VERIFY_SCRATCH"]), None, _digest(ROOT)),
                     params.split.validation)
    results = {}
    if stack:
        arch, seed = stack.split("@")
        members = at_rates(frontier_members(params, arch), read_rates(ROOT / "lr_select" / f"{arch}.json", arch),
                           params.train.lr)
        evaluated, seconds = train_in_memory(params, arch, int(seed), members, data, threads, desc=stack)
        results = {f"{p['name']}@{seed}": {"metrics": p["metrics"], "seconds": seconds} for p in evaluated}
    else:
        for point in parse_points(labels, committed_points(ROOT)):
            metrics, seconds = retrain(params, point, data, threads)
            results[point.label] = {"metrics": metrics, "seconds": seconds}
    out.write_text(json.dumps({"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "points": results}))


def _digest(root: Path) -> str:
    return json.loads((root / "reports" / "summary.json").read_text())["data_digest"]


def spread(committed: dict, mine: dict) -> dict:
    """The largest relative difference over the thresholds in FVU and in L0 (compare.compare_point, as make verify
    reports it), and whether every number is equal."""
    rows = compare.compare_point(committed, mine, {"fvu": math.inf, "l0": math.inf})
    return {**{m: max(r["relative_difference"] for r in rows if r["metric"] == m) for m in ("fvu", "l0")},
            "bitwise": all(r["bitwise"] for r in rows)}


def kind(label: str) -> str:
    """The kind of code of the point `label` names, as make verify's tolerance groups them ('kl' or 'relu')."""
    return compare.code_kind(label.split("@")[0].split("-")[1])


def seed_spread(points, label: str) -> dict[str, float]:
    """The committed values' standard deviation over seeds, relative to their mean, of the setting of `label`: the
    smallest over the thresholds, in FVU and in L0."""
    name = label.split("@")[0]
    same = [p.metrics for p in points if p.name == name]
    return {k: min(float(np.std([m[f"{k}_at_{t}"] for m in same], ddof=1) / np.mean([m[f"{k}_at_{t}"] for m in same]))
                   for t in THRESHOLDS) for k in ("fvu", "l0")}


def summarize(measured: dict, points, labels: list[str], stack: str, rates: dict) -> dict:
    """Every measured point against the committed one and, on this CPU, each configuration against alone-2t; the
    largest difference per kind of code and comparison (`worst`) and over all of them (`by_kind`), with the seed
    spreads of the same points for scale."""
    from sae_mnist.provenance import cpu_name, git_commit

    committed = {p.label: p.metrics for p in points}
    table = {}
    for name, result in measured.items():
        for label, r in result["points"].items():
            table.setdefault(label, {"kind": kind(label), "seed_spread": seed_spread(points, label)})[name] = {
                **spread(committed[label], r["metrics"]), "seconds": round(r["seconds"], 1)}
    here = {}
    for a in measured:
        if a != "alone-2t":
            common = sorted(set(measured[a]["points"]) & set(measured["alone-2t"]["points"]))
            here[f"{a} vs alone-2t"] = {label: spread(measured["alone-2t"]["points"][label]["metrics"],
                                                      measured[a]["points"][label]["metrics"]) for label in common}
    worst: dict = {}
    for label, row in table.items():
        for name in measured:
            if name in row:
                cell = worst.setdefault(row["kind"], {}).setdefault(name, {"fvu": 0.0, "l0": 0.0, "points": 0})
                cell.update(fvu=max(cell["fvu"], row[name]["fvu"]), l0=max(cell["l0"], row[name]["l0"]),
                            points=cell["points"] + 1)
    for pair, rows in here.items():
        for label, row in rows.items():
            cell = worst.setdefault(kind(label), {}).setdefault(pair, {"fvu": 0.0, "l0": 0.0, "points": 0})
            cell.update(fvu=max(cell["fvu"], row["fvu"]), l0=max(cell["l0"], row["l0"]), points=cell["points"] + 1)
    overall = {}
    for k, by_config in worst.items():
        spreads = [row["seed_spread"] for row in table.values() if row["kind"] == k]
        overall[k] = {"largest": {m: max(c[m] for c in by_config.values()) for m in ("fvu", "l0")},
                      "smallest_seed_spread": {m: min(s[m] for s in spreads) for m in ("fvu", "l0")},
                      "median_seed_spread": {m: float(np.median([s[m] for s in spreads])) for m in ("fvu", "l0")}}
    return {"git_commit": git_commit(), "cpu": cpu_name(), "sgemm_gflops": rates,
            "committed_on": "the CPU named in reports/report.md (How to cite), inside each point's stack",
            "points": labels, "stack": stack, "by_kind": overall, "worst": worst, "vs_committed": table,
            "on_this_cpu": here}


def run_config(name: str, env: dict, threads: int, labels: list[str], stack: str | None, scratch: Path) -> dict:
    out = scratch / f"{name}.json"
    command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--worker-out", str(out)]
    command += ["--stack", stack] if stack else ["--points", *labels]
    started = time.perf_counter()
    subprocess.run(command, env={**os.environ, **env, "VERIFY_SCRATCH": str(scratch)}, check=True)
    print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="+")
    parser.add_argument("--stack", help="ARCH@SEED: one whole frontier stack (default: conv@ the first conv point's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "verify_tolerance.json")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/verify-tolerance"))
    parser.add_argument("--summarize", action="store_true",
                        help="only summarize again what --scratch holds (the rates and points from --out)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.points or [], args.threads, args.stack, args.worker_out)

    import torch
    from training_speed import matmul_gflops

    from sae_mnist.verify.retrain import committed_points

    points = committed_points(ROOT)
    if args.summarize:
        old = json.loads(args.out.read_text())
        measured = {p.stem: json.loads(p.read_text()) for p in sorted(args.scratch.glob("*.json"))}
        record = summarize(measured, points, old["points"], old["stack"], old["sgemm_gflops"])
    else:
        args.scratch.mkdir(parents=True, exist_ok=True)
        labels = args.points or default_points(ROOT)
        stack = args.stack or "conv@" + next(label.split("@")[1] for label in labels if label.startswith("conv"))
        torch.set_num_threads(2)
        _, rate_before = matmul_gflops(torch.device("cpu"))
        configs = dict(CONFIGS)
        if torch.backends.cpu.get_cpu_capability() != "AVX512":
            del configs["alone-2t-avx2"]  # this CPU already runs the AVX2 paths: nothing else to compare
        measured = {name: run_config(name, env, threads, labels, None, args.scratch)
                    for name, (env, threads) in configs.items()}
        measured["stack-2t"] = run_config("stack-2t", {}, 2, [], stack, args.scratch)
        _, rate_after = matmul_gflops(torch.device("cpu"))
        record = summarize(measured, points, labels, stack, {"before": round(rate_before), "after": round(rate_after)})
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({"by_kind": record["by_kind"], "worst": record["worst"]}, indent=1))


if __name__ == "__main__":
    main()
