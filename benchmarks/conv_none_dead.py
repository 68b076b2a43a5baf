"""When do the unpenalised conv model's near-dead channels stop firing? (issue 33: conv-none at most 1 dead channel)

    python benchmarks/conv_none_dead.py [--seeds 0 2] [--epochs 1 2 5 20] [--out benchmarks/conv_none_dead.json]

The report counts a channel dead when it is above evaluate.active_threshold at no position of any test image;
conv-none has 2 such channels on seed 0 (0 on seeds 1 and 2). Here, per seed, conv-none (the train stage's member,
initialisation and recipe, at train.lr, on the fit split) is read on the validation split at initialisation and
after training for each of `--epochs` (each budget its own run with its own schedule, as the budget study trains):
every channel active above the threshold on fewer than 1% of the validation images, with that fraction. A diagnosis
on the validation split; nothing here feeds the pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

RARE = 0.01  # a channel firing on fewer than this fraction of images is listed


def rare_channels(model, x, threshold: float, batch_size: int) -> dict[int, float]:
    """{channel: the fraction of images on which it is above `threshold` anywhere} for those under RARE."""
    from sae_mnist.heldout import encode_all
    from sae_mnist.metrics import firing_frequency

    _, z = encode_all(model, x, batch_size)
    freq = firing_frequency(z, threshold)
    return {int(c): float(freq[c]) for c in (freq < RARE).nonzero().flatten()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 5, 20])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/mnist"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/conv_none_dead.json"))
    args = parser.parse_args()

    import torch
    from training_speed import matmul_gflops

    from sae_mnist.data import load_split
    from sae_mnist.members import Member, initial_stack
    from sae_mnist.params import NoPenaltyParams, load_params
    from sae_mnist.provenance import git_commit
    from sae_mnist.training import to_float_images, train_stack

    params = load_params(args.params)
    torch.set_num_threads(params.train.threads)
    cpu = torch.device("cpu")
    fit = torch.from_numpy(load_split(args.data, "fit", params.split.validation).images.copy())
    validation = load_split(args.data, "validation", params.split.validation)
    x_val = to_float_images(torch.from_numpy(validation.images.copy()), cpu)
    threshold, batch = params.evaluate.active_threshold, params.evaluate.batch_size
    member = Member("conv", "none", NoPenaltyParams(), True, params.recipe)
    _, rate_before = matmul_gflops(cpu)
    rows = []
    for seed in args.seeds:
        for epochs in [0, *args.epochs]:
            penalties, models, stack = initial_stack("conv", params.model, [member], seed, fit)
            if epochs:
                training = params.train.of("conv").model_copy(update={"epochs": epochs})
                train_stack(stack, penalties, [member.name], fit, training, seed, cpu, recipes=[member.recipe],
                            lrs=[training.lr], desc=f"seed {seed}, {epochs} epochs")
            models[0].load_state_dict(stack.export(0))
            rare = rare_channels(models[0], x_val, threshold, batch)
            rows.append({"seed": seed, "epochs": epochs, "rare_channels": rare})
            print(f"seed {seed}, {epochs} epochs: channels above {threshold:g} on < {RARE:.0%} of validation images: "
                  f"{ {c: round(f, 4) for c, f in rare.items()} }", flush=True)
    _, rate_after = matmul_gflops(cpu)
    args.out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "split": "validation", "threshold": threshold,
        "lr": params.train.lr, "channels": params.model.conv.channels, "rare_below": RARE, "runs": rows,
        "git_commit": git_commit(), "sgemm_gflops": {"before": round(rate_before), "after": round(rate_after)}},
        indent=2) + "\n")
    print(f"sgemm {rate_before:.0f} / {rate_after:.0f} GFLOP/s; written to {args.out}")


if __name__ == "__main__":
    main()
