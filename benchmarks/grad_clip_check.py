"""Protocol amendment 5's check: does gradient clipping worsen any compared penalty's frontier? (issue 33)

    python benchmarks/grad_clip_check.py --arch conv --clipped lr_select/conv.json \
        --unclipped <(git show 9df5b95:lr_select/conv.json) [--out benchmarks/grad_clip_check_conv.json]
    python benchmarks/grad_clip_check.py --arch linear --clipped lr_select/linear.json \
        --unclipped <(git show 82ca602:robustness/linear-budget.json) --unclipped-factor 0.5

Per penalty, its frontier at the rate lr_select chose with clipping (`--clipped`, an lr_select file) beside its
frontier at the rate chosen without (`--unclipped`: an lr_select file, or a robustness file's variation
`--unclipped-factor`, whose points are each penalty's at its chosen rate), both on the validation split of the same
seed. Each pair is scored as selection.choose scores rates (mean log10 FVU of the Pareto frontier at the primary
grid's L0 values, inside sweep.l0_range and the L0 both cover). The declared rule: clipping stays unless it worsens
a penalty's score by more than TOLERANCE. Also per penalty: runs inside the range with more than a tenth of their
units dead, each side. Reads committed files only; trains nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TOLERANCE = 0.005  # the criterion's seed noise (docs/design/verdict-protocol.md, section 2 and amendment 5)


def chosen_points(selection: dict, penalty: str) -> list[dict]:
    """`penalty`'s validation points at its chosen rate, from an lr_select file."""
    from sae_mnist.report.sections.learning_rates import rate_points

    return rate_points(selection, selection["chosen"][penalty]["best_factor"], penalty)


def unclipped_points(data: dict, penalty: str, factor: float | None) -> list[dict]:
    """From an lr_select file (factor None) its chosen rate's points; from a robustness file, variation `factor`'s."""
    if factor is None:
        return chosen_points(data, penalty)
    variation = next(v for v in data["variations"] if v["factor"] == factor)
    return [p for p in variation["points"] if p["penalty"] == penalty]


def compare(clipped: dict, unclipped: dict, factor: float | None, threshold: float,
            l0_range: tuple[float, float]) -> list[dict]:
    from sae_mnist.report.sections.dead_units import many_dead
    from sae_mnist.selection import choose

    rows = []
    for penalty in clipped["chosen"]:
        sides = {"clipped": chosen_points(clipped, penalty), "unclipped": unclipped_points(unclipped, penalty, factor)}
        if not sides["unclipped"]:
            continue  # a robustness file holds L1 and KL only
        # choose() takes rate factors as keys; 1 and 2 stand for the two sides here.
        choice = choose(penalty, {1.0: sides["clipped"], 2.0: sides["unclipped"]}, threshold, l0_range)
        score = {"clipped": choice.scores[1.0], "unclipped": choice.scores[2.0]}
        dead = {side: many_dead(points, l0_range)[:2] for side, points in sides.items()}
        rows.append({"penalty": penalty, "grid_l0": [float(choice.grid[0]), float(choice.grid[-1])],
                     "grid_range": choice.grid_range, "score": score,
                     "worsened_by": score["clipped"] - score["unclipped"],
                     "clipped_lr": clipped["chosen"][penalty]["lr"],
                     "many_dead_inside": {side: {"runs": n, "of": m} for side, (n, m) in dead.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["linear", "conv"], required=True)
    parser.add_argument("--clipped", type=Path, required=True)
    parser.add_argument("--unclipped", type=Path, required=True)
    parser.add_argument("--unclipped-factor", type=float, default=None)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from sae_mnist.params import load_params

    params = load_params(args.params)
    clipped, unclipped = json.loads(args.clipped.read_text()), json.loads(args.unclipped.read_text())
    rows = compare(clipped, unclipped, args.unclipped_factor, params.evaluate.active_threshold,
                   params.sweep.l0_range.of(args.arch))
    kept = all(r["worsened_by"] <= TOLERANCE for r in rows)
    print("| penalty | L0 grid | score clipped | score unclipped | clipped − unclipped | runs with many dead units "
          "(clipped / unclipped) |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        d = r["many_dead_inside"]
        print(f"| {r['penalty']} | {r['grid_l0'][0]:.1f}–{r['grid_l0'][1]:.1f} ({r['grid_range']}) | "
              f"{r['score']['clipped']:.4f} | {r['score']['unclipped']:.4f} | {r['worsened_by']:+.4f} | "
              f"{d['clipped']['runs']} of {d['clipped']['of']} / {d['unclipped']['runs']} of {d['unclipped']['of']} |")
    print(f"rule (worse by at most {TOLERANCE} everywhere): clipping {'stays' if kept else 'is NOT kept'}")
    if args.out:
        args.out.write_text(json.dumps({"arch": args.arch, "split": "validation", "tolerance": TOLERANCE,
                                        "clipped": {"git_commit": clipped.get("git_commit")},
                                        "unclipped": {"git_commit": unclipped.get("git_commit"),
                                                      "factor": args.unclipped_factor},
                                        "rows": rows, "clipping_stays": kept}, indent=2) + "\n")


if __name__ == "__main__":
    main()
