"""KL on equal terms: the sigmoid code's scale, per scale how saturated the code is and how close ρ̂ comes to ρ,
and each unit's ρ̂ against its target (figures/rho-hat.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...plots import save
from ..figures import rho_hat_distribution
from ..inputs import Inputs
from ..text import markdown_table, mean_ci


def kl_names(inputs: Inputs) -> list[str]:
    return [n for n, v in inputs.variants.items() if v.penalty == "kl"]


def save_figures(inputs: Inputs, figures: Path) -> None:
    names = kl_names(inputs)
    if names:
        variants = inputs.variants
        save(rho_hat_distribution({n: variants[n].arrays["rho_hat"] for n in names},
                                  {n: inputs.params.penalty.of("kl", variants[n].arch).rho for n in names}),
             figures / "rho-hat.png")


def scale_rows(arch: str, points: list[dict]) -> list[list[str]]:
    """Per code scale: the mean over every KL run with that scale of its saturation and ρ̂ error, its best FVU and
    the mean untruncated FVU."""
    by_scale: dict[float, list] = {}
    for pt in points:
        by_scale.setdefault(pt["setting"]["scale"], []).append(pt["metrics"])
    return [[arch, f"{s:g}", f"{np.mean([m['saturated_fraction'] for m in ms]):.4f}",
             f"{np.mean([m['rho_hat_relative_error'] for m in ms]):.3f}",
             f"{min(m['fvu'] for m in ms):.4f}", f"{np.mean([m['fvu_untruncated'] for m in ms]):.4f}"]
            for s, ms in sorted(by_scale.items())]


def section(inputs: Inputs) -> str:
    md = ["## KL on equal terms\n",
          "A sigmoid code times a unit-norm decoder column adds a pattern of norm at most 1, where a ReLU unit's "
          "reaches any norm. The KL code is z = s · sigmoid(u) with a fixed scale s, swept over the values below; "
          "the frontier takes KL's best envelope over s. s is fixed, not learned per unit: a learned gain could trade "
          "places with the bias (g·σ(u) ≈ σ(u + ln g) for small σ) and meet ρ̂ = ρ without changing what the model "
          "computes. Per scale (means over seeds of every KL run with that scale, whatever its path's β and ρ):\n"]
    for arch in inputs.archs:
        if f"{arch}-kl" in inputs.variants:
            md.append(markdown_table(["arch", "scale s", "saturated (σ > 0.99)", "mean \\|ρ̂ − ρ\\|/ρ", "best FVU",
                                      "mean FVU untruncated"], scale_rows(arch, inputs.variants[f"{arch}-kl"].points)))
    names = kl_names(inputs)
    if names:
        md.append("At the default setting: " + "; ".join(
            f"{n}: mean |ρ̂ⱼ − ρ| / ρ = {mean_ci(inputs.variants[n].stats['rho_hat_relative_error'], '.3f')}"
            for n in names) + " (target ≤ 0.1).\n")
        md.append("![rho hat](figures/rho-hat.png)\n")
    return "\n".join(md)
