"""Figures the evaluate stage logs to MLflow, which the report also draws (its own figures: report/figures.py),
and the style every figure shares. Each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.style.use("seaborn-v0_8-whitegrid")  # seaborn's look without importing seaborn (seconds) in every stage
# One font for every figure on every machine, and one that matplotlib ships: the style asks for Arial, then
# Liberation Sans, which where installed (most Linux desktops) lack ρ, ̂ and ⱼ and draw them as boxes.
plt.rcParams["font.family"] = ["DejaVu Sans"]


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


def save(fig: plt.Figure, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def log_figure(run_id: str, fig: plt.Figure, artifact_file: str) -> None:
    """Log to MLflow run `run_id`, then free the figure."""
    import mlflow

    mlflow.MlflowClient().log_figure(run_id, fig, artifact_file)
    plt.close(fig)
