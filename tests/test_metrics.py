"""Evaluation metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sae_mnist.metrics import firing_frequency, hoyer, reconstruction_metrics, sparsity_metrics, unit_mean_activation


def test_reconstruction_metrics_by_hand():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    x_hat = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # squared error 1 over 4 pixels; mean image [0.5, 1], total variance 0.25 + 0.25 = 0.5
    m = reconstruction_metrics(x, x_hat)
    assert m["mse"] == pytest.approx(0.25)
    assert m["fvu"] == pytest.approx(2.0)
    assert m["psnr_db"] == pytest.approx(10 * math.log10(4))


def test_perfect_reconstruction():
    x = torch.rand(3, 1, 4, 4)
    m = reconstruction_metrics(x, x.clone())
    assert m["mse"] == 0 and m["fvu"] == 0 and m["psnr_db"] == math.inf


def test_sparsity_metrics_by_hand():
    z = torch.tensor([[0.0, 0.5, 0.2], [0.05, 0.0, 0.0]])
    m = sparsity_metrics(z, threshold=0.1, always_on_above=0.1)
    assert m["l0"] == pytest.approx(1.0)  # 2 active entries, then 0
    assert m["code_size"] == 3
    assert m["mean_activation"] == pytest.approx(0.75 / 6)
    assert m["dead_fraction"] == pytest.approx(1 / 3)  # unit 0 never exceeds 0.1
    assert m["always_on_fraction"] == pytest.approx(2 / 3)  # units 1 and 2 fire on half the samples
    assert (m["code_units"], m["dead_units"], m["always_on_units"]) == (3, 1, 2)  # the same as counts
    first = (math.sqrt(3) - 0.7 / math.sqrt(0.29)) / (math.sqrt(3) - 1)
    assert m["hoyer"] == pytest.approx((first + 1.0) / 2)  # the second sample is one-hot


def test_hoyer_extremes():
    assert hoyer(torch.tensor([[0.0, 0.0, 2.0, 0.0]])).item() == pytest.approx(1.0)
    assert hoyer(torch.tensor([[0.3, 0.3, 0.3, 0.3]])).item() == pytest.approx(0.0)
    assert hoyer(torch.zeros(1, 4)).item() == pytest.approx(1.0)


def test_conv_units_are_channels_active_anywhere():
    z = torch.zeros(2, 3, 2, 2)
    z[0, 0, 1, 1] = 0.9  # channel 0 fires on sample 0 only
    z[:, 1, 0, 0] = 0.9  # channel 1 fires on both
    assert firing_frequency(z, 0.1).tolist() == [0.5, 1.0, 0.0]
    m = sparsity_metrics(z, threshold=0.1, always_on_above=0.6)
    assert m["l0"] == pytest.approx(1.5) and m["code_size"] == 12
    assert m["dead_fraction"] == pytest.approx(1 / 3) and m["always_on_fraction"] == pytest.approx(1 / 3)
    assert (m["code_units"], m["dead_units"], m["always_on_units"]) == (3, 1, 1)  # channels, not 12 entries
    assert unit_mean_activation(z).tolist() == pytest.approx([0.9 / 8, 1.8 / 8, 0.0])


def test_truncation_zeroes_entries_at_or_below_the_threshold():
    from sae_mnist.metrics import l0, truncate

    z = torch.tensor([[0.05, 0.1, 0.2], [0.0, 0.3, 0.09]])
    assert torch.equal(truncate(z, 0.1), torch.tensor([[0.0, 0.0, 0.2], [0.0, 0.3, 0.0]]))  # 0.1 is not above 0.1
    assert l0(z, 0.1) == pytest.approx(1.0) and l0(z, 0.01) == pytest.approx(2.5)
    assert l0(truncate(z, 0.1), 0.0) == l0(z, 0.1)  # L0 counts exactly the entries the decoder then uses
