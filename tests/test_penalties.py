"""Penalties against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sae_mnist.penalties import KLPenalty, L1Penalty, NoPenalty, kl_divergence


def test_l1_is_lambda_times_mean_over_samples_of_summed_abs():
    z = torch.tensor([[1.0, -2.0], [3.0, 0.0]])  # sums of |z|: 3 and 3
    assert L1Penalty(lam=0.5)(z)["l1"].item() == pytest.approx(1.5)


def test_l1_on_conv_codes_sums_channels_and_positions():
    z = torch.zeros(2, 2, 3, 3)
    z[0, 0, 0, 0], z[0, 1, 2, 2], z[1, 0, 1, 1] = 1.0, 2.0, 4.0  # per-sample sums 3 and 4
    assert L1Penalty(lam=2.0)(z)["l1"].item() == pytest.approx(7.0)


def test_kl_by_hand():
    # rho_hat = [0.5, 0.1] (column means); KL(0.1 || 0.5) = 0.1 ln 0.2 + 0.9 ln 1.8; KL(0.1 || 0.1) = 0
    z = torch.tensor([[0.2, 0.1], [0.8, 0.1]])
    expected = 2.0 * (0.1 * math.log(0.2) + 0.9 * math.log(1.8))
    assert KLPenalty(beta=2.0, rho=0.1)(z)["kl"].item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.736128, abs=1e-6)  # 2 * (-0.160944 + 0.529008)


def test_kl_on_conv_codes_is_per_channel_over_batch_and_positions():
    z = torch.full((2, 2, 2, 2), 0.1)
    z[:, 0] = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # channel 0 mean 0.5, channel 1 mean 0.1
    expected = 0.1 * math.log(0.2) + 0.9 * math.log(1.8)
    assert KLPenalty(beta=1.0, rho=0.1)(z)["kl"].item() == pytest.approx(expected, rel=1e-6)


def test_kl_is_finite_at_saturated_activations():
    for value in (0.0, 1.0):
        z = torch.full((4, 3), value, requires_grad=True)
        term = KLPenalty(beta=1.0, rho=0.05)(z)["kl"]
        term.backward()
        assert torch.isfinite(term) and torch.isfinite(z.grad).all()
    assert kl_divergence(0.3, torch.tensor([0.3])).item() == pytest.approx(0.0, abs=1e-7)


def test_activations_and_no_penalty():
    assert NoPenalty()(torch.ones(2, 2)) == {}
    assert (NoPenalty.activation, L1Penalty.activation, KLPenalty.activation) == ("relu", "relu", "sigmoid")


def test_kl_starts_code_units_at_the_target_mean_activation():
    from sae_mnist.models import ConvSAE, LinearSAE

    penalty = KLPenalty(beta=1.0, rho=0.05)
    assert penalty.code_bias_init == pytest.approx(math.log(0.05 / 0.95))
    assert L1Penalty(lam=1.0).code_bias_init is None and NoPenalty().code_bias_init is None
    for model in (LinearSAE(8, "sigmoid"), ConvSAE(3, "sigmoid")):
        model.init_code_bias(penalty.code_bias_init)
        _, z = model(torch.zeros(2, 1, 28, 28))  # zero input: the code is sigmoid(bias) everywhere
        assert torch.allclose(z, torch.full_like(z, 0.05), atol=1e-6)
