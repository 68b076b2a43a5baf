"""Figures shared by MLflow artifacts and the report. Each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.style.use("seaborn-v0_8-whitegrid")  # seaborn's look without importing seaborn (seconds) in every stage


def reconstruction_grid(variants: dict[str, dict]) -> plt.Figure:
    """Originals in the top row, then one row of reconstructions per variant."""
    first = next(iter(variants.values()))
    originals = first["originals"]
    rows = [("original", originals)] + [(name, a["reconstructions"]) for name, a in variants.items()]
    n = len(originals)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95 + 0.3), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(images[c], 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def feature_grid(features: np.ndarray, firing_frequency: np.ndarray, title: str, n: int = 64) -> plt.Figure:
    """The `n` most often active units' decoder features, each scaled to its own range, as one tiled image.

    One imshow of a mosaic rather than n subplots: the same picture, drawn in a fraction of the time.
    """
    order = np.argsort(-firing_frequency, kind="stable")[:n]
    cols = 8
    rows = int(np.ceil(len(order) / cols))
    h, w = features.shape[1:]
    mosaic = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), np.nan)  # nan: blank separators
    for i, unit in enumerate(order):
        f = features[unit]
        r, c = divmod(i, cols)
        mosaic[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = f / (np.abs(f).max() or 1.0)
    fig, ax = plt.subplots(figsize=(cols * 0.9, rows * 0.9 + 0.4))
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("white")
    ax.imshow(mosaic, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.axis("off")
    ax.set_title(f"{title}: decoder features of the {len(order)} most active units", fontsize=10)
    fig.tight_layout(pad=0.3)
    return fig


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


def activation_histograms(samples: dict[str, np.ndarray], threshold: float) -> plt.Figure:
    """Distribution of code activations per variant, log-scaled, with the activity threshold marked."""
    import seaborn as sns

    frame = pd.concat(
        [pd.DataFrame({"activation": v, "variant": k}) for k, v in samples.items()], ignore_index=True
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.histplot(frame, x="activation", hue="variant", bins=60, element="step", fill=False, stat="probability",
                 common_norm=False, ax=ax)
    ax.set_yscale("log")
    ax.axvline(threshold, color="black", linestyle=":", linewidth=1)
    ax.set_title(f"code activations on the test set (dotted: active threshold {threshold:g})")
    fig.tight_layout()
    return fig


def frontier(arch: str, points: dict[str, "pd.DataFrame"], pca_fvu: np.ndarray, seed_points: dict[str, "pd.DataFrame"],
             targets: list[float]) -> plt.Figure:
    """FVU against L0 (log): each penalty's sweep, the main runs' seeds, PCA at k components, matched-L0 lines.

    points: penalty -> frame with columns l0, fvu, family; seed_points: variant -> frame with l0, fvu.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"l1": "tab:blue", "kl": "tab:orange", "none": "tab:gray"}
    markers = {"lam": "o", "beta": "s", "rho": "^", "default": "*"}
    for penalty, frame in points.items():
        ordered = frame.sort_values("l0")
        ax.plot(ordered["l0"], ordered["fvu"], color=colors[penalty], alpha=0.35, linewidth=1)
        for family, part in frame.groupby("family"):
            ax.scatter(part["l0"], part["fvu"], color=colors[penalty], marker=markers[family], s=60 if family == "default" else 30,
                       label=f"{penalty.upper()} ({'default setting' if family == 'default' else family + ' sweep'})", zorder=3)
    for variant, frame in seed_points.items():
        penalty = variant.split("-")[-1]
        ax.scatter(frame["l0"], frame["fvu"], facecolors="none", edgecolors=colors[penalty], marker="D", s=40,
                   label=f"{variant}, every seed", zorder=4)
    k = np.arange(1, len(pca_fvu) + 1)
    lo, hi = ax.get_xlim()
    shown = (k >= max(1, lo * 0.8)) & (k <= hi * 1.2)
    ax.plot(k[shown], pca_fvu[shown], color="black", linestyle="--", linewidth=1, label="PCA, k components (L0 = k)")
    for t in targets:
        ax.axvline(t, color="gray", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("L0: mean active code entries per test image (log)")
    ax.set_ylabel("test FVU")
    ax.set_title(f"{arch}: reconstruction against sparsity (dotted: matched-L0 comparison points)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


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
    """Distribution of each unit's mean activation rho_hat_j for the KL variants, with the target rho marked."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for i, (name, values) in enumerate(rho_hats.items()):
        color = f"C{i}"
        ax.hist(values, bins=50, histtype="step", linewidth=1.5, color=color, label=f"{name}: ρ̂ⱼ over units")
        ax.axvline(rho[name], color=color, linestyle="--", linewidth=1, label=f"{name}: target ρ = {rho[name]:g}")
    ax.set_xlabel("ρ̂ⱼ: unit j's mean activation on the test set")
    ax.set_ylabel("units")
    ax.set_title("does the KL penalty reach its target?")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def log_figure(run_id: str, fig: plt.Figure, artifact_file: str) -> None:
    """Log to MLflow run `run_id`, then free the figure."""
    import mlflow

    mlflow.MlflowClient().log_figure(run_id, fig, artifact_file)
    plt.close(fig)
