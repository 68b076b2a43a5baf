"""How long the frontier must train to converge: chosen frontier points trained again at longer budgets.

    python benchmarks/convergence_budget.py [--arch conv] [--seed 0] [--epochs 20 40 80] [--points NAME ...]
        [--params params.yaml] [--data data/mnist] [--out benchmarks/convergence_budget.json]

For each budget, the named frontier points (default: conv's slowest to converge in the committed run, and
conv-l1, which converged, as a control) are trained as one stack with the train stage's own code, recipe,
data and seed; only train.epochs changes, so the learning-rate warm-up, cosine decay and final hold stretch
with it. Models in a stack train as each would alone, up to float rounding, so a subset stands for the full
stack's points, and the first budget (params.yaml's) checks that against the committed frontier files.

Per point and budget it records the convergence criterion of the train stage (training.convergence: the
objective's relative change over the last tenth of the steps, converged below 1%), that change in FVU units,
and every test metric of the evaluate stage's `held_out_metrics` (FVU and L0 of the truncated code at each
threshold, the frontier's metric at evaluate.active_threshold; FVU of the untruncated code; dead fraction).
With the stack's wall time and the sgemm rate measured in the same run. No MLflow, no DVC outputs: a
measurement for choosing train.epochs, not a citable result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DEFAULT_POINTS = ["conv-none", "conv-kl", "conv-kl-beta=100,rho=0.05,scale=2", "conv-kl-beta=100,rho=0.05,scale=5",
                  "conv-topk-k=128", "conv-topk-k=256", "conv-l1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="conv", choices=["linear", "conv"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 40, 80])
    parser.add_argument("--points", nargs="+", default=None, help="frontier point names (default: %(default)s)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/mnist"))
    parser.add_argument("--frontier", type=Path, default=Path("frontier"), help="committed frontier files, to compare")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/convergence_budget.json"))
    args = parser.parse_args()

    import torch

    from sae_mnist.data import load_split
    from sae_mnist.params import load_params
    from sae_mnist.provenance import cpu_name, git_commit
    from sae_mnist.heldout import held_out_metrics
    from sae_mnist.members import frontier_members, initial_stack
    from sae_mnist.training import to_float_images, train_stack
    from training_speed import matmul_gflops  # this directory's, as flop_bound.py does

    params = load_params(args.params)
    names = args.points or [p for p in DEFAULT_POINTS if p.startswith(args.arch)]
    members = {m.name: m for m in frontier_members(params, args.arch)}
    if unknown := [n for n in names if n not in members]:
        sys.exit(f"not frontier points of {args.arch} in {args.params}: {unknown}; known: {sorted(members)}")
    members = [members[n] for n in names]

    torch.set_num_threads(params.train.threads)
    device = torch.device("cpu")
    train = load_split(args.data, "train")
    images = torch.from_numpy(train.images[: params.train.max_samples].copy())
    test = load_split(args.data, "test")
    x_test = to_float_images(torch.from_numpy(test.images.copy()), device)
    committed = {}
    for variant in {m.variant for m in members}:
        path = args.frontier / f"{variant}.json"
        if path.is_file():
            for pt in json.loads(path.read_text())["points"]:
                if pt["seed"] == args.seed:
                    committed[pt["name"]] = {"fvu": pt["metrics"]["fvu"], "l0": pt["metrics"]["l0"],
                                             **{k: pt["training"]["convergence"][k] for k in
                                                ("relative_change_last_tenth", "fvu_change_last_tenth", "converged")},
                                             "epochs": pt["training"]["epochs"]}

    _, rate_before = matmul_gflops(device)
    budgets = []
    for epochs in args.epochs:
        train_params = params.train.of(args.arch).model_copy(update={"epochs": epochs})
        penalties, models, stack = initial_stack(args.arch, params.model, members, args.seed, images)
        result = train_stack(stack, penalties, names, images, train_params, args.seed, device,
                             recipes=[m.recipe for m in members], desc=f"{args.arch} {epochs} epochs")
        points = {}
        for k, (name, model, penalty) in enumerate(zip(names, models, penalties)):
            model.load_state_dict(stack.export(k))
            metrics, _, _ = held_out_metrics(model, penalty, x_test, params)
            c = result.convergence[k]
            points[name] = {**metrics, "relative_change_last_tenth": c["relative_change_last_tenth"],
                            "fvu_change_last_tenth": c["fvu_change_last_tenth"], "converged": c["converged"],
                            "objective_by_tenth": c["objective_by_tenth"]}
        budgets.append({"epochs": epochs, "wall_time_s": round(result.wall_time_s, 1), "points": points})
        print(f"\n{epochs} epochs, {len(names)} models, {result.wall_time_s / 60:.1f} min", flush=True)
        for name, p in points.items():
            print(f"  {name:40s} change {100 * p['relative_change_last_tenth']:+6.2f}%  "
                  f"({'converged' if p['converged'] else 'not converged'})  FVU {p['fvu']:.4f}  L0 {p['l0']:.1f}  "
                  f"FVU untruncated {p['fvu_untruncated']:.4f}",
                  flush=True)
    _, rate_after = matmul_gflops(device)

    out = {"arch": args.arch, "seed": args.seed, "git_commit": git_commit(), "machine": cpu_name(),
           "threads": params.train.threads, "sgemm_gflops": {"before": round(rate_before), "after": round(rate_after)},
           "committed": committed, "budgets": budgets}
    args.out.write_text(json.dumps(out, indent=2) + "\n")

    header = "| point | " + " | ".join(f"{b['epochs']} ep: change, FVU, L0" for b in budgets) + " |"
    print("\n" + header + "\n|" + " --- |" * (len(budgets) + 1))
    for name in names:
        cells = [f"{100 * b['points'][name]['relative_change_last_tenth']:+.2f}%"
                 f"{'' if b['points'][name]['converged'] else ' ✗'}, {b['points'][name]['fvu']:.4f}, "
                 f"{b['points'][name]['l0']:.0f}" for b in budgets]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nsgemm {rate_before:.0f} / {rate_after:.0f} GFLOP/s (before / after); written to {args.out}")


if __name__ == "__main__":
    main()
