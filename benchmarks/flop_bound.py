"""The default pipeline's training FLOPs, the time they need at the measured sgemm rate, and the measured time.

    python benchmarks/flop_bound.py [--times benchmarks/stage_times_reference.json] [--out benchmarks/flop_bound.json]

Counts every model the training stages train (frontier stacks per arch and seed, the recipe ablation, the
wide models) with `flops_per_sample` of benchmarks/training_speed.py (the five matmul passes of a step),
times the samples each sees (epochs x training images). The bound is those FLOPs at the sgemm rate measured
here, now: no training loop can beat it on this machine. The ratio compares it with the training stages'
wall times in the stage-times file (run on the same machine: say so when you quote it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import torch  # noqa: E402
from training_speed import flops_per_sample, matmul_gflops  # noqa: E402

from sae_mnist.params import LinearParams, load_params  # noqa: E402
from sae_mnist.provenance import cpu_name  # noqa: E402
from sae_mnist.stages.ablation import ablation_members  # noqa: E402
from sae_mnist.members import frontier_members  # noqa: E402

TRAINING_IMAGES = 60_000
TRAINING_STAGES = ("train@", "ablation@", "wide@")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
parser.add_argument("--times", type=Path, default=ROOT / "benchmarks/stage_times_reference.json")
parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/flop_bound.json")
args = parser.parse_args()

params = load_params(args.params)
training_images = params.train.max_samples or TRAINING_IMAGES
epochs = params.train.epochs
wide_model = params.model.model_copy(update={"linear": LinearParams(hidden=params.wide.hidden)})
groups = []  # (what, models, FLOPs per image and model, images each model sees)
for arch in ("linear", "conv"):
    images = training_images * getattr(epochs, arch)
    groups.append((f"{arch} frontier stacks ({len(params.seeds)} seeds, {getattr(epochs, arch)} epochs)",
                   len(frontier_members(params, arch)) * len(params.seeds), flops_per_sample(arch, params.model), images))
    groups.append((f"{arch} recipe ablation", len(ablation_members(params, arch)), flops_per_sample(arch, params.model),
                   images))
groups.append((f"wide linear (hidden {params.wide.hidden}, {len(params.seeds)} seeds)", 3 * len(params.seeds),
               flops_per_sample("linear", wide_model), training_images * epochs.linear))

torch.set_num_threads(params.train.threads or torch.get_num_threads())
_, sgemm = matmul_gflops(torch.device("cpu"))
total = sum(models * per * images for _, models, per, images in groups)
bound_s = total / (sgemm * 1e9)
times = json.loads(args.times.read_text()) if args.times.is_file() else None
training_s = sum(s for stage, s in times["stages_s"].items() if stage.startswith(TRAINING_STAGES)) if times else None

print("| models | count | MFLOP per image | TFLOP |\n| --- | ---: | ---: | ---: |")
for what, models, per, images in groups:
    print(f"| {what} | {models} | {per / 1e6:.2f} | {models * per * images / 1e12:.0f} |")
print(f"| **total** ({training_images:,} training images per epoch) | {sum(g[1] for g in groups)} | | "
      f"**{total / 1e12:.0f}** |")
print(f"\nsgemm here: {sgemm:.0f} GFLOP/s -> bound {bound_s / 60:.1f} min")
if training_s:
    print(f"training stages measured ({args.times.name}): {training_s / 60:.1f} min = {training_s / bound_s:.2f} x bound")
args.out.write_text(json.dumps({
    "machine": f"{cpu_name()}, {platform.machine()}",
    "sgemm_gflops": round(sgemm, 1),
    "groups": [{"models": what, "count": models, "flops_per_image": per, "images_per_model": images}
               for what, models, per, images in groups],
    "total_tflop": round(total / 1e12, 1),
    "bound_s": round(bound_s, 1),
    "training_stages_s": training_s,
    "ratio_to_bound": round(training_s / bound_s, 2) if training_s else None,
}, indent=2) + "\n")
