"""Matched sparsity: each architecture's FVU–L0 frontiers at every threshold (figures/frontier-<arch>.png), the
comparison with SAELens (reference.py) and the frontiers read at the primary estimand's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...estimand import INTERPOLATION
from ...plots import save
from ..analysis import ArchResult
from ..figures import frontiers
from ..inputs import Inputs
from ..text import l0_text, markdown_table
from . import reference


def mean_where_reached(values: np.ndarray) -> str:
    """The mean over the seeds whose frontier reaches this L0 (nan where it does not), or "–" where none does."""
    reached = values[~np.isnan(values)]
    return f"{reached.mean():.4f}" if reached.size else "–"


def save_figures(inputs: Inputs, results: dict[str, ArchResult], figures: Path) -> None:
    for arch, r in results.items():
        grids = {t: (est.grid if est else None) for t, est in r.estimands.items()}
        drawn = [reference.drawn(ref, inputs.theta, marker) for ref, marker in
                 zip(inputs.references.values(), reference.MARKERS)] if arch == "linear" else []
        save(frontiers(arch, inputs.thresholds, r.points, inputs.pca_fvu, r.fronts, grids,
                       references=[d for d in drawn if d is not None]), figures / f"frontier-{arch}.png")


def grid_table(r: ArchResult, theta: float) -> list[str]:
    """The frontiers read at each L0 of the primary estimand's grid, and KL with the sigmoid cap only."""
    est = r.estimands[theta]
    rows = [[l0_text(l0), f"{est.fvu_l1[:, i].mean():.4f}", f"{est.fvu_kl[:, i].mean():.4f}",
             mean_where_reached(r.topk[:, i]) if r.topk is not None else "–", f"{r.pca[i]:.4f}"]
            for i, l0 in enumerate(est.grid)]
    md = [f"Secondary: the frontiers read at each L0 of the grid (threshold {theta:g}; means over seeds; "
          f"{INTERPOLATION[est.log_fvu]}; KL − L1 with its intervals: *Verdict*).\n",
          markdown_table(["L0", "FVU L1", "FVU KL", "FVU TopK", "FVU PCA (k = L0)"], rows)]
    if r.capped is not None:
        d = r.capped.difference
        md.append(f"KL with the sigmoid cap (code scale 1 only) against L1, same definition: KL − L1 = "
                  f"{d.diff:+.4f} FVU [{d.ci_low:+.4f}, {d.ci_high:+.4f}] over the covered range L0 ≈ "
                  + "–".join(map(l0_text, r.capped.covered)) + " (secondary).\n")
    return md


def section(inputs: Inputs, results: dict[str, ArchResult], reference_md: str) -> str:
    md = ["## Matched sparsity: the FVU–L0 frontiers\n",
          "Each dot is one run (one setting, one seed); each line one seed's frontier for one penalty, the runs not "
          "beaten by a sparser one (for KL: its best envelope over the code scales). The dashed line is PCA with k "
          "components (the best k-dimensional linear code, its L0 is k). The shaded band is the L0 range of the "
          "primary estimand. One panel per activity threshold: L0 and FVU are both recomputed at each (the "
          "truncated code), without retraining.\n"]
    for arch, r in results.items():
        md.append(f"### {arch}\n")
        md.append(f"![{arch} frontier](figures/frontier-{arch}.png)\n")
        if arch == "linear" and reference_md:
            md.append(reference_md)
        if r.estimands[inputs.theta] is not None:
            md += grid_table(r, inputs.theta)
    return "\n".join(md)
