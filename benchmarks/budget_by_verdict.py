"""The training budget chosen by the verdict: the L1 and KL frontiers of one architecture retrained at doubling budgets.

    python benchmarks/budget_by_verdict.py --arch linear [--seed 0] [--epochs 20 40 80] [--lr LR]
        [--lr-select lr_select/<arch>.json] [--params params.yaml] [--data data/mnist]
        [--out benchmarks/budget_<arch>.json]
    python benchmarks/budget_by_verdict.py --from-study robustness/<arch>-budget.json [--frontier frontier]
        [--ci-half-width W] [--out benchmarks/budget_<arch>_study.json]

For each budget (train.epochs; the warm-ups and the cosine decay stretch with it), every L1 and KL frontier
setting of params.yaml is trained on one seed as one stack with the train stage's own code and recipe, on the fit
split (the validation split held out), each penalty at the rate lr_select chose for it (train.lr where its file is
absent; --lr: one rate for all), and evaluated on the validation split by the evaluate stage's `held_out_metrics`:
a choice, so it never reads the test split (docs/design/verdict-protocol.md). From those points the report's primary estimand is
computed exactly as the report computes it (estimand.primary_estimand at evaluate.active_threshold, inside
sweep.l0_range): for one seed, the KL − L1 curve on the grid and its mean D.

Decision rule (issue 22): the smallest budget B whose D moves by less than max(10% of |D|, the 3-seed 95% CI
half-width given with --ci-half-width) when the budget doubles. Also recorded per setting and budget: L0 and
FVU (where each setting lies against sweep.l0_range), the train stage's convergence diagnostic, and whether
the objective rose over the last tenth. With the stack's wall time and the sgemm rate in the same run. No
MLflow, no DVC outputs: a measurement for choosing train.epochs.

--from-study trains nothing: it applies the same rule to the budget sensitivity study (`robustness@<arch>-budget`,
seed 0 retrained at train.epochs x each factor, read on the validation split) beside seed 0 of the main frontier
(frontier/<arch>-l1.json and -kl.json) read on the validation split, the same seed at train.epochs itself, for
budgets x0.5, x1 and x2 from results the pipeline already has.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

RELATIVE_TOLERANCE = 0.10


def choose_budget(estimands: dict[int, float], ci_half_width: float | None) -> dict:
    """The smallest budget whose estimand moves by less than the tolerance when the budget doubles (None if none)."""
    rows = []
    for epochs, value in sorted(estimands.items()):
        doubled = estimands.get(2 * epochs)
        if doubled is None:
            continue
        tolerance = max(RELATIVE_TOLERANCE * abs(doubled), ci_half_width or 0.0)
        rows.append({"epochs": epochs, "estimand": value, "doubled": doubled, "change": doubled - value,
                     "tolerance": tolerance, "stable": abs(doubled - value) < tolerance})
    chosen = next((r["epochs"] for r in rows if r["stable"]), None)
    return {"rule": f"smallest budget whose estimand moves by less than max({RELATIVE_TOLERANCE:.0%} of itself, the "
                    "95% CI half-width) when the budget doubles", "doublings": rows, "chosen_epochs": chosen}


def study_estimands(study: dict, frontier_dir: Path, l0_range: tuple[float, float], theta: float) -> dict[int, dict]:
    """epochs -> {"factor", "estimand"} of a budget sensitivity file (stages/robustness.py, read on validation) and of
    its seed's main frontier on validation, the budget at factor 1 (epochs: the study's base)."""
    from sae_mnist import estimand
    from sae_mnist.io import read_json

    if study.get("study") != "budget" or study.get("split") != "validation":
        raise SystemExit("--from-study needs a budget study read on the validation split "
                         "(robustness/<arch>-budget.json)")
    main = {p: [{**pt, "metrics": pt["validation"]} for pt in read_json(frontier_dir / f"{study['arch']}-{p}.json")[
        "points"] if pt["seed"] == study["seed"]] for p in ("l1", "kl")}
    by_epochs = {study["base"]["epochs"]: {"factor": 1.0, "points": main}}
    for v in study["variations"]:
        by_epochs[v["epochs"]] = {"factor": v["factor"],
                                  "points": {p: [pt for pt in v["points"] if pt["penalty"] == p] for p in ("l1", "kl")}}
    out = {}
    for epochs, found in sorted(by_epochs.items()):
        est = estimand.points_estimand(found["points"]["l1"], found["points"]["kl"], theta, l0_range=l0_range)
        out[epochs] = {"factor": found["factor"], "estimand": None if est is None else est.difference.diff}
    return out


def from_study(args) -> None:
    from sae_mnist.io import read_json
    from sae_mnist.params import load_params
    from sae_mnist.provenance import git_commit

    study, params = read_json(args.from_study), load_params(args.params)
    theta, l0_range = params.evaluate.active_threshold, params.sweep.l0_range.of(study["arch"])
    budgets = study_estimands(study, args.frontier, l0_range, theta)
    decision = choose_budget({e: b["estimand"] for e, b in budgets.items() if b["estimand"] is not None},
                             args.ci_half_width)
    out = {"command": " ".join(["python", *sys.argv]), "arch": study["arch"], "seed": study["seed"],
           "study": str(args.from_study), "l0_range": list(l0_range), "active_threshold": theta,
           "split": "validation", "git_commit": git_commit(),
           "budgets": [{"epochs": e, **b} for e, b in budgets.items()], "decision": decision}
    out_path = args.out or Path(f"benchmarks/budget_{study['arch']}_study.json")
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    for r in decision["doublings"]:
        print(f"{study['arch']}: {r['epochs']} epochs {r['estimand']:+.4f} -> doubled {r['doubled']:+.4f} "
              f"(change {r['change']:+.4f}, tolerance {r['tolerance']:.4f}): {'stable' if r['stable'] else 'moves'}")
    print(f"chosen: {decision['chosen_epochs']} epochs (train.epochs: {study['base']['epochs']}); "
          f"written to {out_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="linear", choices=["linear", "conv"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 40, 80])
    parser.add_argument("--ci-half-width", type=float, default=None,
                        help="the primary estimand's 3-seed 95%% CI half-width, if known (else 10%% of itself rules)")
    parser.add_argument("--lr", type=float, default=None, help="one rate for every model and budget (default: each "
                        "penalty's from --lr-select)")
    parser.add_argument("--lr-select", type=Path, default=None,
                        help="the lr_select stage's file (default: lr_select/<arch>.json; absent: train.lr)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/mnist"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--from-study", type=Path, default=None,
                        help="a budget sensitivity file (robustness/<arch>-budget.json): the rule on it, no training")
    parser.add_argument("--frontier", type=Path, default=Path("frontier"), help="with --from-study: the frontier files")
    args = parser.parse_args()
    if args.from_study:
        return from_study(args)
    out_path = args.out or Path(f"benchmarks/budget_{args.arch}.json")

    import numpy as np
    import torch

    from sae_mnist import estimand
    from sae_mnist.data import load_split, read_manifest
    from sae_mnist.params import load_params
    from sae_mnist.provenance import cpu_name, git_commit
    from sae_mnist.heldout import train_points
    from sae_mnist.members import compared_members
    from sae_mnist.rates import read_rates
    from sae_mnist.training import to_float_images
    from training_speed import matmul_gflops  # this directory's, as flop_bound.py does

    params = load_params(args.params)
    theta, l0_range = params.evaluate.active_threshold, params.sweep.l0_range.of(args.arch)
    members = compared_members(params, args.arch)
    rates_file = args.lr_select or Path(f"lr_select/{args.arch}.json")
    rates = read_rates(rates_file, args.arch) if args.lr is None and rates_file.is_file() else {}
    members = [replace(m, lr=rates.get(m.penalty)) for m in members]
    torch.set_num_threads(params.train.threads)
    device = torch.device("cpu")
    images = torch.from_numpy(load_split(args.data, "fit", params.split.validation).images[
        : params.train.max_samples].copy())
    x_validation = to_float_images(torch.from_numpy(load_split(args.data, "validation", params.split.validation)
                                                    .images.copy()), device)

    _, rate_before = matmul_gflops(device)
    budgets = []
    for epochs in args.epochs:
        training = params.train.of(args.arch).model_copy(
            update={"epochs": epochs, **({"lr": args.lr} if args.lr is not None else {})})
        evaluated, result = train_points(params, args.arch, args.seed, members, training, images, x_validation,
                                         device, desc=f"{args.arch} {epochs} epochs")
        points = []
        for pt in evaluated:
            metrics, c = pt["metrics"], pt["training"]["convergence"]
            points.append({"name": pt["name"], "penalty": pt["penalty"], "setting": pt["setting"], "seed": args.seed,
                           "l0": metrics["l0"], "fvu": metrics["fvu"],
                           "inside_l0_range": estimand.where_in_range(metrics["l0"], l0_range) == "inside",
                           "relative_change_last_tenth": c["relative_change_last_tenth"],
                           "objective_rose": c["objective_by_tenth"][-1] > c["objective_by_tenth"][-2],
                           "converged": c["converged"]})
        l1, kl = ([pt for pt in evaluated if pt["penalty"] == p] for p in ("l1", "kl"))
        est = estimand.points_estimand(l1, kl, theta, l0_range=l0_range)
        budgets.append({
            "epochs": epochs, "wall_time_s": round(result.wall_time_s, 1), "n_models": len(members),
            "estimand": None if est is None else est.difference.diff,
            "grid": None if est is None else np.asarray(est.grid).tolist(),
            "curve": None if est is None else (est.fvu_kl[0] - est.fvu_l1[0]).tolist(),
            "points": points,
        })
        print(f"\n{epochs} epochs: {len(members)} models, {result.wall_time_s / 60:.1f} min; "
              f"estimand {budgets[-1]['estimand']}", flush=True)
        for pt in points:
            print(f"  {pt['name']:42s} L0 {pt['l0']:7.1f} {'in ' if pt['inside_l0_range'] else 'out'}  "
                  f"FVU {pt['fvu']:.4f}  change {100 * pt['relative_change_last_tenth']:+.2f}%"
                  f"{'  rising' if pt['objective_rose'] else ''}", flush=True)
    _, rate_after = matmul_gflops(device)

    decision = choose_budget({b["epochs"]: b["estimand"] for b in budgets if b["estimand"] is not None},
                             args.ci_half_width)
    out = {"command": " ".join(["python", *sys.argv]), "arch": args.arch, "seed": args.seed,
           "l0_range": list(l0_range), "active_threshold": theta, "recipe": params.recipe.model_dump(),
           "lr": args.lr if args.lr is not None else {"l1": rates.get("l1", params.train.lr),
                                                     "kl": rates.get("kl", params.train.lr)},
           "lr_select": str(rates_file) if rates else None, "split": {"trained_on": "fit", "evaluated_on": "validation"},
           "dataset": read_manifest(args.data)["dataset"], "git_commit": git_commit(), "machine": cpu_name(),
           "threads": params.train.threads, "sgemm_gflops": {"before": round(rate_before), "after": round(rate_after)},
           "budgets": budgets, "decision": decision}
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    print("\n| epochs | estimand (KL − L1, seed %d) | change when doubled | tolerance | stable |" % args.seed)
    print("| --- | --- | --- | --- | --- |")
    for r in decision["doublings"]:
        print(f"| {r['epochs']} | {r['estimand']:+.4f} | {r['change']:+.4f} | {r['tolerance']:.4f} | {r['stable']} |")
    print(f"\nchosen: {decision['chosen_epochs']} epochs; sgemm {rate_before:.0f} / {rate_after:.0f} GFLOP/s "
          f"(before / after); written to {out_path}")


if __name__ == "__main__":
    main()
