"""The report's Verdict section, its figures and its part of summary.json: KL − L1 as a curve along L0.

Per architecture (results from stages/report.py's analyse()): the generated verdict sentence, the primary
estimand's declaration (reporting.PRIMARY_ESTIMAND), the estimand at every activity threshold, the
sensitivity to the interpolation rule, and the curve itself: KL − L1 at each grid point with its paired 95%
interval and p, as a table and as `figures/verdict-<arch>.png`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import plots, reporting


def curve_rows(est: dict) -> list[list[str]]:
    """One row per grid point: L0, the mean FVU of L1 and of KL over seeds, KL − L1, its 95% CI and paired p."""
    return [[reporting.l0_text(l0), f"{est['fvu_l1'][:, i].mean():.4f}", f"{est['fvu_kl'][:, i].mean():.4f}",
             f"{d.diff:+.4f}", f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]", reporting.p_value(d.p)]
            for i, (l0, d) in enumerate(zip(est["grid"], est["at_grid"]))]


def threshold_rows(results: dict, thresholds: list[float], theta: float) -> list[list[str]]:
    """The primary estimand at every activity threshold: covered range, average KL − L1, CI, p (Holm at theta)."""
    rows = []
    for arch, r in results.items():
        for t in thresholds:
            est = r["estimands"][t]
            if est is None:
                rows.append([arch, f"{t:g}", "no overlap", "–", "–", "–", "–"])
                continue
            d, (lo, hi) = est["difference"], est["covered"]
            rows.append([arch + (" (primary)" if t == theta else ""), f"{t:g}",
                         f"{reporting.l0_text(lo)} – {reporting.l0_text(hi)}", f"{d.diff:+.4f}",
                         f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]", reporting.p_value(d.p),
                         reporting.p_value(r["holm_p"]) if t == theta else "–"])
    return rows


def verdict_section(results: dict, thresholds: list[float], theta: float) -> str:
    """The Verdict section's Markdown (figures from save_figures, under figures/)."""
    md = ["## Verdict\n", "\n".join(f"- {r['verdict']}" for r in results.values()) + "\n"]
    md.append("The primary estimand, one per architecture, as declared in code (`reporting.PRIMARY_ESTIMAND`; its "
              "interpolation rule, log FVU against log L0, replaced FVU against log L0 after the first full results, "
              "and the old rule's number stays as the sensitivity below): "
              f"{reporting.PRIMARY_ESTIMAND.replace('`evaluate.active_threshold`', f'{theta:g}')} The "
              f"{len(results)} architectures make the Holm family. Everything else in this report is secondary: no "
              "correction, read as description. The verdict sentences describe the curve below (each grid "
              "point's paired interval, unadjusted) before its average.\n")
    md.append("The primary estimand at each activity threshold (L0 range: the covered range, which every seed's L1 "
              "and KL frontiers reach at that threshold; the grid lies inside it):\n")
    header = ["architecture", "threshold", "L0 range", "KL − L1 (FVU)", "95% CI", "paired p", "Holm p"]
    md.append(reporting.markdown_table(header, threshold_rows(results, thresholds, theta)))
    md.append("\n".join(f"- {r[key]}" for key in ("sensitivity_sentence", "robustness_sentence")
                        for r in results.values() if key in r) + "\n")
    for arch, r in results.items():
        est = r["estimands"][theta]
        if est is None:
            continue
        md.append(f"### {arch}: KL − L1 along L0\n")
        md.append(f"Each grid point's FVU (mean over seeds, {reporting.INTERPOLATION[est['log_fvu']]}) and KL − L1 "
                  f"paired over the {len(est['seeds'])} seeds: its 95% interval and p, unadjusted.\n")
        header = ["L0 grid point", "FVU L1", "FVU KL", "KL − L1", "95% CI", "paired p"]
        md.append(reporting.markdown_table(header, curve_rows(est)))
        md.append(f"![{arch}: KL − L1 along L0](figures/verdict-{arch}.png)\n")
    return "\n".join(md)


def save_figures(results: dict, theta: float, figures: Path) -> None:
    """figures/verdict-<arch>.png for every architecture whose frontiers overlap."""
    for arch, r in results.items():
        est = r["estimands"][theta]
        if est is None:
            continue
        points = est["at_grid"]
        diff, low, high = (np.array([getattr(d, key) for d in points]) for key in ("diff", "ci_low", "ci_high"))
        significant = np.array([reporting.significant(d) for d in points])
        plots.save(plots.verdict_curve(arch, est["grid"], diff, low, high, significant, est["covered"], theta,
                                       average=est["difference"].diff), figures / f"verdict-{arch}.png")


def estimand_json(est: dict | None) -> dict | None:
    """An estimand for summary.json: the covered L0 range, the grid, the rule, the per-seed averages, the average's
    paired difference, and KL − L1 at each grid point with its interval and p."""
    if est is None:
        return None
    return {"l0_range": [float(v) for v in est["covered"]], "grid": [float(v) for v in est["grid"]],
            "interpolation": reporting.INTERPOLATION[est["log_fvu"]], "seeds": est["seeds"],
            "per_seed": est["per_seed"].tolist(), **est["difference"].__dict__,
            "at_grid": [{"l0": float(l0), "fvu_l1": float(est["fvu_l1"][:, i].mean()),
                         "fvu_kl": float(est["fvu_kl"][:, i].mean()), **d.__dict__}
                        for i, (l0, d) in enumerate(zip(est["grid"], est["at_grid"]))]}
