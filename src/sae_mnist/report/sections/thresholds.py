"""Every threshold's KL − L1 curve with each grid point labelled (docs/design/verdict-protocol.md, sections 3-4).

Per architecture and activity threshold: the curve of the estimand at that threshold (inside the declared range at
the primary threshold, the covered range elsewhere), each grid point labelled by equivalence.resolve against the
margin, where the sign changes (equivalence.crossings), a verdict sentence, a table, and one panel of
`figures/thresholds-<arch>.png`. At the primary threshold the covered range beyond the declared one is read too
and drawn shaded, as outside the primary estimand. A sparse_end file's extra seeds join the labels (never the
estimand) at the grid points both of their frontiers reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import stats
from ...equivalence import LABELS, Crossing, Resolution, crossings, resolve, seeds_to_resolve
from ...estimand import Estimand, primary_estimand, seed_frontiers
from ...plots import save
from ..analysis import ArchResult
from ..figures import threshold_panels
from ..text import l0_text, markdown_table


@dataclass(frozen=True)
class LabelledCurve:
    """KL − L1 along one threshold's grid, each point resolved against the margin."""

    threshold: float
    estimand: Estimand
    points: list[Resolution]
    crossings: list[Crossing]
    declared: tuple[float, float] | None  # the declared L0 range, where this curve also reads beyond it


def with_extra_seeds(est: Estimand, extra: dict[str, dict[int, tuple]] | None,
                     i: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(seeds, KL FVU, L1 FVU) at grid point i: the estimand's seeds, then each extra seed (a study's, e.g.
    sparse_end: only the settings around some grid points) whose L1 and KL frontiers both reach that L0."""
    seeds, kl, l1 = [int(s) for s in est.seeds], list(est.fvu_kl[:, i]), list(est.fvu_l1[:, i])
    for seed in sorted(set(extra["l1"]) & set(extra["kl"])) if extra else ():
        read = [stats.interpolate_at(extra[p][seed][0], extra[p][seed][1], est.grid[i], log_y=est.log_fvu)
                if len(extra[p][seed][0]) else np.nan for p in ("kl", "l1")]
        if np.isfinite(read).all():
            seeds.append(int(seed))
            kl.append(float(read[0]))
            l1.append(float(read[1]))
    return seeds, np.array(kl), np.array(l1)


def labelled(est: Estimand, threshold: float, margin: float, declared: tuple[float, float] | None = None,
             extra: dict[str, dict[int, tuple]] | None = None) -> LabelledCurve:
    """The curve of `est`, each grid point resolved over its seeds and any `extra` seeds' frontiers (penalty ->
    seed -> (L0, FVU)) that reach it, each crossing with its interval over the seeds its stretch shares; the
    estimand itself keeps its own seeds."""
    per_point = [with_extra_seeds(est, extra, i) for i in range(len(est.grid))]
    points = [resolve(kl, l1, margin) for _, kl, l1 in per_point]
    seed_diffs = [dict(zip(seeds, (kl - l1).tolist())) for seeds, kl, l1 in per_point]
    return LabelledCurve(threshold, est, points, crossings(list(est.grid), points, seed_diffs), declared)


def labelled_curves(r: ArchResult, theta: float, margin: float, declared: tuple[float, float],
                    extra_points: dict[str, list[dict]] | None = None) -> list[LabelledCurve]:
    """One curve per threshold with an estimand on 2 seeds or more (a label needs an interval), in threshold order;
    at `theta` the declared range's curve, then the covered range's where it reaches beyond the declared one.
    `extra_points`: penalty -> more seeds' points (a sparse_end file's), read at each threshold as frontiers."""
    curves = []
    for t, est in sorted(r.estimands.items()):
        if est is None or len(est.seeds) < 2:
            continue
        extra = {p: seed_frontiers(v, t) for p, v in extra_points.items()} if extra_points else None
        curves.append(labelled(est, t, margin, extra=extra))
        if t == theta:
            wide = primary_estimand(r.fronts[t]["l1"], r.fronts[t]["kl"])
            if wide is not None and (wide.covered[0] < est.covered[0] or wide.covered[1] > est.covered[1]):
                curves.append(labelled(wide, t, margin, declared, extra))
    return curves


def extra_points(sparse_end: dict | None) -> dict[str, list[dict]] | None:
    """A sparse_end file's points by penalty (L1, KL), or None without a file."""
    if not sparse_end:
        return None
    return {p: [pt for pt in sparse_end["points"] if pt["penalty"] == p] for p in ("l1", "kl")}


def all_curves(results: dict[str, ArchResult], theta: float, margin: float, declared: dict[str, tuple],
               sparse_end: dict[str, dict] | None = None) -> dict[str, list[LabelledCurve]]:
    """labelled_curves of every architecture, with its sparse_end file's extra seeds where one exists."""
    return {arch: labelled_curves(r, theta, margin, declared[arch], extra_points((sparse_end or {}).get(arch)))
            for arch, r in results.items()}


