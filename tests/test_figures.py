"""Figures render the same on every machine: one font that matplotlib ships, with every glyph the labels use."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np


def test_a_figure_with_rho_hat_draws_every_glyph_in_dejavu_sans():
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    from sae_mnist import plots

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.rho_hat_distribution({"linear-kl": np.array([0.05, 0.1, 0.2])}, {"linear-kl": 0.1})
        fig.savefig(io.BytesIO(), format="png")  # glyphs are looked up when the text is drawn
        plt.close(fig)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing
    # The font the figures resolve to is matplotlib's own, not whichever sans-serif the machine has
    # (CI installs the Liberation fonts, which lack ρ, ̂ and ⱼ, so a machine-dependent choice fails here).
    chosen = font_manager.findfont(font_manager.FontProperties(family=plt.rcParams["font.family"]))
    assert Path(chosen).name == "DejaVuSans.ttf", chosen
