"""Against the field's reference implementation (SAELens), from benchmarks/reference_sae.json.

That file is written outside the pipeline (`python benchmarks/reference_sae.py`, an optional dependency): SAELens's
standard ReLU + L1 SAE trained by its own trainer on the same images, order, width, batch, steps and learning rate
as our linear L1 frontier on one seed. Here our L1 points of that seed, from this run's frontier files, are set
against SAELens's points at matched L0 (reference_comparison), drawn on the linear frontier figure, and checked:
ours at most 2% above it everywhere. A file made under other training settings than this run's is named as such,
and the check fails until the benchmark is re-run.
"""

from __future__ import annotations

import math

from ... import stats
from ..checks import Check
from ..inputs import Inputs
from ..text import markdown_table

REFERENCE_TOLERANCE = 0.02  # our training on par with the reference implementation: at most 2% above its FVU
# What must agree between the reference file and this run for the comparison to be like for like.
SAME_SETTINGS = ("epochs", "batch_size", "lr", "n_train", "hidden")


def reference_comparison(ours: list[tuple[float, float]], theirs: list[tuple[float, float]],
                         tolerance: float = REFERENCE_TOLERANCE) -> dict:
    """Each of our (L0, FVU) points against the reference frontier `theirs` read at its L0 (log FVU linear in log
    L0 between neighbouring points, never extrapolated): ours / theirs - 1, the worst, and whether it is within
    `tolerance` at every matched point."""
    rows = []
    theirs = sorted(theirs)
    for l0, fvu in sorted(ours):
        value = float(stats.interpolate_at([p[0] for p in theirs], [p[1] for p in theirs], l0, log_y=True))
        reference = None if math.isnan(value) else value
        rows.append({"l0": l0, "fvu": fvu, "reference_fvu": reference,
                     "relative_difference": None if reference is None else fvu / reference - 1})
    matched = [r["relative_difference"] for r in rows if r["relative_difference"] is not None]
    worst = max(matched) if matched else None
    return {"points": rows, "n_matched": len(matched), "worst_relative_difference": worst,
            "tolerance": tolerance, "passed": worst is not None and worst <= tolerance}


def our_settings(params, n_train: int) -> dict:
    training = params.train.of("linear")
    return {"epochs": training.epochs, "batch_size": training.batch_size, "lr": training.lr, "n_train": n_train,
            "hidden": params.model.linear.hidden, "recipe": params.recipe.model_dump()}


def differences(reference: dict, ours: dict) -> list[str]:
    """The training settings in which the reference file differs from this run ([] when like for like)."""
    out = [f"{k} {reference.get(k)} (this run: {ours[k]})" for k in SAME_SETTINGS if reference.get(k) != ours[k]]
    theirs = reference.get("ours", {}).get("recipe", {})
    out += [f"recipe.{k} {theirs.get(k)} (this run: {v})" for k, v in ours["recipe"].items() if theirs.get(k) != v]
    return out


def comparison(reference: dict, l1_points: list[dict], theta: float) -> dict | None:
    """Our L1 frontier points of the reference's seed at the reference's threshold against its points."""
    if reference.get("active_threshold") != theta:
        return None
    key = f"{theta:g}"
    ours = [(p["metrics"][f"l0_at_{key}"], p["metrics"][f"fvu_at_{key}"]) for p in l1_points
            if p["seed"] == reference["seed"]]
    theirs = [(p["l0"], p["fvu"]) for p in reference["saelens"]["points"]]
    return reference_comparison(ours, theirs) if ours else None


def drawn(reference: dict, theta: float) -> dict | None:
    """SAELens's points as figures.frontiers draws a reference: on the panel of its threshold, labelled."""
    if reference.get("active_threshold") != theta:
        return None
    points = sorted((p["l0"], p["fvu"]) for p in reference["saelens"]["points"])
    return {"threshold": theta, "l0": [p[0] for p in points], "fvu": [p[1] for p in points],
            "label": f"SAELens L1 (seed {reference['seed']})"}


def section(reference: dict, l1_points: list[dict], theta: float, ours: dict) -> tuple[str, Check | None]:
    """Markdown for the comparison, and the report's check (None when nothing could be compared)."""
    result = comparison(reference, l1_points, theta)
    stale = differences(reference, ours)
    md = ["### Against the field's reference implementation (SAELens)\n",
          f"`benchmarks/reference_sae.json` (commit `{reference['git_commit'][:7]}`, sae-lens "
          f"{reference['versions']['sae-lens']}, seed {reference['seed']}): SAELens's standard ReLU + L1 SAE trained by "
          f"its own trainer on the same {reference['n_train']:,} images in the same order, width {reference['hidden']}, "
          f"batch {reference['batch_size']}, {reference['steps']:,} steps, lr {reference['lr']:g} with the same warm-ups "
          "and a cosine decay to lr/10, at the λ values of our L1 frontier; evaluated by our evaluate stage's code. "
          "Decoder norms: ours keep every decoder column at unit norm (renormalised after each step; the decoder "
          "gradient's part along the column removed before it), the L1 term is λ Σⱼ|zⱼ|; SAELens's are free, its L1 "
          "term is λ Σⱼ zⱼ‖W_dec,j‖ (the same objective up to a rescaling of each unit), and they are folded into its "
          "code before evaluation, so the threshold means the same for both. Drawn on the linear frontier figure "
          f"(threshold {theta:g}, ✕).\n"]
    if stale:
        md.append("> The reference file was made under other training settings than this run: " + "; ".join(stale)
                  + ". Re-run `python benchmarks/reference_sae.py` for a like-for-like comparison; the table below "
                  "sets this run's points against it anyway.\n")
    if result is None or result["n_matched"] == 0:
        md.append("No point of this run's L1 frontier on that seed lies inside SAELens's L0 range: nothing to "
                  "compare.\n")
        return "\n".join(md), None
    rows = [[f"{r['l0']:.1f}", f"{r['fvu']:.4f}", "outside its L0 range" if r["reference_fvu"] is None else
             f"{r['reference_fvu']:.4f}", "–" if r["relative_difference"] is None else
             f"{100 * r['relative_difference']:+.1f}%"] for r in result["points"]]
    md.append(f"Our L1 points (seed {reference['seed']}) against SAELens's FVU read at the same L0 (log FVU linear in "
              "log L0 between its points):\n")
    md.append(markdown_table(["L0", "FVU ours", "FVU SAELens at that L0", "ours / SAELens − 1"], rows))
    worst = result["worst_relative_difference"]
    ok = result["passed"] and not stale
    text = (f"linear L1 training on par with SAELens: at most {100 * result['tolerance']:g}% above its FVU at every "
            f"matched L0 ({result['n_matched']} point{'' if result['n_matched'] == 1 else 's'}, worst {100 * worst:+.1f}%"
            + (f"; the reference is not like for like: {'; '.join(stale)}" if stale else "") + ")")
    return "\n".join(md), Check(ok, text)


def for_inputs(inputs: Inputs) -> tuple[str, Check | None]:
    """The comparison for this run's linear L1 frontier ("" and None without one)."""
    if "linear-l1" not in inputs.variants:
        return "", None
    return section(inputs.reference, inputs.variants["linear-l1"].points, inputs.theta,
                   our_settings(inputs.params, inputs.n_train))
