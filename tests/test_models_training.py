"""Architectures and the training loop: shapes, the decoder constraint, determinism, divergence."""

from __future__ import annotations

import pytest
import torch

from sae_mnist.models import ConvSAE, LinearSAE
from sae_mnist.params import StackTraining
from sae_mnist.penalties import KLPenalty, L1Penalty
from sae_mnist.training import TrainingDiverged, convergence, seed_everything, train_model

PARAMS = StackTraining(epochs=2, batch_size=32, lr=3e-3, threads=1)
RELU, SIGMOID = L1Penalty(0.1).activate, KLPenalty(1.0, 0.05).activate


def images(n=96, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("model, code_shape", [(LinearSAE(16, RELU), (5, 16)), (ConvSAE(4, SIGMOID), (5, 4, 7, 7))])
def test_shapes_and_unit_norm_decoder(model, code_shape):
    x = torch.rand(5, 1, 28, 28)
    x_hat, z = model(x)
    assert x_hat.shape == x.shape and z.shape == code_shape
    entries = model.code_entries(z)  # the layout penalties take: (1 model, images x positions, units)
    assert entries.shape == (1, z.numel() // code_shape[1], code_shape[1])
    assert torch.equal(entries[0, :, 0], z[:, 0].flatten())  # unit 0 of every image (and position), in order
    features = model.decoder_features()
    assert features.shape[0] == code_shape[1]
    assert torch.allclose(features.flatten(1).norm(dim=1), torch.ones(code_shape[1]), atol=1e-5)
    if model.activation == SIGMOID:
        assert ((z > 0) & (z < 1)).all()


@pytest.mark.parametrize("center_input", [False, True])
def test_conv_matmul_path_equals_torch_convolutions(center_input):
    """ConvSAE runs its conv layers as unfold/fold matmuls for speed; values and gradients must match F.conv2d."""
    torch.manual_seed(0)
    model = ConvSAE(6, RELU, center_input)
    with torch.no_grad():  # non-zero biases, so their placement is checked too
        model.encoder.bias.uniform_(-0.5, 0.5)
        model.decoder_bias.uniform_(0.0, 0.3)  # a per-pixel bias
    x = torch.rand(3, 1, 28, 28)
    x_hat, z = model(x)
    x_in = x - model.decoder_bias if center_input else x  # the pre-encoder bias
    z_ref = torch.relu(torch.nn.functional.conv2d(x_in, model.encoder.weight, model.encoder.bias, stride=4, padding=2))
    x_ref = torch.nn.functional.conv_transpose2d(z_ref, model.decoder.weight, stride=4, padding=2) + model.decoder_bias
    assert torch.allclose(z, z_ref, atol=1e-5) and torch.allclose(x_hat, x_ref, atol=1e-5)
    grads = torch.autograd.grad(x_hat.square().sum(), [model.encoder.weight, model.decoder.weight])
    grads_ref = torch.autograd.grad(x_ref.square().sum(), [model.encoder.weight, model.decoder.weight])
    for g, g_ref in zip(grads, grads_ref):
        assert torch.allclose(g, g_ref, rtol=1e-4, atol=1e-4)


def train_once(arch, seed=0):
    seed_everything(seed)
    model = LinearSAE(16, RELU) if arch == "linear" else ConvSAE(4, SIGMOID)
    penalty = L1Penalty(0.1) if arch == "linear" else KLPenalty(1.0, 0.05)
    result = train_model(model, penalty, images(), PARAMS, seed, torch.device("cpu"))
    return model, result


@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_training_is_bitwise_deterministic_on_cpu(arch):
    torch.set_num_threads(1)
    (a, ra), (b, rb) = train_once(arch), train_once(arch)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert [r["loss"] for r in ra.history] == [r["loss"] for r in rb.history]
    assert len(ra.history) == PARAMS.epochs and ra.history[-1]["step"] == PARAMS.epochs * 3
    c, _ = train_once(arch, seed=1)
    assert not torch.equal(a.decoder.weight, c.decoder.weight)
    assert torch.allclose(a.decoder_features().flatten(1).norm(dim=1), torch.ones(len(a.decoder_features())), atol=1e-5)


def test_training_reduces_the_loss():
    _, result = train_once("linear")
    seed_everything(0)
    model = LinearSAE(16, RELU)
    long = StackTraining(epochs=6, batch_size=32, lr=3e-3, threads=1)
    result = train_model(model, L1Penalty(0.01), images(), long, 0, torch.device("cpu"))
    assert result.history[-1]["recon"] < 0.8 * result.history[0]["recon"]


@pytest.mark.parametrize("make", [lambda: LinearSAE(16, RELU), lambda: ConvSAE(4, RELU)])
def test_encoder_from_decoder_is_the_decoders_transpose(make):
    model = make()
    model.init_encoder_from_decoder()
    x = torch.rand(2, 1, 28, 28)
    features = model.decoder_features().flatten(1)  # each unit's unit-norm decoder pattern
    if isinstance(model, LinearSAE):  # the pre-activation of unit j is <x, d_j>
        assert torch.allclose(model.pre_activations(x), x.flatten(1) @ features.T, atol=1e-5)
    else:  # the encoder filter of channel c is its decoder filter
        assert torch.equal(model.encoder.weight[:, 0].flatten(1), features)
    assert torch.equal(model.encoder.bias, torch.zeros_like(model.encoder.bias))


def test_project_decoder_grad_by_hand_linear():
    model = LinearSAE(2, RELU)
    w = torch.zeros(784, 2)
    w[0, 0] = 1.0  # unit 0: e0
    w[0, 1] = w[1, 1] = 2 ** -0.5  # unit 1: (e0 + e1) / sqrt 2
    g = torch.zeros(784, 2)
    g[:2, 0] = torch.tensor([3.0, 4.0])  # radial part 3 e0
    g[[0, 2], 1] = torch.tensor([1.0, 2.0])  # <g, w> = 1 / sqrt 2: radial part (e0 + e1) / 2
    with torch.no_grad():
        model.decoder.weight.copy_(w)
    model.decoder.weight.grad = g.clone()
    model.project_decoder_grad()
    expected = torch.zeros(784, 2)
    expected[:2, 0] = torch.tensor([0.0, 4.0])
    expected[:3, 1] = torch.tensor([0.5, -0.5, 2.0])
    assert torch.allclose(model.decoder.weight.grad, expected, atol=1e-6)
    assert torch.equal(model.decoder.weight, w)  # the weights are left alone


def test_project_decoder_grad_by_hand_conv():
    model = ConvSAE(1, RELU)
    with torch.no_grad():
        model.decoder.weight.fill_(1 / 8)  # 64 entries of 1/8: unit norm
    g = torch.zeros(1, 1, 8, 8)
    g[0, 0, 0, 0] = 8.0  # <g, w> = 1: the radial part is w itself
    model.decoder.weight.grad = g
    model.project_decoder_grad()
    expected = torch.full((1, 1, 8, 8), -1 / 8)
    expected[0, 0, 0, 0] = 8 - 1 / 8
    assert torch.allclose(model.decoder.weight.grad, expected, atol=1e-6)


def test_divergence_stops_with_a_clear_message():
    model = LinearSAE(8, RELU)
    with pytest.raises(TrainingDiverged, match="linear-x seed 0: loss became NaN or infinite at epoch 1, step 1;"):
        train_model(model, L1Penalty(float("inf")), images(), PARAMS, 0, torch.device("cpu"), desc="linear-x seed 0")


def test_divergence_names_the_first_bad_step():
    seed_everything(0)
    model = LinearSAE(8, RELU)
    huge = StackTraining(epochs=2, batch_size=32, lr=1e30, threads=1)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step [23];"):
        train_model(model, L1Penalty(0.1), images(), huge, 0, torch.device("cpu"))


def test_convergence_compares_the_last_two_tenths_of_the_objective():
    # Ten windows of 2 steps; means 10, 9, ..., 2.2, 2.0: the last tenth fell by (2.2 - 2.0) / 2.0 = 10%.
    sums = [2 * m for m in (10, 9, 8, 7, 6, 5, 4, 3, 2.2, 2.0)]
    result = convergence(sums, [2] * 10, data_variance=50.0)
    assert result["objective_by_tenth"][-2:] == pytest.approx([2.2, 2.0])
    assert result["relative_change_last_tenth"] == pytest.approx(0.1)
    assert result["fvu_change_last_tenth"] == pytest.approx(0.2 / 50.0)
    assert not result["converged"]
    flat = convergence([2 * m for m in (10, 9, 8, 7, 6, 5, 4, 3, 2.015, 2.0)], [2] * 10, data_variance=50.0)
    assert flat["relative_change_last_tenth"] == pytest.approx(0.0075) and flat["converged"]
    rising = convergence([1.0] * 8 + [2.0, 2.05], [1] * 10, data_variance=1.0)  # a rise counts as unconverged too
    assert rising["relative_change_last_tenth"] == pytest.approx(-0.05 / 2.05) and not rising["converged"]


def test_convergence_has_an_fvu_floor_for_nearly_lossless_models():
    # Means 0.011 then 0.010 over the last two tenths: a 10% fall, but 0.001 / 50 = 2e-5 in FVU units (< 1e-4).
    lossless = convergence([1.0] * 8 + [0.011, 0.010], [1] * 10, data_variance=50.0)
    assert lossless["relative_change_last_tenth"] == pytest.approx(0.1)
    assert lossless["fvu_change_last_tenth"] == pytest.approx(2e-5) and lossless["converged"]
    # The same fall with a data variance of 5: 2e-4 in FVU units, above the floor.
    assert not convergence([1.0] * 8 + [0.011, 0.010], [1] * 10, data_variance=5.0)["converged"]
