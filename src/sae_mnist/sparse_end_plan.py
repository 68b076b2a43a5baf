"""Which seeds and settings `sparse_end@<arch>` trains (docs/design/verdict-protocol.md, section 3, amendment 1).

The count is a choice, so it is made on the validation split: per activity threshold, the KL − L1 curve of the
frontier's seeds in *validation* FVU (every frontier point carries its validation metrics beside the test ones),
read as the report reads the test curve (the declared range at the primary threshold and the covered range
beyond it, the covered range elsewhere), each grid point resolved against `verdict.margin`. For every point that
stays unresolved, `equivalence.seeds_to_resolve` gives the seeds that resolve it with 80% power from its observed
mean and sd; the stage trains the most any point needs up to MAX_SEEDS, and only the L1 and KL frontier settings
on either side of the points that count allows to resolve (on any seed's validation frontier). A point that needs
more stays unresolved, and the report names its count (amendment 4). Prints the `sparse_end:` block for
params.yaml, with the arithmetic behind it:

    python -m sae_mnist.sparse_end_plan [--frontier frontier] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .estimand import pareto_points, primary_estimand, seed_frontiers
from .params import Params, load_params
from .report.sections.thresholds import LabelledCurve, labelled, seeds_needed

# The protocol costed sparse_end@<arch> at 9 seeds in all (section 5: 6 more seeds of the bracketing settings, within
# a study's hour); a point that needs more, near where the curve crosses 0 with a seed sd several times the margin,
# would need tens to hundreds of seeds (amendment 4), so it is reported unresolved with that count instead.
MAX_SEEDS = 9


def on_validation(points: list[dict]) -> list[dict]:
    """Frontier points with their validation metrics where the estimand reads `metrics`."""
    return [{**p, "metrics": p["validation"]} for p in points if "validation" in p]


def validation_curves(l1: list[dict], kl: list[dict], params: Params, arch: str) -> list[LabelledCurve]:
    """Every threshold's labelled KL − L1 curve on the validation split (2 seeds or more)."""
    theta, margin = params.evaluate.active_threshold, params.verdict.margin
    declared = tuple(params.sweep.l0_range.of(arch))
    curves = []
    for t in params.evaluate.thresholds:
        fronts = seed_frontiers(on_validation(l1), t), seed_frontiers(on_validation(kl), t)
        est = primary_estimand(*fronts, l0_range=declared if t == theta else None)
        if est is None or len(est.seeds) < 2:
            continue
        curves.append(labelled(est, t, margin))
        wide = primary_estimand(*fronts) if t == theta else None
        if wide is not None and (wide.covered[0] < est.covered[0] or wide.covered[1] > est.covered[1]):
            curves.append(labelled(wide, t, margin, declared))
    return curves


def bracketing(points: list[dict], threshold: float, l0: float) -> list[dict]:
    """The settings of the validation frontier points next below and next above `l0`, on every seed's frontier."""
    found: list[dict] = []
    key = f"{threshold:g}"
    for seed in sorted({p["seed"] for p in points}):
        mine = [p for p in on_validation(points) if p["seed"] == seed]
        l0s, _, index = pareto_points([p["metrics"][f"l0_at_{key}"] for p in mine],
                                      [p["metrics"][f"fvu_at_{key}"] for p in mine], np.arange(len(mine)))
        below, above = index[l0s <= l0], index[l0s >= l0]
        for i in ([below[-1]] if len(below) else []) + ([above[0]] if len(above) else []):
            if mine[int(i)]["setting"] not in found:
                found.append(mine[int(i)]["setting"])
    return found


def plan(l1: list[dict], kl: list[dict], params: Params, arch: str, max_seeds: int = MAX_SEEDS) -> dict | None:
    """{"seeds", "l1", "kl", "needed", "beyond"} for `arch` (None when 3 seeds resolve every point on validation,
    or none can be resolved within `max_seeds`). "needed": (threshold, L0, seeds) per unresolved point that
    `max_seeds` seeds resolve with 80% power; "beyond": those that need more (seeds_to_resolve's "over 200" kept)."""
    found = [(c.threshold, float(l0), n) for c in validation_curves(l1, kl, params, arch)
             for l0, n in seeds_needed(c)]
    needed = [f for f in found if isinstance(f[2], int) and f[2] <= max_seeds]
    if not needed:
        return None
    total = max(n for _, _, n in needed)
    first = max(params.seeds) + 1
    extra = list(range(first, first + max(0, total - len(params.seeds))))
    settings = {name: [] for name in ("l1", "kl")}
    for name, points in (("l1", l1), ("kl", kl)):
        for threshold, l0, _ in needed:
            settings[name] += [s for s in bracketing(points, threshold, l0) if s not in settings[name]]
    return {"seeds": extra, **settings, "needed": needed, "beyond": [f for f in found if f not in needed]}


def params_block(plans: dict[str, dict]) -> str:
    """The `sparse_end:` section for params.yaml (KL settings as one path per beta and scale)."""
    lines = ["sparse_end:"]
    for arch, p in plans.items():
        paths: dict[tuple, list[float]] = {}
        for s in p["kl"]:
            paths.setdefault((s["beta"], s["scale"]), []).append(s["rho"])
        lams = sorted(s["lam"] for s in p["l1"])
        lines += [f"  {arch}:", f"    seeds: {p['seeds']}", f"    l1: {{lam: {lams}}}", "    kl:"]
        lines += [f"      - {{beta: {b}, scale: {sc}, rho: {sorted(r)}}}" for (b, sc), r in paths.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frontier", type=Path, default=Path("frontier"), help="the evaluate stages' files")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    plans = {}
    for arch in ("linear", "conv"):
        l1, kl = (json.loads((args.frontier / f"{arch}-{p}.json").read_text())["points"] for p in ("l1", "kl"))
        found = plan(l1, kl, params, arch)
        for threshold, l0, n in (found or {}).get("needed", []):
            print(f"{arch} θ {threshold:g}, L0 {l0:.1f}: unresolved on validation over {len(params.seeds)} seeds; "
                  f"{n} seeds resolve it with 80% power (equivalence.seeds_to_resolve)")
        for threshold, l0, n in (found or {}).get("beyond", []):
            print(f"{arch} θ {threshold:g}, L0 {l0:.1f}: needs {n} seeds, more than the {MAX_SEEDS} the stage trains: "
                  "it stays unresolved")
        if found:
            plans[arch] = found
        else:
            print(f"{arch}: {len(params.seeds)} seeds resolve every grid point on validation: no sparse_end stage")
    if plans:
        print(params_block(plans))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
