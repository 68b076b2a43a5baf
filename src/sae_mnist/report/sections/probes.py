"""Linear probes: each representation's probe accuracy (defaults, baselines, untrained encoders, published), along
the frontiers at matched L0, whether every probe converged and every chosen C lies inside its grid, and the wide
code (studies.wide_section)."""

from __future__ import annotations

import numpy as np

from ...stats import summarize
from ..analysis import ArchResult
from ..inputs import Inputs
from ..text import markdown_table, mean_ci
from .studies import wide_section


def probes_at_grid_edge(chosen: dict[str, float], grid: list[float]) -> list[str]:
    """The probes (name -> chosen C) whose C is the grid's smallest or largest value: the validation accuracy
    may still rise beyond it, so the grid may not hold the best C. (A grid of one value has no choice to judge.)"""
    if len(grid) < 2:
        return []
    return [name for name, C in chosen.items() if C in (min(grid), max(grid))]


def accuracy_rows(inputs: Inputs) -> list[list[str]]:
    baselines = inputs.baselines
    rows = [[name, mean_ci(v.stats["probe_accuracy"], ".4f"), f"{v.frontier['probe_C']:g}"]
            for name, v in inputs.variants.items()]
    rows += [[f"{rep} (this benchmark)", f"{r['probe_accuracy']:.4f}", f"{r['probe_C']:g}"]
             for rep, r in baselines["probes"].items()]
    for arch, runs in baselines["random_encoders"].items():
        s = summarize([r["probe_accuracy"] for r in runs], bounds="fraction", resolution=1e-4)
        rows.append([f"untrained {arch} encoder, same width (control)", mean_ci(s, ".4f"), f"{runs[0]['probe_C']:g}"])
    rows.append([f"{baselines['published'][0]['representation']} (published)",
                 f"≈ {baselines['published'][0]['accuracy']:.3f}", "–"])
    return rows


def along_frontiers(results: dict[str, ArchResult], theta: float) -> list[str]:
    md = []
    for arch, r in results.items():
        if not r.probe:
            continue
        est = r.estimands[theta]
        rows = [[f"{l0:.3g}", f"{np.nanmean(r.probe['l1'][:, i]):.4f}", f"{np.nanmean(r.probe['kl'][:, i]):.4f}",
                 f"{d.diff:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"]
                for i, (l0, d) in enumerate(zip(est.grid, r.probe_difference))]
        md.append(f"{arch}: probe accuracy along the frontiers at matched L0 (interpolated like FVU; secondary):\n")
        md.append(markdown_table(["L0", "probe L1", "probe KL", "KL − L1 [95% CI]"], rows))
    return md


def chosen_C(inputs: Inputs) -> dict[str, float]:
    """Every probe's chosen C, by representation."""
    baselines = inputs.baselines
    chosen = {name: v.frontier["probe_C"] for name, v in inputs.variants.items()}
    chosen |= {rep: r["probe_C"] for rep, r in baselines["probes"].items()}
    chosen |= {f"untrained {arch} encoder": runs[0]["probe_C"] for arch, runs in baselines["random_encoders"].items()}
    chosen |= {f"wide {m['variant']} (seed {w['seed']})": m["metrics"]["probe_C"] for w in inputs.wide
               for m in w["models"]}
    return chosen


def section(inputs: Inputs, results: dict[str, ArchResult]) -> str:
    probe = inputs.params.probe
    md = ["## Linear probes\n",
          "Logistic regression on each variant's codes of the fit split's images, C chosen on the validation split; "
          "test accuracy (definition below). At the default settings (mean [95% CI] over seeds):\n",
          markdown_table(["representation", "test accuracy", "C"], accuracy_rows(inputs))]
    md += along_frontiers(results, inputs.theta)
    n_probes = sum("probe_converged" in pt["metrics"] for pt in inputs.all_points)
    unconverged = sorted({pt["name"] for pt in inputs.all_points if pt["metrics"].get("probe_converged", 1.0) != 1.0})
    md.append(f"lbfgs converged on every probe ({n_probes}).\n" if not unconverged else
              f"> lbfgs stopped at its iteration limit ({probe.max_iter}) for: {', '.join(unconverged)}.\n")
    grid = ", ".join(f"{c:g}" for c in probe.C)
    at_edge = probes_at_grid_edge(chosen_C(inputs), probe.C)
    md.append(f"Every chosen C lies inside the grid ({grid}).\n" if not at_edge else
              f"> C is at the edge of the grid ({grid}), where a C beyond it may do better, for: "
              f"{', '.join(at_edge)}.\n")
    if inputs.wide:
        md.append(wide_section(inputs.wide, inputs.baselines["published"][1]))
        # the protocol's price, where a reader compares with a published number
        md.append(f"These models and probes train on the fit split's {inputs.n_train:,} images, the published "
                  "ones on all 60,000 training images: the accuracies are not exactly comparable (*Decisions "
                  "and the split each used*).\n")
    return "\n".join(md)
