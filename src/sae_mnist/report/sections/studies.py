"""The study sections: the recipe ablation, and the wide linear code beside the published 98.8% (a subsection of
Linear probes)."""

from __future__ import annotations

import numpy as np

from ...stats import summarize
from ..inputs import split_of
from ..text import markdown_table, mean_ci


def ablation_section(ablations: dict[str, dict], seed: int) -> str:
    """The Recipe ablation section: per architecture, each variant's default under each recipe, on the split its
    file names (the validation split: the ablation checks a choice)."""
    md = ["## Recipe ablation\n",
          f"Each variant's default setting on seed {seed}, trained with the full recipe, without each part in turn, and "
          "with none of them (the recipe before: raw inputs, independent initialisation, the full decoder gradient, "
          "constant learning rate, full penalty from the first step). FVU (truncated code), L0 and dead units "
          "(of all units; conv: channels) on the split named per architecture: the validation split, where the "
          "protocol makes every check of a choice; ✗ marks a run that did not converge.\n"]
    for arch, abl in ablations.items():
        md.append(f"### {arch}\n")
        md.append(f"Evaluated on the {split_of(abl)} split.\n")
        by = {(m["recipe"], m["variant"]): m for m in abl["models"]}
        recipes = list(dict.fromkeys(m["recipe"] for m in abl["models"]))
        names = list(dict.fromkeys(m["variant"] for m in abl["models"]))
        rows = []
        for rec in recipes:
            row = [rec]
            for n in names:
                m = by[(rec, n)]["metrics"]
                mark = "" if by[(rec, n)]["convergence"]["converged"] else " ✗"
                row.append(f"{m['dead_units']}/{m['code_units']} / {m['fvu']:.4f} / {m['l0']:.1f}{mark}")
            rows.append(row)
        md.append(markdown_table(["recipe"] + [f"{n}: dead / FVU / L0" for n in names], rows))
    return "\n".join(md)


def wide_section(wide: list[dict], published: dict) -> str:
    """The subsection of Linear probes on the wide linear codes (one file per seed) beside a published accuracy."""
    md = ["### A wide code beside the published 98.8%\n",
          f"Published: {published['source']}: ≈ {published['accuracy']:.3f}. This benchmark's {wide[0]['hidden']}-unit "
          f"linear SAEs, same recipe and budget, {len(wide)} seed(s) (mean [95% CI]):\n"]
    by_variant: dict[str, list] = {}
    for w in wide:
        for m in w["models"]:
            setting = ", ".join(f"{k} {v:g}" for k, v in m["setting"].items())
            by_variant.setdefault(f"{m['variant']} ({setting})", []).append(m)
    rows = []
    for name, ms in by_variant.items():
        acc = summarize([m["metrics"]["probe_accuracy"] for m in ms], bounds="fraction", resolution=1e-4)
        rows.append([name, mean_ci(acc, ".4f"), f"{np.mean([m['metrics']['l0'] for m in ms]):.1f}",
                     f"{np.mean([m['metrics']['fvu'] for m in ms]):.4f}",
                     f"{sum(m['convergence']['converged'] for m in ms)} / {len(ms)}",
                     f"{sum(m['metrics']['probe_converged'] == 1.0 for m in ms)} / {len(ms)}"])
    md.append(markdown_table(["wide model", "probe accuracy", "L0", "FVU", "converged", "probe converged"],
                                       rows))
    return "\n".join(md)
