"""The Verdict section and its figures: KL − L1 as a curve along L0.

Per architecture: the generated verdict sentence, the primary estimand's declaration (estimand.PRIMARY_ESTIMAND),
the estimand at every activity threshold, the sensitivity to the interpolation rule, and the curve itself: KL − L1
at each grid point with its paired 95% interval and p, as a table and as `figures/verdict-<arch>.png`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...estimand import INTERPOLATION, PRIMARY_ESTIMAND, Estimand
from ...plots import save
from ..analysis import ArchResult
from ..curve import significant
from ..figures import verdict_curve
from ..text import l0_text, markdown_table, p_value


def curve_rows(est: Estimand) -> list[list[str]]:
    """One row per grid point: L0, the mean FVU of L1 and of KL over seeds, KL − L1, its 95% CI and paired p."""
    return [[l0_text(l0), f"{est.fvu_l1[:, i].mean():.4f}", f"{est.fvu_kl[:, i].mean():.4f}",
             f"{d.diff:+.4f}", f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]", p_value(d.p)]
            for i, (l0, d) in enumerate(zip(est.grid, est.at_grid))]


def threshold_rows(results: dict[str, ArchResult], thresholds: list[float], theta: float) -> list[list[str]]:
    """The primary estimand at every activity threshold: covered range, average KL − L1, CI, p (Holm at theta)."""
    rows = []
    for arch, r in results.items():
        for t in thresholds:
            est = r.estimands[t]
            if est is None:
                rows.append([arch, f"{t:g}", "no overlap", "–", "–", "–", "–"])
                continue
            d, (lo, hi) = est.difference, est.covered
            rows.append([arch + (" (primary)" if t == theta else ""), f"{t:g}", f"{l0_text(lo)} – {l0_text(hi)}",
                         f"{d.diff:+.4f}", f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]", p_value(d.p),
                         p_value(r.holm_p) if t == theta else "–"])
    return rows


def section(results: dict[str, ArchResult], thresholds: list[float], theta: float) -> str:
    """The Verdict section's Markdown (figures from save_figures, under figures/)."""
    md = ["## Verdict\n", "\n".join(f"- {r.verdict}" for r in results.values()) + "\n"]
    md.append("The primary estimand, one per architecture, as declared in code (`estimand.PRIMARY_ESTIMAND`; its "
              "interpolation rule, log FVU against log L0, replaced FVU against log L0 after the first full results, "
              "and the old rule's number stays as the sensitivity below): "
              f"{PRIMARY_ESTIMAND.replace('`evaluate.active_threshold`', f'{theta:g}')} The "
              f"{len(results)} architectures make the Holm family. Everything else in this report is secondary: no "
              "correction, read as description. The verdict sentences describe the curve below (each grid "
              "point's paired interval, unadjusted) before its average.\n")
    md.append("The primary estimand at each activity threshold (L0 range: the covered range, which every seed's L1 "
              "and KL frontiers reach at that threshold; the grid lies inside it):\n")
    header = ["architecture", "threshold", "L0 range", "KL − L1 (FVU)", "95% CI", "paired p", "Holm p"]
    md.append(markdown_table(header, threshold_rows(results, thresholds, theta)))
    sentences = [getattr(r, key) for key in ("sensitivity_sentence", "robustness_sentence") for r in results.values()]
    md.append("\n".join(f"- {s}" for s in sentences if s) + "\n")
    for arch, r in results.items():
        est = r.estimands[theta]
        if est is None:
            continue
        md.append(f"### {arch}: KL − L1 along L0\n")
        md.append(f"Each grid point's FVU (mean over seeds, {INTERPOLATION[est.log_fvu]}) and KL − L1 "
                  f"paired over the {len(est.seeds)} seeds: its 95% interval and p, unadjusted.\n")
        header = ["L0 grid point", "FVU L1", "FVU KL", "KL − L1", "95% CI", "paired p"]
        md.append(markdown_table(header, curve_rows(est)))
        md.append(f"![{arch}: KL − L1 along L0](figures/verdict-{arch}.png)\n")
    return "\n".join(md)


def save_figures(results: dict[str, ArchResult], theta: float, figures: Path) -> None:
    """figures/verdict-<arch>.png for every architecture whose frontiers overlap."""
    for arch, r in results.items():
        est = r.estimands[theta]
        if est is None:
            continue
        points = est.at_grid
        diff, low, high = (np.array([getattr(d, key) for d in points]) for key in ("diff", "ci_low", "ci_high"))
        marked = np.array([significant(d) for d in points])
        save(verdict_curve(arch, est.grid, diff, low, high, marked, est.covered, theta,
                           average=est.difference.diff), figures / f"verdict-{arch}.png")