def _span(grid: np.ndarray, indices: list[int]) -> str:
    lo, hi = l0_text(grid[indices[0]]), l0_text(grid[indices[-1]])
    return f"L0 {lo}" if lo == hi else f"L0 {lo}–{hi}"


def label_runs(curve: LabelledCurve) -> list[tuple[str, list[int]]]:
    """The maximal runs of consecutive grid points with one label: (label, indices)."""
    runs: list[tuple[str, list[int]]] = []
    for i, point in enumerate(curve.points):
        if runs and runs[-1][0] == point.label:
            runs[-1][1].append(i)
        else:
            runs.append((point.label, [i]))
    return runs


def sentence(arch: str, curve: LabelledCurve) -> str:
    """'conv at threshold 0.2: KL better at L0 14.8–26.4 (4 of 9 points), L1 better at L0 32.1–69.7 (5 of 9); the
    sign changes at L0 ≈ 29.1 (between 26.4 and 32.1).'"""
    grid, n = curve.estimand.grid, len(curve.points)
    where = "the covered range, beyond the declared one" if curve.declared else "its grid"
    runs = ", ".join(f"{label} at {_span(grid, idx)} ({len(idx)} of {n})" for label, idx in label_runs(curve))
    text = f"{arch} at threshold {curve.threshold:g}, along {where}: {runs}"
    if curve.crossings:
        text += "; the sign changes at " + ", ".join(crossing_text(c) for c in curve.crossings)
    else:
        directions = {p.label for p in curve.points} & set(LABELS[:2])
        text += "; the sign does not change" if len(directions) <= 1 else ""
    text += "; " + widest_bracket_text(curve)
    needed = seeds_needed(curve)
    if needed:
        text += (f". {len(needed)} point(s) stay unresolved; the seeds that would resolve each with 80% power "
                 "(equivalence.seeds_to_resolve, from its observed mean and sd): "
                 + ", ".join(f"L0 {l0_text(l0)}: {n}" for l0, n in needed))
    return text + "."


def crossing_text(c: Crossing) -> str:
    """'L0 ≈ 25.2 (95% CI 21–26.8 over 9 seeds; between the grid points 19.3 and 30: KL better below, L1 better
    above)'."""
    if c.ci_low is not None:
        interval = f"95% CI {l0_text(c.ci_low)}–{l0_text(c.ci_high)} over {c.n} seeds"
    elif c.n >= 2:
        interval = f"no interval: over the {c.n} seeds the stretch shares, no L0 of it holds 0 in its 95% interval"
    else:
        interval = "no interval: fewer than 2 seeds shared by every point of the stretch"
    return (f"L0 ≈ {l0_text(c.l0)} ({interval}; between the grid points {l0_text(c.low)} and {l0_text(c.high)}: "
            f"{c.before} below, {c.after} above)")


def widest_bracket_text(curve: LabelledCurve) -> str:
    """'the widest stretch between the trained models a point is read across: L0 ratio 2.31 at L0 54.8'
    (amendment 3: a value read between trained models that far apart is a chord, not a model)."""
    bracket = curve.estimand.bracket
    if bracket is None or not np.isfinite(bracket).any():
        return "no grid point lies between trained models"
    i = int(np.nanargmax(bracket))
    return (f"the widest stretch between the trained models a point is read across: L0 ratio {bracket[i]:.2f} at "
            f"L0 {l0_text(curve.estimand.grid[i])}")


def seeds_needed(curve: LabelledCurve) -> list[tuple[float, int | str]]:
    """(L0, seeds) of each unresolved point: how many seeds resolve it with 80% power ("over 200" past that)."""
    needed = []
    for l0, point in zip(curve.estimand.grid, curve.points):
        if point.label != LABELS[3]:
            continue
        try:
            needed.append((float(l0), seeds_to_resolve(point.diff, point.sd, point.margin)))
        except ValueError:
            needed.append((float(l0), "over 200"))
    return needed


def rows(curve: LabelledCurve) -> list[list[str]]:
    """One row per grid point: L0, KL − L1, its 95% and 90% intervals, the seeds it is read over, the label (and
    where it is also inside the margin), the widest L0 ratio of the trained points it is read between, and
    whether the point lies inside the declared range."""
    inside = (lambda l0: "yes" if curve.declared[0] <= l0 <= curve.declared[1] else "no") if curve.declared else None
    bracket = curve.estimand.bracket
    return [[l0_text(l0), f"{p.diff:+.4f}", f"[{p.ci_low:+.4f}, {p.ci_high:+.4f}]",
             f"[{p.tost_low:+.4f}, {p.tost_high:+.4f}]", str(p.n),
             p.label + (" (inside the margin)" if p.within_margin and p.label in LABELS[:2] else "")]
            + ([f"{bracket[i]:.2f}"] if bracket is not None else [])
            + ([inside(l0)] if inside else [])
            for i, (l0, p) in enumerate(zip(curve.estimand.grid, curve.points))]


