"""Every variant at its default setting (mean [95% CI] over seeds, and KL − L1 paired by seed), and the appendix:
every metric of every default with its sd and interval."""

from __future__ import annotations

from ..inputs import Inputs, Variant
from ..text import METRICS, UNIT_COUNTS, compare_seeds, full_summary, markdown_table, mean_ci, unit_counts

# Columns of the per-variant table (means over seeds with 95% intervals).
MAIN_COLUMNS = ("fvu", "l0", "code_size", "dead_fraction", "always_on_fraction", "probe_accuracy")


def cell(v: Variant, key: str, summary) -> str:
    """A variant's entry for one metric in a table: per-seed counts for dead and always-on units (UNIT_COUNTS),
    else `summary(stats, format)` of its seeds, or '–' where it has no such metric."""
    if key in UNIT_COUNTS:
        return unit_counts([s["metrics"] for s in v.seeds], key, v.arch)
    return summary(v.stats[key], METRICS[key][1]) if key in v.stats else "–"


def section(inputs: Inputs) -> str:
    variants = inputs.variants
    md = ["## Every variant at its default setting (test set, mean [95% CI] over seeds)\n",
          "Dead and always-on units: the count on each seed, in seed order.\n"]
    rows = [[name] + [cell(v, k, mean_ci) for k in MAIN_COLUMNS] for name, v in variants.items()]
    md.append(markdown_table(["variant"] + [METRICS[k][0] for k in MAIN_COLUMNS], rows))
    for arch in inputs.archs:
        if f"{arch}-l1" in variants and f"{arch}-kl" in variants:
            comparisons = compare_seeds(variants[f"{arch}-l1"].seeds, variants[f"{arch}-kl"].seeds)
            md.append(f"{arch}, KL − L1 at the default settings, paired by seed (secondary; the defaults differ in "
                      "sparsity, so see the frontiers for reconstruction):\n")
            md.append("\n".join(f"- {c['sentence']}" for c in comparisons) + "\n")
    return "\n".join(md)


def appendix(inputs: Inputs) -> str:
    variants = inputs.variants
    keys = [k for k in METRICS if any(k in v.stats for v in variants.values())]
    rows = [[METRICS[k][0]] + [cell(v, k, full_summary) for v in variants.values()] for k in keys]
    return "\n".join(["## Appendix: every metric at the default settings (mean; sd; 95% CI)\n",
                      "Dead and always-on units: the count on each seed, in seed order.\n",
                      markdown_table(["metric"] + list(variants), rows)])
