"""Convergence (per variant, how many runs met the criterion and how far the rest may still move, with the loss
curves in figures/loss-<arch>.png) and Training cost (each stack's wall time)."""

from __future__ import annotations

from pathlib import Path

from ...plots import save
from ..figures import loss_curves
from ..inputs import Inputs
from ..text import markdown_table


def save_loss_figure(inputs: Inputs, arch: str, figures: Path) -> None:
    """figures/loss-<arch>.png: the training objective per epoch of each variant's default, first seed."""
    names = [n for n, v in inputs.variants.items() if v.arch == arch]
    first_history = {n: next(iter(inputs.variants[n].history.values())) for n in names}
    save(loss_curves(first_history, f"{arch}: training objective (first seed)", column="loss"),
         figures / f"loss-{arch}.png")


def convergence_section(inputs: Inputs) -> str:
    tolerance = inputs.tolerance
    rows = []
    for name, v in inputs.variants.items():
        convergence = [pt["training"]["convergence"] for pt in v.points]
        rows.append([name, f"{sum(c['converged'] for c in convergence)} / {len(convergence)}",
                     f"{max(c['relative_change_last_tenth'] for c in convergence):+.4f}",
                     f"{max(c['fvu_change_last_tenth'] for c in convergence):+.5f}"])
    md = ["## Convergence\n",
          "Every run records the mean training objective over each tenth of its steps. Converged: the last "
          f"tenth's mean moved by less than {tolerance['relative']:.0%} of itself from the one before, or by "
          f"less than {tolerance['fvu']:g} in FVU units (the change divided by the training data's variance). "
          "The second clause is for nearly lossless models (FVU ≈ 0.001–0.01), whose objective heads to 0: "
          "there 1% is a few 1e-5 of FVU, far below any difference compared here, and no budget reaches it "
          "(`benchmarks/convergence_budget.json`). Per variant: runs converged (all settings × seeds), the "
          "largest relative change over the last tenth, and the largest in FVU units: how much reconstruction "
          "an unconverged run may still have to gain, roughly, at this learning rate.\n",
          markdown_table(["variant", "converged", "largest relative change in the last tenth",
                          "largest change in FVU units"], rows)]
    md += [f"![{arch} loss curves](figures/loss-{arch}.png)\n" for arch in inputs.archs]
    return "\n".join(md)


def cost_section(inputs: Inputs) -> str:
    rows = []
    for arch in inputs.archs:
        first = next(v for v in inputs.variants.values() if v.arch == arch)
        for run in first.seeds:
            t = run["training"]
            rows.append([arch, str(run["seed"]), str(t["stack_size"]), f"{t['train_wall_time_s']:.0f}",
                         f"{t['train_samples_per_s']:.0f}"])
    return "\n".join([
        "## Training cost\n",
        "Each train stage trains one stack: every frontier point of one architecture and seed together. Its "
        "wall time and the images per second each model saw, on the machine named under How to cite. "
        "Wall-clock numbers depend on what else that machine ran (a stack that shared the CPUs with "
        "another job runs several times slower), so they are given per stack, not as an interval.\n",
        markdown_table(["stack", "seed", "models", "wall time (s)", "images/s per model"], rows)])