def extra_seeds_text(arch: str, sparse_end: dict) -> str:
    """What a sparse_end file adds: its seeds, the settings' rates, and where they count."""
    rates = ", ".join(f"{p.upper()} at lr {lr:.3g}" for p, lr in sparse_end.get("rates", {}).items())
    return (f"Extra seeds {', '.join(map(str, sparse_end['seeds']))} (`sparse_end@{arch}`: only the L1 and KL "
            f"settings that bracket the points 3 seeds left unresolved, trained on the fit split{', ' if rates else ''}"
            f"{rates}; test metrics) join each grid point that both of their frontiers reach (column *seeds*); the "
            "estimand, averages and Verdict keep the main seeds.\n")


def section(curves: dict[str, list[LabelledCurve]], theta: float, margin: float,
            sparse_end: dict[str, dict] | None = None) -> str:
    """The section's Markdown: per architecture (all_curves), a sentence and a table per curve, then its figure."""
    md = ["## Every threshold's curve\n",
          f"Each grid point's KL − L1 in FVU, paired over seeds: **KL better** or **L1 better** where its 95% interval "
          f"excludes 0; otherwise **equivalent** where its 90% interval lies inside ±{margin:g} FVU (two one-sided "
          "tests, the margin `verdict.margin` declared before these results existed: "
          "docs/design/verdict-protocol.md); otherwise **unresolved**. Descriptive labels, no correction across "
          "points. Where the sign changes, the crossing is where the mean difference, linear in log L0, reaches 0, "
          "between the last grid point labelled one way and the first labelled the other; its 95% interval is the "
          "L0 along that stretch at which the paired t interval of the difference (each seed's read linearly in "
          "log L0) contains 0 (`equivalence.crossing_interval`, amendment 7 of the protocol). At the "
          f"primary threshold ({theta:g}) the range every seed's frontiers cover is also read beyond the declared "
          "one: those points lie outside the primary estimand, shaded in the figure. *Read across*: the widest "
          "ratio, over seeds and both penalties, of the L0 values of the two trained models a point's value is "
          "interpolated between; where it is large the value is a chord over a stretch no model reached "
          "(amendment 3 of the protocol).\n"]
    for arch, arch_curves in curves.items():
        md.append(f"### {arch}\n")
        if not arch_curves:
            md.append("No threshold has frontiers that overlap on 2 seeds or more: nothing to label.\n")
            continue
        if sparse_end and arch in sparse_end:
            md.append(extra_seeds_text(arch, sparse_end[arch]))
        md.append("\n".join(f"- {sentence(arch, c)}" for c in arch_curves) + "\n")
        for c in arch_curves:
            title = (f"threshold {c.threshold:g}" + (" (primary)" if c.threshold == theta and not c.declared else "")
                     + (": the covered range; the points not inside the declared range lie outside the primary "
                        "estimand" if c.declared else ""))
            md.append(f"{arch}, {title}:\n")
            header = (["L0", "KL − L1", "95% CI", "90% CI", "seeds", "label"]
                      + (["read across (L0 ratio)"] if c.estimand.bracket is not None else [])
                      + (["in declared range"] if c.declared else []))
            md.append(markdown_table(header, rows(c)))
        md.append(f"![{arch}: KL − L1 at every threshold](figures/thresholds-{arch}.png)\n")
    return "\n".join(md)


def save_figures(curves: dict[str, list[LabelledCurve]], theta: float, margin: float, figures: Path) -> None:
    """figures/thresholds-<arch>.png: a panel per threshold (the primary's over its covered range, the part outside
    the declared range shaded), each crossing with its interval."""
    for arch, arch_curves in curves.items():
        wide = {c.threshold: c for c in arch_curves if c.declared}
        panels = [wide.get(c.threshold, c) for c in arch_curves if not c.declared]
        if panels:
            panel_data = [(c.threshold, c.estimand.grid, c.points, c.declared, c.crossings) for c in panels]
            save(threshold_panels(arch, panel_data, margin, theta), figures / f"thresholds-{arch}.png")


def curves_json(curves: dict[str, list[LabelledCurve]]) -> dict:
    """For summary.json: per architecture, each curve's threshold, L0 range (beyond_declared: the primary
    threshold's covered range, read past the declared one), every grid point's label and intervals, its crossings."""
    return {arch: [{"threshold": c.threshold, "l0_range": [float(v) for v in c.estimand.covered],
                    "beyond_declared": c.declared is not None,
                    "points": [{"l0": float(l0), **{k: (bool(v) if k == "within_margin" else v)
                                                    for k, v in vars(p).items()},
                                **({"bracket": float(c.estimand.bracket[i])} if c.estimand.bracket is not None
                                   else {})}
                               for i, (l0, p) in enumerate(zip(c.estimand.grid, c.points))],
                    "crossings": [vars(x) for x in c.crossings]} for c in arch_curves]
            for arch, arch_curves in curves.items()}
