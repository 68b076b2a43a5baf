"""Features (firing frequencies, decoder weights) and Reconstructions and activations: figures of the first seed's
default settings."""

from __future__ import annotations

from pathlib import Path

from ...plots import activation_histograms, feature_grid, reconstruction_grid, save
from ..figures import firing_histograms
from ..inputs import Inputs


def save_reconstructions_and_features(inputs: Inputs, figures: Path) -> None:
    variants = inputs.variants
    save(reconstruction_grid({n: v.arrays for n, v in variants.items()}), figures / "reconstructions.png")
    for name, v in variants.items():
        save(feature_grid(v.arrays["features"], v.arrays["firing_frequency"], name), figures / f"features-{name}.png")


def save_arch_figures(inputs: Inputs, arch: str, figures: Path) -> None:
    """figures/activations-<arch>.png and firing-<arch>.png over the architecture's variants."""
    arrays = {n: v.arrays for n, v in inputs.variants.items() if v.arch == arch}
    save(activation_histograms({n: a["activation_sample"] for n, a in arrays.items()}, inputs.theta),
         figures / f"activations-{arch}.png")
    save(firing_histograms({n: a["firing_frequency"] for n, a in arrays.items()}), figures / f"firing-{arch}.png")


def section(inputs: Inputs) -> str:
    md = ["## Features\n",
          "Firing frequency of every code unit (conv: channel active anywhere on the image), log scale; dead "
          "units are counted in the legend.\n"]
    md += [f"![{arch} firing frequencies](figures/firing-{arch}.png)\n" for arch in inputs.archs]
    md.append("Decoder weights of the most often active units (linear: decoder columns as 28×28 images; conv: 8×8 "
              "transposed-convolution filters), red positive, blue negative, first seed.\n")
    md += [f"![features {name}](figures/features-{name}.png)\n" for name in inputs.variants]
    md.append("## Reconstructions and activations\n")
    md.append("The first test images (top row) and each variant's reconstruction from its truncated code (first "
              "seed).\n")
    md.append("![reconstructions](figures/reconstructions.png)\n")
    md += [f"![{arch} activations](figures/activations-{arch}.png)\n" for arch in inputs.archs]
    return "\n".join(md)
