"""Penalties against values computed by hand. Codes are stacked: (models, entries, units)."""

from __future__ import annotations

import math

import pytest
import torch

from sae_mnist.models import ConvSAE, LinearSAE
from sae_mnist.penalties import KLPenalty, L1Penalty, NoPenalty, TopKPenalty, kl_divergence, stack_penalties


def test_l1_is_lambda_times_mean_over_images_of_summed_abs():
    z = torch.tensor([[[1.0, -2.0], [3.0, 0.0]]])  # one model; sums of |z| per image: 3 and 3
    assert L1Penalty(lam=0.5)(z, n_images=2)["l1"].tolist() == pytest.approx([1.5])


def test_l1_on_conv_codes_sums_channels_and_positions():
    z = torch.zeros(2, 2, 3, 3)  # (images, channels, 3x3 positions)
    z[0, 0, 0, 0], z[0, 1, 2, 2], z[1, 0, 1, 1] = 1.0, 2.0, 4.0  # per-image sums 3 and 4
    entries = ConvSAE.code_entries(z)
    assert entries.shape == (1, 2 * 9, 2)
    assert L1Penalty(lam=2.0)(entries, n_images=2)["l1"].tolist() == pytest.approx([7.0])


def test_kl_by_hand():
    # rho_hat = [0.5, 0.1] (column means); KL(0.1 || 0.5) = 0.1 ln 0.2 + 0.9 ln 1.8; KL(0.1 || 0.1) = 0
    z = torch.tensor([[[0.2, 0.1], [0.8, 0.1]]])
    expected = 2.0 * (0.1 * math.log(0.2) + 0.9 * math.log(1.8))
    assert KLPenalty(beta=2.0, rho=0.1)(z, n_images=2)["kl"].tolist() == pytest.approx([expected], rel=1e-6)
    assert expected == pytest.approx(0.736128, abs=1e-6)  # 2 * (-0.160944 + 0.529008)


def test_kl_on_conv_codes_is_per_channel_over_batch_and_positions():
    z = torch.full((2, 2, 2, 2), 0.1)  # (images, channels, 2x2 positions)
    z[:, 0] = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # channel 0 mean 0.5, channel 1 mean 0.1
    expected = 0.1 * math.log(0.2) + 0.9 * math.log(1.8)
    assert KLPenalty(beta=1.0, rho=0.1)(ConvSAE.code_entries(z), n_images=2)["kl"].tolist() == pytest.approx(
        [expected], rel=1e-6)


def test_kl_is_finite_at_saturated_activations():
    for value in (0.0, 1.0):
        z = torch.full((1, 4, 3), value, requires_grad=True)
        term = KLPenalty(beta=1.0, rho=0.05)(z, n_images=4)["kl"].sum()
        term.backward()
        assert torch.isfinite(term) and torch.isfinite(z.grad).all()
    assert kl_divergence(0.3, torch.tensor([0.3])).item() == pytest.approx(0.0, abs=1e-7)


def test_a_stacked_penalty_gives_each_model_its_own_value():
    z = torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(0))
    for penalties in ([L1Penalty(0.1), L1Penalty(0.5), L1Penalty(2.0)],
                      [KLPenalty(1.0, 0.05), KLPenalty(3.0, 0.2), KLPenalty(0.5, 0.5)]):
        stacked = stack_penalties(penalties)
        (name,) = stacked.terms
        together = stacked(z, n_images=5)[name]
        alone = torch.cat([p(z[k:k + 1], n_images=5)[name] for k, p in enumerate(penalties)])
        assert together.shape == (3,) and torch.allclose(together, alone, rtol=1e-6)
    with pytest.raises(ValueError, match="mixes"):
        stack_penalties([L1Penalty(0.1), KLPenalty(1.0, 0.05)])


def test_activations_terms_and_no_penalty():
    assert NoPenalty()(torch.ones(1, 2, 2), n_images=2) == {}
    assert (NoPenalty.activation, L1Penalty.activation, KLPenalty.activation) == ("relu", "relu", "sigmoid")
    assert (NoPenalty.terms, L1Penalty.terms, KLPenalty.terms) == ((), ("l1",), ("kl",))


