"""The report's analysis, per architecture: each penalty's per-seed frontiers at every threshold, the primary
estimand at each, Holm across architectures, the verdict, and what the sections set beside it (PCA, TopK and
probe accuracy at the grid, the other interpolation rule, KL with the sigmoid cap only). Also where each setting
lies against the declared L0 range (placement, on the validation split)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from .. import stats
from ..estimand import Estimand, matched_values, primary_estimand, seed_frontiers, where_in_range
from ..params import COMPARED, PENALTIES
from .curve import sensitivity_sentence, verdict
from .inputs import Inputs


@dataclass
class ArchResult:
    """One architecture's analysis. The fields after `capped` exist where the primary estimand does."""

    points: dict[str, list[dict]]  # penalty -> its frontier points
    fronts: dict[float, dict[str, dict[int, tuple]]]  # threshold -> penalty -> seed -> (L0, FVU[, probe])
    estimands: dict[float, Estimand | None]  # threshold -> the estimand (inside the declared range at the primary)
    capped: Estimand | None  # KL with code scale 1 only (the sigmoid cap) against L1
    pca: np.ndarray | None = None  # PCA's FVU at k = each grid L0
    topk: np.ndarray | None = None  # (seeds, grid) TopK's FVU, nan where its frontier does not reach
    probe: dict[str, np.ndarray] = field(default_factory=dict)  # l1/kl -> (seeds, grid) probe accuracy
    probe_difference: list[stats.Difference] = field(default_factory=list)  # KL − L1 in probe accuracy per point
    sensitivity: Estimand | None = None  # the primary under the other interpolation rule
    sensitivity_sentence: str = ""
    holm_p: float = math.nan
    verdict: str = ""
    robustness: list = field(default_factory=list)  # robustness.Check rows (sections/robustness.py)
    robustness_sentence: str = ""


def analyse_arch(arch: str, pts: dict[str, list[dict]], thresholds: list[float], theta: float, pca_fvu: np.ndarray,
                 declared: tuple[float, float]) -> ArchResult:
    """One architecture's frontiers, estimands (declared range at theta) and what the sections read at its grid."""
    # Probe accuracy along the compared frontiers where every one of their points was probed (probes@<arch>).
    probed = all("probe_accuracy" in pt["metrics"] for p in COMPARED for pt in pts.get(p, []))
    fronts = {t: {p: seed_frontiers(v, t, extra="probe_accuracy" if p in COMPARED and probed else None)
                  for p, v in pts.items()} for t in thresholds}
    estimands = {t: primary_estimand(fronts[t]["l1"], fronts[t]["kl"], l0_range=declared if t == theta else None)
                 for t in thresholds}
    kl_capped = [p for p in pts["kl"] if p["setting"].get("scale", 1.0) == 1.0]
    capped = (primary_estimand(fronts[theta]["l1"], seed_frontiers(kl_capped, theta), l0_range=declared)
              if kl_capped else None)
    r = ArchResult(points=pts, fronts=fronts, estimands=estimands, capped=capped)
    primary = estimands[theta]
    if primary is None:
        return r
    grid = primary.grid
    k = np.arange(1, len(pca_fvu) + 1)
    r.pca = np.interp(np.log10(grid), np.log10(k), pca_fvu)
    if "topk" in pts:
        r.topk = matched_values(fronts[theta]["topk"], grid, log_y=primary.log_fvu)
    if probed:
        r.probe = {p: matched_values(fronts[theta][p], grid, column=2) for p in ("l1", "kl")}
        r.probe_difference = [stats.paired(r.probe["kl"][:, i], r.probe["l1"][:, i]) for i in range(len(grid))]
    r.sensitivity = primary_estimand(fronts[theta]["l1"], fronts[theta]["kl"], log_fvu=not primary.log_fvu,
                                     l0_range=declared)
    r.sensitivity_sentence = sensitivity_sentence(arch, primary, r.sensitivity)
    return r


def analyse(inputs: Inputs) -> dict[str, ArchResult]:
    """Per architecture with both L1 and KL frontiers: analyse_arch, then Holm's correction across the
    architectures' primary estimands and each verdict."""
    theta, l0_ranges = inputs.theta, inputs.params.sweep.l0_range
    results = {}
    for arch in inputs.archs:
        pts = {p: inputs.variants[f"{arch}-{p}"].points for p in PENALTIES if f"{arch}-{p}" in inputs.variants}
        if "l1" in pts and "kl" in pts:
            results[arch] = analyse_arch(arch, pts, inputs.thresholds, theta, inputs.pca_fvu, l0_ranges.of(arch))
    archs = list(results)
    p_primary = [results[a].estimands[theta].difference.p if results[a].estimands[theta] else math.nan
                 for a in archs]
    for arch, p_holm in zip(archs, stats.holm(p_primary)):
        results[arch].holm_p = p_holm
        results[arch].verdict = verdict(arch, results[arch].estimands, theta, p_holm)
    return results


def placement(points: list[dict], threshold: float, l0_range: tuple[float, float],
              seed: int | None = None) -> list[dict]:
    """Each setting of one variant's frontier: its L0 at `threshold` and where that lies against the declared range:
    "below", "inside" (bounds included) or "above"; settings in the frontier file's order.

    The protocol places the sweep on the validation split (docs/design/verdict-protocol.md): the L0 in the
    "validation" block of `seed`'s points (all seeds' mean if None)."""
    by_setting: dict[str, list[float]] = {}
    for point in points:
        if seed is None or point["seed"] == seed:
            by_setting.setdefault(json.dumps(point["setting"], sort_keys=True), []).append(
                point["validation"][f"l0_at_{threshold:g}"])
    rows = []
    for key, l0s in by_setting.items():
        l0 = float(np.mean(l0s))
        rows.append({"setting": json.loads(key), "l0": l0, "where": where_in_range(l0, l0_range), "seeds": len(l0s)})
    return rows


def placement_words(seed: int) -> str:
    """How the placement rows read L0, in words: 'L0 on the validation split, seed 0'."""
    return f"L0 on the validation split, seed {seed}"


def placement_counts(rows: list[dict]) -> dict[str, int]:
    """How many settings lie below, inside and above the range."""
    return {where: sum(r["where"] == where for r in rows) for where in ("below", "inside", "above")}


def placements(inputs: Inputs) -> dict[str, dict[str, list[dict]]]:
    """arch -> penalty (all but none) -> placement rows at the primary threshold against the declared range, on
    the seed lr_select chose the rates on (where the files carry validation metrics)."""
    return {arch: {p: placement(inputs.variants[f"{arch}-{p}"].points, inputs.theta,
                                inputs.params.sweep.l0_range.of(arch), inputs.params.lr_select.seed)
                   for p in PENALTIES if p != "none" and f"{arch}-{p}" in inputs.variants}
            for arch in inputs.archs}
