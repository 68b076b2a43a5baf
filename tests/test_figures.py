"""Figures render the same on every machine: one font that matplotlib ships, with every glyph the labels use."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np


def _missing_glyphs(fig) -> list[str]:
    """The 'missing from font' warnings drawing `fig` gives (glyphs are looked up when the text is drawn)."""
    from matplotlib import pyplot as plt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_a_figure_with_rho_hat_draws_every_glyph_in_dejavu_sans():
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    from sae_mnist.report import figures as plots

    missing = _missing_glyphs(plots.rho_hat_distribution({"linear-kl": np.array([0.05, 0.1, 0.2])}, {"linear-kl": 0.1}))
    assert not missing, missing
    # The font the figures resolve to is matplotlib's own, not whichever sans-serif the machine has
    # (CI installs the Liberation fonts, which lack ρ, ̂ and ⱼ, so a machine-dependent choice fails here).
    chosen = font_manager.findfont(font_manager.FontProperties(family=plt.rcParams["font.family"]))
    assert Path(chosen).name == "DejaVuSans.ttf", chosen


def test_the_verdict_curve_draws_with_and_without_intervals():
    from sae_mnist.report import figures as plots

    grid, diff = np.array([40.0, 60.0, 90.0]), np.array([-0.01, 0.02, 0.05])
    fig = plots.verdict_curve("conv", grid, diff, diff - 0.01, diff + 0.01, np.array([True, False, True]),
                              (35.0, 120.0), 0.1, average=0.02)
    assert fig.axes[0].get_xlim() == (35.0, 120.0) and fig.axes[0].get_xscale() == "log"
    assert not _missing_glyphs(fig)
    one_seed = np.full(3, np.nan)  # one seed: no intervals, no significance, still a figure
    assert not _missing_glyphs(plots.verdict_curve("conv", grid, diff, one_seed, one_seed, np.zeros(3, bool),
                                                   (35.0, 120.0), 0.1))
