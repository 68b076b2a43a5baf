"""Training speed: the project's loop against a seed-style torchvision loop, and the machine's matmul rate.

    python benchmarks/training_speed.py [--variants linear-l1 conv-kl ...] [--samples 15360]
        [--repeats 1] [--device auto|cpu|cuda] [--params params.yaml] [--data data/mnist]
        [--out benchmarks/training_speed.json]
    python benchmarks/training_speed.py --scaling [--samples 15360] [--out benchmarks/scaling.json]

For every variant, at params.yaml's batch size, lr, thread count and first seed, it times
  seed-style  torchvision.datasets.MNIST(transform=ToTensor()) + DataLoader(shuffle=True, num_workers=0),
              each batch through sae_mnist.training.train_step (forward, recon + penalty, backward, Adam,
              decoder normalisation), as the project's loop does;
  project     sae_mnist.training.train_model for one epoch over the first --samples images;
on the same images and number of samples, each after a warm-up of a few batches (not timed), and
the float32 rate of one large square matmul. Prints a table and writes the numbers to JSON.

--scaling instead times the project loop (penalty l1) over linear widths x batch sizes and conv
channels, and compares the measured time per 60000-sample epoch with what FLOPs predict.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
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
from sae_mnist.params import ARCHITECTURES, PENALTIES, ConvParams, LinearParams, ModelParams, load_params
from sae_mnist.penalties import build_penalty
from sae_mnist.provenance import cpu_name, device_name, git_commit
from sae_mnist.training import seed_everything, select_device, train_model, train_step

VARIANTS = [f"{arch}-{penalty}" for arch in ARCHITECTURES for penalty in PENALTIES]
WARMUP_BATCHES = 3
EPOCH_SAMPLES = 60_000  # --scaling reports time per full MNIST epoch
SCALING_LINEAR = [(hidden, batch) for hidden in (256, 1024, 4096) for batch in (64, 256, 1024)]
SCALING_CONV = [(channels, 256) for channels in (16, 32, 64)]


def flops_per_sample(arch: str, model: ModelParams) -> int:
    """Training FLOPs per image: forward multiply-adds x 2 (FLOPs per MAC) x 3 (forward + backward).

    linear: encoder and decoder are each a 784 x hidden matmul.
    conv:   encoder conv and decoder transposed conv each do channels x 64 (8x8 kernel, 1 input
            channel) MACs at each of the 7 x 7 code positions.
    Elementwise work (activation, loss, penalty, Adam, decoder normalisation) is left out.
    """
    macs = 2 * 784 * model.linear.hidden if arch == "linear" else 2 * model.conv.channels * 64 * 49
    return 3 * 2 * macs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def matmul_gflops(device: torch.device, repeats: int = 3) -> tuple[int, float]:
    """Median float32 rate of an n x n matmul (4096 on CPU, 8192 on GPU), after one warm-up."""
    n = 8192 if device.type == "cuda" else 4096
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
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


def build_variant(arch, penalty_name, model_params, params, seed, device):
    penalty = build_penalty(penalty_name, arch, params.penalty)
    seed_everything(seed)
    return build_model(arch, model_params, penalty.activation).to(device).train(), penalty


def seed_style_seconds(arch, penalty_name, model_params, train, params, dataset, n, seed, device) -> float:
    model, penalty = build_variant(arch, penalty_name, model_params, params, seed, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr)

    def run(count: int) -> None:
        first = Subset(dataset, range(min(count, len(dataset))))
        loader = DataLoader(first, batch_size=train.batch_size, shuffle=True)  # num_workers=0, like a notebook
        for x, _ in loader:
            train_step(model, penalty, optimizer, x.to(device))  # the project's step: only the data feed differs

    run(WARMUP_BATCHES * train.batch_size)
    return timed(device, lambda: run(n))


def project_seconds(arch, penalty_name, model_params, train, params, images, n, seed, device) -> float:
    model, penalty = build_variant(arch, penalty_name, model_params, params, seed, device)
    train_model(model, penalty, images[: WARMUP_BATCHES * train.batch_size], train, seed, device, desc="warm-up")
    return timed(device, lambda: train_model(model, penalty, images[:n], train, seed, device, desc="project"))


def compare_loops(args, params, images, n, seed, device, gflops) -> tuple[list, str]:
    train = params.train.model_copy(update={"epochs": 1})
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="mnist-torchvision-") as root:
        dataset = torchvision_mnist(args.data, Path(root))
        assert torch.equal(dataset.data[:n], images[:n]), "torchvision and the project read different images"
        for variant in args.variants:
            arch, penalty_name = variant.split("-")
            seed_s, project_s = [], []
            for rep in range(args.repeats):
                common = (arch, penalty_name, params.model, train, params)
                seed_s.append(seed_style_seconds(*common, dataset, n, seed, device))
                project_s.append(project_seconds(*common, images, n, seed, device))
                print(f"{variant} [{rep + 1}/{args.repeats}]: seed-style {seed_s[-1]:.2f} s, "
                      f"project {project_s[-1]:.2f} s for {n} samples", flush=True)
            seed_rate, project_rate = n / statistics.median(seed_s), n / statistics.median(project_s)
            achieved = project_rate * flops_per_sample(arch, params.model) / 1e9
            results.append({
                "variant": variant, "seed_style_s": [round(s, 4) for s in seed_s],
                "project_s": [round(s, 4) for s in project_s],
                "seed_style_samples_per_s": round(seed_rate, 1), "project_samples_per_s": round(project_rate, 1),
                "ratio_project_to_seed_style": round(project_rate / seed_rate, 3),
                "flops_per_sample": flops_per_sample(arch, params.model),
                "project_gflops": round(achieved, 2), "fraction_of_matmul": round(achieved / gflops, 4),
            })
            rows.append([variant, f"{seed_rate:,.0f}", f"{project_rate:,.0f}", f"{project_rate / seed_rate:.2f}x",
                         f"{achieved:.1f}", f"{achieved / gflops:.1%}"])
    headers = ["variant", "seed-style samples/s", "project samples/s", "project / seed-style",
               "project GFLOP/s", "of matmul rate"]
    return results, tabulate(rows, headers, tablefmt="github", stralign="right")


def scaling(args, params, images, n, seed, device) -> tuple[list, str]:
    configs = [("linear", w, b) for w, b in SCALING_LINEAR] + [("conv", c, b) for c, b in SCALING_CONV]
    results = []
    for arch, size, batch in configs:
        layer = LinearParams(hidden=size) if arch == "linear" else ConvParams(channels=size)
        model_params = params.model.model_copy(update={arch: layer})
        train = params.train.model_copy(update={"epochs": 1, "batch_size": batch})
        seconds = statistics.median(
            project_seconds(arch, "l1", model_params, train, params, images, n, seed, device)
            for _ in range(args.repeats)
        )
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
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--samples", type=int, default=15360, help="samples per timed loop (capped by the data)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: params.yaml's train.device")
    parser.add_argument("--repeats", type=int, default=1, help="time each loop this many times; report the median")
    parser.add_argument("--scaling", action="store_true", help="time the project loop over model sizes and batch sizes")
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
    else:
        size, gflops = matmul_gflops(device)
        print(f"float32 matmul {size}x{size}: {gflops:.1f} GFLOP/s", flush=True)
        results, table = compare_loops(args, params, images, n, seed, device, gflops)
        table += f"\nfloat32 matmul rate ({size}x{size}): {gflops:.1f} GFLOP/s"
        measured = {"matmul": {"size": size, "gflops": round(gflops, 2)}, "variants": results}
    print("\n" + table)

    record = {
        "device": device_name(device), "cpu": cpu_name(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "git_commit": git_commit(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "settings": {
            "samples": n, "warmup_batches": WARMUP_BATCHES, "repeats": args.repeats, "seed": seed,
            "train": params.train.model_dump(), "model": params.model.model_dump(),
            "penalty": params.penalty.model_dump(), "data": str(args.data), "params_file": str(args.params),
        },
        **measured,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
