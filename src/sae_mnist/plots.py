"""Figures shared by MLflow artifacts and the report. Each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


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
    """The `n` most often active units' decoder features, each scaled to its own range."""
    order = np.argsort(-firing_frequency, kind="stable")[:n]
    cols = 8
    rows = int(np.ceil(len(order) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, unit in zip(axes.flat, order):
        f = features[unit]
        lim = np.abs(f).max() or 1.0
        ax.imshow(f, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(f"{title}: decoder features of the {len(order)} most active units", fontsize=10)
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


def log_figure(fig: plt.Figure, artifact_file: str) -> None:
    """Log to the active MLflow run, then free the figure."""
    import mlflow

    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)
