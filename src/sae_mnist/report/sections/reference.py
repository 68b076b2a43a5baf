"""Against the field's reference implementation (SAELens), from benchmarks/reference_sae*.json (one file a seed).

Those files are written outside the pipeline (`python benchmarks/reference_sae.py`, an optional dependency):
SAELens's standard ReLU + L1 SAE trained by its own trainer on the same images (the fit split), order, width, batch,
steps and learning rate (the one lr_select chose for linear L1) as our linear L1 frontier on one seed. Here our L1
points of each file's seed, from this run's frontier files, are set against SAELens's points at matched L0
(reference_comparison), drawn on the linear frontier figure, and checked (docs/design/verdict-protocol.md, section
2): on every file, ours at most 1% above it at every matched L0 inside the declared range. A file made under other
training settings than this run's is named as such, and the check fails until the benchmark is re-run.
"""

from __future__ import annotations

import math

from ... import stats
from ..checks import Check
from ..inputs import Inputs
from ..text import markdown_table

REFERENCE_TOLERANCE = 0.01  # our training on par with the reference implementation: at most 1% above its FVU
# What must agree between the reference file and this run for the comparison to be like for like.
SAME_SETTINGS = ("epochs", "batch_size", "lr", "n_train", "hidden")


def reference_comparison(ours: list[tuple[float, float]], theirs: list[tuple[float, float]],
                         tolerance: float = REFERENCE_TOLERANCE,
                         l0_range: tuple[float, float] | None = None) -> dict:
    """Each of our (L0, FVU) points against the reference frontier `theirs` read at its L0 (log FVU linear in log
    L0 between neighbouring points, never extrapolated): ours / theirs - 1, the worst over the points matched
    inside `l0_range` (bounds included; None: everywhere), and whether it is within `tolerance` at all of them."""
    rows = []
    theirs = sorted(theirs)
    for l0, fvu in sorted(ours):
        value = float(stats.interpolate_at([p[0] for p in theirs], [p[1] for p in theirs], l0, log_y=True))
        reference = None if math.isnan(value) else value
        rows.append({"l0": l0, "fvu": fvu, "reference_fvu": reference,
                     "relative_difference": None if reference is None else fvu / reference - 1,
                     "inside": l0_range is None or l0_range[0] <= l0 <= l0_range[1]})
    matched = [r["relative_difference"] for r in rows if r["relative_difference"] is not None and r["inside"]]
    worst = max(matched) if matched else None
    return {"points": rows, "n_matched": len(matched), "worst_relative_difference": worst,
            "tolerance": tolerance, "l0_range": None if l0_range is None else list(l0_range),
            "passed": worst is not None and worst <= tolerance}


def our_settings(params, n_train: int, lr: float) -> dict:
    """This run's linear L1 training: `lr` the rate it trained at (lr_select's), `n_train` its images."""
    training = params.train.of("linear")
    return {"epochs": training.epochs, "batch_size": training.batch_size, "lr": lr, "n_train": n_train,
            "hidden": params.model.linear.hidden, "recipe": params.recipe.model_dump()}


def _same(a, b) -> bool:
    # A rate written as base × factor by two programs may differ in its last bit.
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def differences(reference: dict, ours: dict) -> list[str]:
    """The training settings in which the reference file differs from this run ([] when like for like)."""
    out = [f"{k} {_text(reference.get(k))} (this run: {_text(ours[k])})" for k in SAME_SETTINGS
           if not _same(reference.get(k), ours[k])]
    theirs = reference.get("ours", {}).get("recipe", {})
    out += [f"recipe.{k} {theirs.get(k)} (this run: {v})" for k, v in ours["recipe"].items() if theirs.get(k) != v]
    return out


def comparison(reference: dict, l1_points: list[dict], theta: float,
               l0_range: tuple[float, float] | None = None) -> dict | None:
    """Our L1 frontier points of the reference's seed at the reference's threshold against its points, the check
    read inside `l0_range`."""
    if reference.get("active_threshold") != theta:
        return None
    key = f"{theta:g}"
    ours = [(p["metrics"][f"l0_at_{key}"], p["metrics"][f"fvu_at_{key}"]) for p in l1_points
            if p["seed"] == reference["seed"]]
    theirs = [(p["l0"], p["fvu"]) for p in reference["saelens"]["points"]]
    return reference_comparison(ours, theirs, l0_range=l0_range) if ours else None


MARKERS = ("x", "+", "1", "2")  # each reference file's points on the frontier figure, in the order given
MARKER_NAMES = {"x": "✕", "+": "+", "1": "Y", "2": "⅄"}


def drawn(reference: dict, theta: float, marker: str = "x") -> dict | None:
    """SAELens's points as figures.frontiers draws a reference: on the panel of its threshold, labelled."""
    if reference.get("active_threshold") != theta:
        return None
    points = sorted((p["l0"], p["fvu"]) for p in reference["saelens"]["points"])
    return {"threshold": theta, "l0": [p[0] for p in points], "fvu": [p[1] for p in points],
            "label": f"SAELens L1 (seed {reference['seed']})", "marker": marker}


