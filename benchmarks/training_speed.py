"""Training speed: the stacked trainer against one model at a time, against a seed-style loop, and the machine.

    python benchmarks/training_speed.py [--samples 15360] [--repeats 3] [--stack-sizes 1 5 15]
        [--device auto|cpu|cuda] [--params params.yaml] [--data data/mnist] [--out benchmarks/training_speed.json]
    python benchmarks/training_speed.py --scaling [--samples 15360] [--out benchmarks/scaling.json]

For each architecture, at params.yaml's width, batch size, lr, thread count and first seed, on the
same images and number of samples, it times (each after a warm-up of a few batches, not timed):
  seed-style  torchvision.datasets.MNIST(transform=ToTensor()) + DataLoader(shuffle=True, num_workers=0),
              each batch through sae_mnist.training.train_step: a notebook's loop (L1 penalty);
  single      sae_mnist.training.train_model: one model at a time, autograd, torch's Adam (L1 penalty,
              the training recipe);
  stack K     sae_mnist.training.train_stack on K models at once, a frontier's mix of penalties, on the
              training recipe of params.yaml (centred input, encoder from decoder, schedules):
              K = 1 is one L1 model; otherwise one unpenalised model and the rest split between L1 and KL;
and the float32 rate of a large square matmul (sgemm), measured in the same run, before and after the
loops. Every configuration is timed once per repeat, the repeats interleaved, and the median is reported,
so that a slow spell of the machine hits all configurations alike.

Rates: samples/s per model (each model sees every sample; a stack of K does K model-samples per
sample); GFLOP/s from the training FLOPs of the matmuls (`flops_per_sample`) at that rate; and
that as a fraction of the sgemm rate.

It also times a train stage's start-up, phase by phase, in a fresh interpreter (`--startup-only`
runs just that): what every stage process pays before its first training step.

--scaling instead times the stacked trainer (K = 1, L1) over linear widths x batch sizes and conv
channels, and compares the measured time per 60000-sample epoch with what FLOPs predict.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate
from torch.utils.data import DataLoader, Subset
from torchvision import datasets
from torchvision.transforms import ToTensor

from sae_mnist.data import MNIST_FILES, load_split
from sae_mnist.models import build_model
from sae_mnist.params import ARCHITECTURES, ConvParams, LinearParams, ModelParams, load_params
from sae_mnist.penalties import KLPenalty, L1Penalty, NoPenalty
from sae_mnist.provenance import cpu_name, device_name, git_commit
from sae_mnist.stacked import STACKS
from sae_mnist.training import initial_model, seed_everything, select_device, train_model, train_stack, train_step

WARMUP_BATCHES = 3
EPOCH_SAMPLES = 60_000  # --scaling reports time per full MNIST epoch
SCALING_LINEAR = [(hidden, batch) for hidden in (256, 1024, 4096) for batch in (64, 256, 1024)]
SCALING_CONV = [(channels, 256) for channels in (16, 32, 64)]
STARTUP_PHASES = """
import time, json, sys
t = {"start": time.perf_counter()}
import torch; t["import torch"] = time.perf_counter()
import mlflow; t["import mlflow"] = time.perf_counter()
import pandas; t["import pandas"] = time.perf_counter()
from sae_mnist import tracking
from sae_mnist.data import load_split
from sae_mnist.provenance import environment, git_commit
t["import sae_mnist"] = time.perf_counter()
split = load_split(sys.argv[1], "train"); t["read MNIST (gunzip, parse, verify)"] = time.perf_counter()
from sae_mnist.stacked import StackedConv
StackedConv.prepare(torch.from_numpy(split.images.copy())); t["cut conv patches"] = time.perf_counter()
tracking.init_store("startup"); t["MLflow store (new SQLite: schema)"] = time.perf_counter()
tracking.init_store("startup"); t["MLflow store (existing)"] = time.perf_counter()
environment(torch.device("cpu")), git_commit(); t["provenance (git, packages)"] = time.perf_counter()
names = list(t)
print(json.dumps({b: t[b] - t[a] for a, b in zip(names, names[1:])}))
"""


def flops_per_sample(arch: str, model: ModelParams) -> int:
    """Training FLOPs per image and model: the matmuls of one step, 2 FLOPs per multiply-add.

    A step does five passes of one layer's multiply-adds: encoder forward, decoder forward, the
    decoder's weight gradient and input gradient (the code's gradient), the encoder's weight
    gradient. The encoder's input gradient is never computed (the input needs none).
    linear: each layer pass is 784 x hidden; conv: channels x 64 (8x8 kernel, 1 input channel) at each
    of the 7 x 7 code positions. Elementwise work (activation, loss, penalty, Adam, decoder
    normalisation, the transposed convolution's overlapping adds) is left out.
    """
    layer = 784 * model.linear.hidden if arch == "linear" else model.conv.channels * 64 * 49
    return 2 * 5 * layer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def matmul_gflops(device: torch.device, repeats: int = 10) -> tuple[int, float]:
    """Median float32 rate of an n x n matmul (4096 on CPU, 8192 on GPU), after warm-ups."""
    n = 8192 if device.type == "cuda" else 4096
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    seconds = statistics.median(timed(device, lambda: a @ b) for _ in range(repeats))
    return n, 2 * n**3 / seconds / 1e9


def torchvision_mnist(data_dir: Path, root: Path) -> datasets.MNIST:
    """The project's IDX files, decompressed to <root>/MNIST/raw/ so torchvision loads them offline."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for spec in MNIST_FILES:
        (raw / spec.name).write_bytes(gzip.decompress((data_dir / f"{spec.name}.gz").read_bytes()))
    return datasets.MNIST(root, train=True, transform=ToTensor(), download=False)


def frontier_penalties(k: int, params, arch: str) -> list:
    """K models as a frontier stack mixes them: K = 1 is one L1 model; else one unpenalised, the rest L1 and KL."""
    lam, kl = params.penalty.of("l1", arch).lam, params.penalty.of("kl", arch)
    if k == 1:
        return [L1Penalty(lam)]
    n_l1 = (k - 1) // 2
    return ([NoPenalty()] + [L1Penalty(lam * 2 ** (i - n_l1 // 2)) for i in range(n_l1)]
            + [KLPenalty(kl.beta * 2 ** (i - (k - 1 - n_l1) // 2), kl.rho) for i in range(k - 1 - n_l1)])


def new_model(arch, penalty, model_params, seed, device, recipe=None, mean_image=None):
    """A model as the train stage starts it (training.initial_model); without a recipe, the plain initialisation."""
    if recipe is None:
        seed_everything(seed)
        model = build_model(arch, model_params, penalty.activate)
        model.init_code_bias(penalty.code_bias_init)
        return model.to(device)
    return initial_model(arch, model_params, penalty, recipe, seed, mean_image).to(device)


def seed_style_seconds(arch, model_params, train, params, dataset, n, seed, device) -> float:
    penalty = L1Penalty(params.penalty.of("l1", arch).lam)
    model = new_model(arch, penalty, model_params, seed, device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr)

    def run(count: int) -> None:
        first = Subset(dataset, range(min(count, len(dataset))))
        loader = DataLoader(first, batch_size=train.batch_size, shuffle=True)  # num_workers=0, like a notebook
        for x, _ in loader:
            train_step(model, penalty, optimizer, x.to(device))  # the project's step: only the data feed differs

    run(WARMUP_BATCHES * train.batch_size)
    return timed(device, lambda: run(n))


def single_seconds(arch, model_params, train, params, images, n, seed, device) -> float:
    penalty = L1Penalty(params.penalty.of("l1", arch).lam)
    mean_image = images[:n].float().div(255).mean(0, keepdim=True)
    model = new_model(arch, penalty, model_params, seed, device, params.recipe, mean_image)
    train_model(model, penalty, images[: WARMUP_BATCHES * train.batch_size], train, seed, device, recipe=params.recipe,
                desc="warm-up")
    return timed(device, lambda: train_model(model, penalty, images[:n], train, seed, device, recipe=params.recipe,
                                             desc="single"))


def stack_seconds(arch, k, model_params, train, params, images, n, seed, device, penalties=None) -> float:
    penalties = penalties or frontier_penalties(k, params, arch)
    mean_image = images[:n].float().div(255).mean(0, keepdim=True)
    stack = STACKS[arch].from_models([new_model(arch, p, model_params, seed, torch.device("cpu"), params.recipe, mean_image)
                                      for p in penalties])
    names, recipes = [f"m{i}" for i in range(k)], [params.recipe] * k
    train_stack(stack, penalties, names, images[: WARMUP_BATCHES * train.batch_size], train, seed, device,
                recipes=recipes, desc="warm-up")
    return timed(device, lambda: train_stack(stack, penalties, names, images[:n], train, seed, device,
                                             recipes=recipes, desc=f"stack K={k}"))


def compare_loops(args, params, images, n, seed, device) -> tuple[dict, str]:
    train = params.train.of("linear").model_copy(update={"epochs": 1})  # the same settings for both architectures
    loops = [(arch, loop) for arch in ARCHITECTURES for loop in ["seed-style", "single", *[f"stack K={k}" for k in args.stack_sizes]]]
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in loops}
    sgemm = []
    with tempfile.TemporaryDirectory(prefix="mnist-torchvision-") as root:
        dataset = torchvision_mnist(args.data, Path(root))
        assert torch.equal(dataset.data[:n], images[:n]), "torchvision and the project read different images"
        for rep in range(args.repeats):
            sgemm.append(matmul_gflops(device)[1])
            for arch, loop in loops:
                common = (arch, params.model, train, params)
                if loop == "seed-style":
                    s = seed_style_seconds(*common, dataset, n, seed, device)
                elif loop == "single":
                    s = single_seconds(*common, images, n, seed, device)
                else:
                    s = stack_seconds(arch, int(loop.split("=")[1]), *common[1:], images, n, seed, device)
                seconds[(arch, loop)].append(s)
                print(f"[{rep + 1}/{args.repeats}] {arch} {loop}: {s:.2f} s for {n} samples", flush=True)
        size, last = matmul_gflops(device)
        sgemm.append(last)
    peak = statistics.median(sgemm)
    results, rows = [], []
    for arch, loop in loops:
        k = int(loop.split("=")[1]) if loop.startswith("stack") else 1
        per_model = n / statistics.median(seconds[(arch, loop)])
        gflops = per_model * k * flops_per_sample(arch, params.model) / 1e9
        single_rate = n / statistics.median(seconds[(arch, "single")])
        seed_rate = n / statistics.median(seconds[(arch, "seed-style")])
        results.append({
            "arch": arch, "loop": loop, "models": k, "seconds": [round(s, 4) for s in seconds[(arch, loop)]],
            "samples_per_s_per_model": round(per_model, 1), "model_samples_per_s": round(per_model * k, 1),
            "flops_per_sample": flops_per_sample(arch, params.model), "gflops": round(gflops, 2),
            "fraction_of_sgemm": round(gflops / peak, 4),
            "model_samples_per_s_vs_single": round(per_model * k / single_rate, 3),
            "model_samples_per_s_vs_seed_style": round(per_model * k / seed_rate, 3),
        })
        rows.append([arch, loop, f"{per_model:,.0f}", f"{per_model * k:,.0f}", f"{gflops:.1f}", f"{gflops / peak:.0%}",
                     f"{per_model * k / single_rate:.2f}x", f"{per_model * k / seed_rate:.2f}x"])
    headers = ["arch", "loop", "samples/s per model", "model-samples/s", "GFLOP/s", "of sgemm",
               "vs single", "vs seed-style"]
    table = tabulate(rows, headers, tablefmt="github", stralign="right")
    table += (f"\nsgemm ({size}x{size} float32): median {peak:.1f} GFLOP/s of {len(sgemm)} measurements "
              f"({min(sgemm):.1f} to {max(sgemm):.1f}), taken between the repeats")
    return {"sgemm": {"size": size, "gflops": round(peak, 2), "measurements": [round(g, 2) for g in sgemm]},
            "loops": results}, table


def startup(data_dir: Path) -> tuple[dict, str]:
    """A train stage's start-up, phase by phase, in a fresh interpreter (median of 3), and the bare interpreter."""
    runs, bare = [], []
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        for _ in range(3):
            for f in Path(tmp).glob("mlflow.db*"):
                f.unlink()  # a new store each time
            env = {**os.environ, "DVC_ROOT": tmp, "MLFLOW_TRACKING_URI": ""}
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - started)
            out = subprocess.run([sys.executable, "-c", STARTUP_PHASES, str(data_dir.resolve())], env=env, check=True,
                                 capture_output=True, text=True, cwd=tmp).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    phases = {"python interpreter": statistics.median(bare)}
    phases |= {name: statistics.median(r[name] for r in runs) for name in runs[0]}
    rows = [[name, f"{s:.2f}"] for name, s in phases.items()]
    rows.append(["total", f"{sum(phases.values()):.2f}"])
    return {k: round(v, 3) for k, v in phases.items()}, tabulate(rows, ["start-up phase", "seconds"], tablefmt="github")


def scaling(args, params, images, n, seed, device) -> tuple[list, str]:
    configs = [("linear", w, b) for w, b in SCALING_LINEAR] + [("conv", c, b) for c, b in SCALING_CONV]
    results = []
    for arch, size, batch in configs:
        layer = LinearParams(hidden=size) if arch == "linear" else ConvParams(channels=size)
        model_params = params.model.model_copy(update={arch: layer})
        train = params.train.of(arch).model_copy(update={"epochs": 1, "batch_size": batch})
        seconds = statistics.median(stack_seconds(arch, 1, model_params, train, params, images, n, seed, device)
                                    for _ in range(args.repeats))
        epoch_s = seconds / n * EPOCH_SAMPLES
        print(f"{arch} {'hidden' if arch == 'linear' else 'channels'}={size} batch={batch}: "
              f"{n / seconds:,.0f} samples/s, {epoch_s:.2f} s/epoch", flush=True)
        results.append({"arch": arch, "size": size, "batch_size": batch, "samples_per_s": round(n / seconds, 1),
                        "epoch_s": round(epoch_s, 3), "flops_per_sample": flops_per_sample(arch, model_params)})
    ref = next(r for r in results if (r["arch"], r["size"], r["batch_size"]) == ("linear", 256, 256))
    rows = []
    for r in results:
        r["predicted_ratio"] = round(r["flops_per_sample"] / ref["flops_per_sample"], 3)
        r["measured_ratio"] = round(r["epoch_s"] / ref["epoch_s"], 3)
        rows.append([r["arch"], r["size"], r["batch_size"], f"{r['samples_per_s']:,.0f}", f"{r['epoch_s']:.2f}",
                     f"{r['predicted_ratio']:.2f}", f"{r['measured_ratio']:.2f}"])
    headers = ["arch", "hidden / channels", "batch", "samples/s", "s per 60k epoch",
               "predicted ratio (FLOPs)", "measured ratio"]
    return results, tabulate(rows, headers, tablefmt="github") + "\n(ratios relative to linear hidden 256, batch 256)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/mnist"))
    parser.add_argument("--out", type=Path,
                        help="default benchmarks/training_speed.json (--scaling: benchmarks/scaling.json)")
    parser.add_argument("--samples", type=int, default=15360, help="samples per timed loop (capped by the data)")
    parser.add_argument("--stack-sizes", type=int, nargs="+", default=[1, 5, 15])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: params.yaml's train.device")
    parser.add_argument("--repeats", type=int, default=3, help="time each loop this many times; report the median")
    parser.add_argument("--scaling", action="store_true", help="time the stacked trainer over model and batch sizes")
    parser.add_argument("--startup-only", action="store_true", help="only time a stage's start-up")
    args = parser.parse_args()
    out = args.out or Path("benchmarks/scaling.json" if args.scaling else "benchmarks/training_speed.json")

    params = load_params(args.params)
    torch.set_num_threads(params.train.threads)
    device = select_device(args.device or params.train.device)
    seed = params.seeds[0]
    images = torch.from_numpy(load_split(args.data, "train").images.copy())
    n = min(args.samples, len(images))
    load_before = os.getloadavg()[0]  # other processes on the CPUs slow the loops down, erratically
    print(f"device {device_name(device)}, torch {torch.__version__}, {n} samples per measurement, "
          f"load average {load_before:.1f} on {os.cpu_count()} CPUs", flush=True)

    if args.scaling:
        results, table = scaling(args, params, images, n, seed, device)
        measured = {"scaling": results}
    elif args.startup_only:
        phases, table = startup(args.data)
        measured = {"startup_s": phases}
    else:
        measured, table = compare_loops(args, params, images, n, seed, device)
        phases, startup_table = startup(args.data)
        measured["startup_s"] = phases
        table += "\n\n" + startup_table
    print("\n" + table)

    record = {
        "device": device_name(device), "cpu": cpu_name(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "git_commit": git_commit(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "settings": {
            "samples": n, "warmup_batches": WARMUP_BATCHES, "repeats": args.repeats, "seed": seed,
            "stack_sizes": args.stack_sizes, "train": params.train.model_dump(), "model": params.model.model_dump(),
            "penalty": params.penalty.model_dump(),
        },
        **measured,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