def test_kl_starts_code_units_at_the_target_mean_activation():
    penalty = KLPenalty(beta=1.0, rho=0.05)
    assert penalty.code_bias_init == pytest.approx(math.log(0.05 / 0.95))
    assert L1Penalty(lam=1.0).code_bias_init is None and NoPenalty().code_bias_init is None
    for model in (LinearSAE(8, penalty.activate), ConvSAE(3, penalty.activate)):
        model.init_code_bias(penalty.code_bias_init)
        _, z = model(torch.zeros(2, 1, 28, 28))  # zero input: the code is sigmoid(bias) everywhere
        assert torch.allclose(z, torch.full_like(z, 0.05), atol=1e-6)


def test_topk_keeps_exactly_k_entries_per_image():
    u = torch.randn(2, 6 * 49, 5, generator=torch.Generator().manual_seed(0)) + 3.0  # (models, images x positions, C)
    z = stack_penalties([TopKPenalty(4), TopKPenalty(9)]).activate(u, n_images=6)
    per_image = (z > 0).reshape(2, 6, -1).sum(2)
    assert per_image.tolist() == [[4] * 6, [9] * 6]  # positive pre-activations: exactly k, per image and model
    kept = z.reshape(2, 6, -1)
    assert torch.equal(kept[0].topk(4, dim=1).values, u.reshape(2, 6, -1)[0].topk(4, dim=1).values)  # the largest
    assert (TopKPenalty(3).activate(-torch.ones(1, 4, 2), n_images=4) == 0).all()  # ReLU: negatives stay off
    assert TopKPenalty.terms == () and TopKPenalty(3)(z, 6) == {}


def test_kl_scale_multiplies_the_code_but_not_the_firing_probability():
    u = torch.randn(1, 10, 3)
    for scale in (1.0, 2.0, 5.0):
        penalty = KLPenalty(beta=1.0, rho=0.1, scale=scale)
        z = penalty.activate(u, 10)
        assert torch.allclose(z, scale * torch.sigmoid(u)) and torch.allclose(penalty.firing_probability(z),
                                                                              torch.sigmoid(u))
        rho_hat = torch.sigmoid(u).mean(1)
        assert penalty(z, 10)["kl"].item() == pytest.approx(kl_divergence(0.1, rho_hat).sum().item(), rel=1e-6)


def test_a_fixed_code_scale_leaves_no_way_to_lower_kl_without_changing_the_reconstruction():
    """z = s * sigmoid(u) with s a constant: the reconstruction fixes the code, and the code fixes the KL term.

    (A learned per-unit gain would not: g * sigmoid(u - ln g) is nearly sigmoid(u) while sigmoid is small,
    yet its firing probability is g times smaller, so the KL term could move at an unchanged reconstruction.)
    """
    torch.manual_seed(0)
    penalty = KLPenalty(beta=1.0, rho=0.02, scale=2.0)
    model = LinearSAE(16, penalty.activate)
    assert [name for name, _ in model.named_parameters()] == ["decoder_bias", "encoder.weight", "encoder.bias",
                                                             "decoder.weight"]  # no scale or gain to learn
    x = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        model.encoder.bias.fill_(-4.0)  # sparse: sigmoid(u) mostly small
        x_hat, z = model(x)
        # Equal reconstructions mean equal codes: the unit-norm decoder columns are linearly independent.
        w = model.decoder.weight  # (784, 16)
        z_back = torch.linalg.lstsq(w, (x_hat - model.decoder_bias).flatten(1).T).solution.T
        assert torch.allclose(z_back, z, atol=1e-4)
        kl = penalty(model.code_entries(z), 64)["kl"]
        assert torch.allclose(penalty(model.code_entries(z_back), 64)["kl"], kl, rtol=1e-3)
        # The loophole a learned gain would open: nearly the same code, a very different KL term.
        u = model.pre_activations(x)
        gain = 4.0
        z_gain = gain * torch.sigmoid(u - math.log(gain)) * penalty.scale
        assert (z_gain - z).abs().max() < 0.05 * z.abs().max()
        rho_hat_gain = torch.sigmoid(u - math.log(gain)).mean(0)
        kl_gain = kl_divergence(penalty.rho, rho_hat_gain).sum()
        assert abs(kl_gain - kl) > 0.5 * kl
