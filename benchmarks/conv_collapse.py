"""Does gradient clipping stop conv L1 from losing its channels at its chosen rate? (issue 33)

    python benchmarks/conv_collapse.py [--seeds 0 2] [--lams 0.1 0.15 0.3] [--out benchmarks/conv_collapse.json]

At conv L1's chosen rate (lr_select/conv.json, ×27 of train.lr), L1 runs lose up to 27 of their 32 channels, at
random per seed (the report's *Dead units along the frontiers*), and SAELens's gradient clipping at norm 1 closes
most of linear L1's dense-end gap to SAELens (benchmarks/dense_end_gap.py). Here, per seed, the conv L1 settings
`--lams` are trained as one stack with the recipe without gradient clipping and, in the same stack, with each model's
gradient clipped to norm 1 before every step (recipe.grad_clip 1), on the fit split, 20 epochs, and read on the
validation split: L0, FVU (truncated code at evaluate.active_threshold), dead channels, and the objective.
A diagnosis on the validation split; nothing here feeds the pipeline. It led to recipe.grad_clip (protocol amendment
5), which amendment 6 dropped again (benchmarks/grad_clip_check.py); the committed JSON was written before it, when its "committed" recipe had no clipping ("no-clip" here).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def write(out: Path, rows: list[dict], lr: float, epochs: int, channels: int, rate_before: float,
          rate_after: float | None) -> None:
    from sae_mnist.provenance import git_commit

    out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "split": "validation", "lr": lr, "epochs": epochs,
        "channels": channels, "runs": rows, "git_commit": git_commit(),
        "sgemm_gflops": {"before": round(rate_before), "after": None if rate_after is None else round(rate_after)}},
        indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--lams", type=float, nargs="+", default=[0.1, 0.15, 0.3])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/mnist"))
    parser.add_argument("--lr-select", type=Path, default=Path("lr_select/conv.json"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/conv_collapse.json"))
    args = parser.parse_args()

    import torch
    from dense_end_gap import at_chosen_l1_rate
    from training_speed import matmul_gflops

    from sae_mnist.heldout import held_out_metrics
    from sae_mnist.members import Member, initial_stack
    from sae_mnist.params import L1Params
    from sae_mnist.training import train_stack

    params, lr, training, fit, x_val = at_chosen_l1_rate(args.params, "conv", args.lr_select, args.data)
    cpu = torch.device("cpu")
    channels = params.model.conv.channels
    _, rate_before = matmul_gflops(cpu)
    rows = []
    for seed in args.seeds:
        recipes = {"no-clip": params.recipe.without("grad_clip"),
                   "grad-clip-1": params.recipe.model_copy(update={"grad_clip": 1.0})}
        members = [Member("conv", "l1", L1Params(lam=lam), False, recipe, suffix=variant, lr=lr)
                   for variant, recipe in recipes.items() for lam in args.lams]
        penalties, models, stack = initial_stack("conv", params.model, members, seed, fit)
        result = train_stack(stack, penalties, [m.name for m in members], fit, training, seed, cpu,
                             recipes=[m.recipe for m in members], lrs=[lr] * len(members), desc=f"seed {seed}")
        for k, (m, model, penalty) in enumerate(zip(members, models, penalties)):
            model.load_state_dict(stack.export(k))
            metrics, _, _ = held_out_metrics(model, penalty, x_val, params)
            rows.append({"seed": seed, "lam": m.settings.lam, "variant": m.suffix, "l0": metrics["l0"],
                         "fvu": metrics["fvu"], "dead_channels": round(metrics["dead_fraction"] * channels),
                         "objective_last_epoch": result.histories[k][-1]["loss"],
                         "converged": result.convergence[k]["converged"]})
        print(f"seed {seed}: {len(members)} models, {result.wall_time_s:.0f} s", flush=True)
        write(args.out, rows, lr, training.epochs, channels, rate_before, None)  # each seed's rows as they come
    _, rate_after = matmul_gflops(cpu)
    write(args.out, rows, lr, training.epochs, channels, rate_before, rate_after)
    print("\n| seed | lam | variant | L0 | FVU | dead channels | objective (last epoch) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in sorted(rows, key=lambda r: (r["seed"], r["lam"], r["variant"])):
        print(f"| {r['seed']} | {r['lam']:g} | {r['variant']} | {r['l0']:.1f} | {r['fvu']:.4f} | "
              f"{r['dead_channels']} of {channels} | {r['objective_last_epoch']:.4f} |")
    print(f"sgemm {rate_before:.0f} / {rate_after:.0f} GFLOP/s; written to {args.out}")


if __name__ == "__main__":
    main()
