"""The report's own figures (the evaluate stage logs the others, sae_mnist.plots, to MLflow): the frontiers, KL − L1
along L0, the robustness checks, training losses, firing frequencies and ρ̂. Each returns a matplotlib Figure; a
change here re-runs the report stage only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from ..plots import plt

def loss_curves(histories: dict[str, pd.DataFrame], title: str, column: str = "recon") -> plt.Figure:
    """Per-epoch training loss (`column`) for each labelled history."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, history in histories.items():
        ax.plot(history["epoch"], history[column], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"train {column} loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


PENALTY_COLORS = {"l1": "tab:blue", "kl": "tab:orange", "topk": "tab:green", "none": "tab:gray"}


def frontiers(arch: str, thresholds: list[float], points: dict[str, list[dict]], pca_fvu: np.ndarray,
              fronts: dict[float, dict[str, dict[int, tuple]]], grids: dict[float, np.ndarray | None],
              references: list[dict] = ()) -> plt.Figure:
    """FVU of the truncated code against L0 (log), one panel per activity threshold.

    Every run of every seed as a dot (KL's code scales as marker shapes), each seed's Pareto frontier as a
    thin line per penalty, PCA with k = L0 components dashed, the matched-L0 range of the primary
    estimand shaded. points: penalty -> frontier-file points; fronts: threshold -> penalty -> seed -> (L0, FVU).
    references: other implementations' frontiers ({threshold, l0, fvu, label, marker}), drawn on their panel.
    """
    fig, axes = plt.subplots(1, len(thresholds), figsize=(4.2 * len(thresholds), 4.2), sharey=True, squeeze=False)
    scale_markers = {1.0: "v", 2.0: "o", 5.0: "^"}
    for ax, t in zip(axes[0], thresholds):
        key = f"{t:g}"
        for penalty, pts in points.items():
            color = PENALTY_COLORS[penalty]
            for point in pts:
                m = point["metrics"]
                marker = scale_markers.get(point["setting"].get("scale"), "o") if penalty == "kl" else "o"
                ax.scatter(m[f"l0_at_{key}"], m[f"fvu_at_{key}"], color=color, marker=marker, s=12, alpha=0.5,
                           linewidths=0)
            for seed, (x, y, *_) in fronts[t].get(penalty, {}).items():
                ax.plot(x, y, color=color, linewidth=1, alpha=0.8,
                        label=f"{penalty.upper() if penalty != 'topk' else 'TopK'} frontier (per seed)" if seed == min(fronts[t][penalty]) else None)
        k = np.arange(1, len(pca_fvu) + 1)
        lo, hi = ax.get_xlim()
        shown = (k >= max(1, lo * 0.8)) & (k <= hi * 1.2)
        ax.plot(k[shown], pca_fvu[shown], color="black", linestyle="--", linewidth=1, label="PCA, k = L0 components")
        for reference in references:
            if reference["threshold"] == t:
                ax.plot(reference["l0"], reference["fvu"], color="black", marker=reference.get("marker", "x"),
                        markersize=6, linewidth=0.8, label=reference["label"])
        if grids.get(t) is not None:
            ax.axvspan(grids[t][0], grids[t][-1], color="gray", alpha=0.12, label="matched-L0 range")
        ax.set_xscale("log")
        ax.set_xlabel(f"L0 (entries > {t:g}), log")
        ax.set_title(f"threshold {t:g}", fontsize=10)
    axes[0, 0].set_ylabel("test FVU of the truncated code")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{arch}: reconstruction against sparsity (KL markers: ▼ scale 1, ● 2, ▲ 5)", fontsize=11)
    fig.tight_layout()
    return fig


def _difference_axes(fig: plt.Figure, ax, xlabel: str, title: str,
                     minor: tuple[int, ...] = tuple(range(2, 10))) -> plt.Figure:
    """A KL − L1 figure's axes: L0 on a log x axis labelled 40, 60, 100 rather than 4 × 10¹ (of the minor ticks,
    only the multiples `minor` of a power of ten: fewer where the axis spans decades and labels would overlap)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda x, _: f"{x:g}" if round(x / 10 ** math.floor(math.log10(x))) in minor else ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("KL − L1 in test FVU\n(below 0: KL reconstructs better)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def verdict_curve(arch: str, grid: np.ndarray, diff: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray,
                  significant: np.ndarray, covered: tuple[float, float], threshold: float,
                  average: float | None = None) -> plt.Figure:
    """KL − L1 in FVU against L0 (log) at each grid point, with its paired 95% interval (unadjusted) as a bar.

    Filled markers: the interval excludes zero; hollow: it does not. The solid line is zero (below it KL
    reconstructs better), the dashed one the average over the grid (the primary estimand). The x axis spans
    the covered range, the L0 every seed's L1 and KL frontiers reach. Intervals that are nan (one seed) draw
    no bar.
    """
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.axhline(0.0, color="black", linewidth=1)
    errors = np.nan_to_num(np.vstack([diff - ci_low, ci_high - diff]), nan=0.0)
    for kept, face, label in ((significant, "tab:red", "interval excludes 0"),
                              (~significant, "white", "interval includes 0")):
        if kept.any():
            ax.errorbar(grid[kept], diff[kept], yerr=errors[:, kept], fmt="o", color="tab:red", markerfacecolor=face,
                        capsize=3, label=f"KL − L1 at a grid point, paired 95% CI: {label}")
    if average is not None:
        ax.axhline(average, color="tab:purple", linestyle="--", linewidth=1,
                   label=f"average over the grid (primary estimand) {average:+.4f}")
    ax.set_xlim(*covered)
    return _difference_axes(fig, ax, f"L0 (entries > {threshold:g}), log; the axis spans the covered range",
                            f"{arch}: KL − L1 along the matched-L0 grid (threshold {threshold:g})")


# How each label of equivalence.LABELS is drawn: colour (the better penalty's), marker, filled.
LABEL_STYLE = {"KL better": (PENALTY_COLORS["kl"], "o", True), "L1 better": (PENALTY_COLORS["l1"], "o", True),
               "equivalent": ("tab:green", "s", True), "unresolved": ("tab:gray", "o", False)}


def threshold_panels(arch: str, panels: list[tuple], margin: float, primary: float) -> plt.Figure:
    """KL − L1 in FVU against L0 (log), one panel per activity threshold: (threshold, grid, resolutions, declared
    range or None, crossings). Each point with its paired 95% interval, coloured by its label; the band is the
    equivalence margin; where `declared` is given, the L0 outside it is shaded (outside the primary estimand); each
    crossing is a cross on the zero line with its 95% interval along L0 as a bar."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6), squeeze=False)  # own y: the margin shows
    for ax, (threshold, grid, points, declared, crossings) in zip(axes[0], panels):
        for c in crossings:
            ax.plot([c.l0], [0.0], "x", color="tab:purple", markersize=7, zorder=5,
                    label="sign change, 95% CI" if c.ci_low is not None else "sign change")
            if c.ci_low is not None:
                ax.plot([c.ci_low, c.ci_high], [0.0, 0.0], color="tab:purple", linewidth=4, alpha=0.6,
                        solid_capstyle="butt", zorder=4)
        diff, low, high = (np.array([getattr(p, key) for p in points]) for key in ("diff", "ci_low", "ci_high"))
        ax.axhspan(-margin, margin, color="tab:green", alpha=0.12, linewidth=0, label=f"±{margin:g} margin")
        ax.axhline(0.0, color="black", linewidth=1)
        errors = np.nan_to_num(np.vstack([diff - low, high - diff]), nan=0.0)
        for label, (colour, marker, filled) in LABEL_STYLE.items():
            kept = np.array([p.label == label for p in points])
            if kept.any():
                ax.errorbar(grid[kept], diff[kept], yerr=errors[:, kept], fmt=marker, color=colour, capsize=2,
                            markerfacecolor=colour if filled else "white", markersize=4, label=label)
        if declared is not None:
            lo, hi = grid.min() / 1.05, grid.max() * 1.05
            for a, b in ((lo, declared[0]), (declared[1], hi)):
                if a < b:
                    ax.axvspan(a, b, color="tab:gray", alpha=0.18, linewidth=0)
            ax.set_xlim(lo, hi)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda x, _: f"{x:g}" if round(x / 10 ** math.floor(math.log10(x))) in (2, 3, 5) else ""))
        ax.set_xlabel(f"L0 (entries > {threshold:g})")
        ax.set_title(f"threshold {threshold:g}" + (" (primary; grey: outside\nthe declared range)"
                                                   if threshold == primary and declared else ""), fontsize=9)
    axes[0][0].set_ylabel("KL − L1 in test FVU\n(below 0: KL reconstructs better)")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="lower center", ncol=len(handles))
    fig.suptitle(f"{arch}: KL − L1 along L0 at every activity threshold, each point labelled", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def robustness_curves(arch: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> plt.Figure:
    """KL − L1 in FVU against L0 (log) on each check's grid: label -> (grid, KL − L1 at each grid point).

    The first curve (the primary over every seed) is drawn thick and black, the others thin, one colour each.
    The solid grey line is zero (below it KL reconstructs better).
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.axhline(0.0, color="grey", linewidth=1)
    for i, (label, (grid, diff)) in enumerate(curves.items()):
        style = {"color": "black", "linewidth": 2.2} if i == 0 else {"color": f"C{i - 1}", "linewidth": 1.2}
        ax.plot(grid, diff, marker="o", markersize=3, label=label, **style)
    return _difference_axes(fig, ax, f"L0 (entries > {threshold:g}), log",
                            f"{arch}: KL − L1 along the grid, as trained and under each variation", minor=(2, 5))


def firing_histograms(frequencies: dict[str, np.ndarray]) -> plt.Figure:
    """Per variant, the distribution of log10 firing frequency over code units; dead units counted in the legend."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    bins = np.linspace(-4.5, 0, 46)
    for name, freq in frequencies.items():
        alive = freq[freq > 0]
        dead = len(freq) - len(alive)
        ax.hist(np.log10(alive), bins=bins, histtype="step", linewidth=1.5,
                label=f"{name} ({dead}/{len(freq)} dead, not shown)")
    ax.set_xlabel("log10 firing frequency (fraction of test images on which the unit is active)")
    ax.set_ylabel("units")
    ax.set_title("how often each code unit fires")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def rho_hat_distribution(rho_hats: dict[str, np.ndarray], rho: dict[str, float]) -> plt.Figure:
    """Distribution of each unit's firing probability rho_hat_j (mean sigmoid) for the KL variants, target rho marked."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for i, (name, values) in enumerate(rho_hats.items()):
        color = f"C{i}"
        ax.hist(values, bins=50, histtype="step", linewidth=1.5, color=color, label=f"{name}: ρ̂ⱼ over units")
        ax.axvline(rho[name], color=color, linestyle="--", linewidth=1, label=f"{name}: target ρ = {rho[name]:g}")
    ax.set_xlabel("ρ̂ⱼ: unit j's mean sigmoid(u) on the test set")
    ax.set_ylabel("units")
    ax.set_title("does the KL penalty reach its target?")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