METHOD = ("SAELens's standard ReLU + L1 SAE, trained by its own trainer on the same images in the same order, "
          "width, batch, steps and learning rate as our linear L1 frontier on the file's seed, with the same warm-ups "
          "and a cosine decay to lr/10, at the λ values of our L1 frontier; evaluated by our evaluate stage's code. "
          "Decoder norms: ours keep every decoder column at unit norm (renormalised after each step; the decoder "
          "gradient's part along the column removed before it), the L1 term is λ Σⱼ|zⱼ|; SAELens's are free, its "
          "L1 term is λ Σⱼ zⱼ‖W_dec,j‖ (the same objective up to a rescaling of each unit), and they are folded into "
          "its code before evaluation, so the threshold means the same for both. SAELens also clips each step's "
          "gradient to norm 1; ours does not (`recipe.grad_clip`). Where a gap comes from, part by part (SAELens's "
          "trainer given our decoder handling, with and without its clipping, on the validation split): "
          "docs/studies.md, *Our training against the field's reference implementation*.")


def file_part(name: str, reference: dict, result: dict | None, stale: list[str]) -> list[str]:
    """One reference file's paragraph and table."""
    split = f" ({reference['train_split']} split)" if "train_split" in reference else ""
    md = [f"`{name}` (commit `{reference['git_commit'][:7]}`, sae-lens {reference['versions']['sae-lens']}, seed "
          f"{reference['seed']}): {reference['n_train']:,} training images{split}, width {reference['hidden']}, "
          f"batch {reference['batch_size']}, {reference['steps']:,} steps, lr {reference['lr']:g}.\n"]
    if stale:
        md.append("> This file was made under other training settings than this run: " + "; ".join(stale)
                  + ". Re-run `python benchmarks/reference_sae.py` for a like-for-like comparison; the table below "
                  "sets this run's points against it anyway.\n")
    if result is None or result["n_matched"] == 0:
        md.append(f"No point of this run's L1 frontier on seed {reference['seed']} is matched inside the declared "
                  "range: nothing to compare.\n")
        return md
    rows = [[f"{r['l0']:.1f}", f"{r['fvu']:.4f}", "outside its L0 range" if r["reference_fvu"] is None else
             f"{r['reference_fvu']:.4f}", "–" if r["relative_difference"] is None else
             f"{100 * r['relative_difference']:+.1f}%", "yes" if r["inside"] else "no"] for r in result["points"]]
    md.append(markdown_table(["L0", "FVU ours", "FVU SAELens at that L0", "ours / SAELens − 1", "in declared range"],
                             rows))
    return md


def check(compared: list[tuple[dict, dict | None, list[str]]], tolerance: float,
          l0_range: tuple[float, float] | None) -> Check | None:
    """✓ where every file is compared, like for like, with ours at most `tolerance` above at every matched L0
    inside the range; None where no file compares anything."""
    if all(r is None or r["n_matched"] == 0 for _, r, _ in compared):
        return None
    parts, ok = [], True
    for reference, result, stale in compared:
        seed = f"seed {reference['seed']}"
        if result is None or result["n_matched"] == 0:
            parts.append(f"{seed}: nothing compared")
            ok = False
            continue
        n, worst = result["n_matched"], result["worst_relative_difference"]
        parts.append(f"{seed}: {n} point{'' if n == 1 else 's'}, worst {100 * worst:+.1f}%"
                     + (f", not like for like: {'; '.join(stale)}" if stale else ""))
        ok = ok and result["passed"] and not stale
    where = f" inside the declared range L0 {'–'.join(f'{b:g}' for b in l0_range)}" if l0_range else ""
    return Check(ok, f"linear L1 training on par with SAELens: at most {100 * tolerance:g}% above its FVU at every "
                     f"matched L0{where}, on every reference file ({'; '.join(parts)})")


def section(references: dict[str, dict], l1_points: list[dict], theta: float, ours: dict,
            l0_range: tuple[float, float] | None = None) -> tuple[str, Check | None]:
    """Markdown for the comparison with every reference file (name -> file), and the report's check (None when
    nothing could be compared)."""
    markers = ", ".join(f"{MARKER_NAMES[m]} seed {r['seed']}" for m, r in zip(MARKERS, references.values()))
    md = ["### Against the field's reference implementation (SAELens)\n",
          f"{METHOD} Our L1 points of each file's seed against SAELens's FVU read at the same L0 (log FVU linear in "
          f"log L0 between its points); the target: at most {100 * REFERENCE_TOLERANCE:g}% above it at every "
          "matched L0 inside the declared range, on every file. Drawn on the linear frontier figure (threshold "
          f"{theta:g}: {markers}).\n"]
    compared = []
    for name, reference in references.items():
        result, stale = comparison(reference, l1_points, theta, l0_range), differences(reference, ours)
        md += file_part(name, reference, result, stale)
        compared.append((reference, result, stale))
    return "\n".join(md), check(compared, REFERENCE_TOLERANCE, l0_range)


def for_inputs(inputs: Inputs) -> tuple[str, Check | None]:
    """The comparison for this run's linear L1 frontier ("" and None without one)."""
    if "linear-l1" not in inputs.variants:
        return "", None
    return section(inputs.references, inputs.variants["linear-l1"].points, inputs.theta,
                   our_settings(inputs.params, inputs.n_train, inputs.lr("linear", "l1")),
                   inputs.params.sweep.l0_range.of("linear"))
