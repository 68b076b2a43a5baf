"""benchmarks/reference_sae.py: the matched-L0 comparison, the batch stream, and the SAELens adapter."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_sae.py"
spec = importlib.util.spec_from_file_location("reference_sae", SCRIPT)
reference_sae = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference_sae)


def test_the_reference_is_read_linear_in_log_log_and_never_extrapolated():
    # Between (10, 0.2) and (40, 0.05): L0 20 is halfway in log L0, so log FVU is halfway: sqrt(0.2 * 0.05) = 0.1.
    frontier = [(40.0, 0.05), (10.0, 0.2), (80.0, 0.03)]
    ours = [(20.0, 0.1), (40.0, 0.05), (10.0, 0.2), (9.0, 0.3), (81.0, 0.03)]
    read = {r["l0"]: r["reference_fvu"] for r in reference_sae.matched_comparison(ours, frontier)["points"]}
    assert read[20.0] == pytest.approx(0.1)
    assert read[40.0] == pytest.approx(0.05) and read[10.0] == pytest.approx(0.2)  # on a point: that point
    assert read[9.0] is None and read[81.0] is None


def test_matched_comparison_reports_the_worst_point():
    theirs = [(10.0, 0.2), (40.0, 0.05)]
    ours = [(20.0, 0.102), (40.0, 0.049), (100.0, 0.01)]  # +2%, -2%, outside their range
    result = reference_sae.matched_comparison(ours, theirs)
    assert [r["relative_difference"] is None for r in result["points"]] == [False, False, True]
    assert result["n_matched"] == 2
    assert result["worst_relative_difference"] == pytest.approx(0.02)
    assert result["passed"] == (result["worst_relative_difference"] <= 0.02)
    assert not reference_sae.matched_comparison([(20.0, 0.11)], theirs)["passed"]


def test_full_batches_follow_the_epoch_permutations():
    x = torch.arange(10).unsqueeze(1)
    batches = reference_sae.full_batches(x, 4, seed=0)
    stream = torch.cat([next(batches) for _ in range(5)]).flatten()  # 20 rows: two epochs exactly
    order = torch.Generator().manual_seed(0)
    expected = torch.cat([torch.randperm(10, generator=order) for _ in range(2)])
    assert torch.equal(stream, expected)


def test_folded_saelens_sae_is_our_linear_sae():
    from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig  # in the test extra: never skipped

    torch.manual_seed(0)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=784, d_sae=16))
    with torch.no_grad():  # free, unequal decoder norms and nonzero biases, as after training
        sae.W_dec.mul_(torch.rand(16, 1) * 3 + 0.1)
        sae.b_dec.uniform_(0, 0.5)
        sae.b_enc.uniform_(-0.1, 0.1)
    x = torch.rand(8, 1, 28, 28)
    code_norms = sae.W_dec.norm(dim=1)
    z_before = sae.encode(x.flatten(1))
    sae.fold_W_dec_norm()
    model = reference_sae.as_linear_sae(sae, 16)
    x_hat, z = model(x)
    assert torch.allclose(x_hat.flatten(1), sae(x.flatten(1)), atol=1e-5)
    assert torch.allclose(z, z_before * code_norms, atol=1e-5)  # the code on our (unit-norm decoder) scale
    assert math.isclose(model.decoder.weight.norm(dim=0).mean().item(), 1.0, rel_tol=1e-5)


def test_our_decoder_handling_inside_saelenss_trainer():
    # benchmarks/dense_end_gap.py's unit-decoder variants: SAELens's own trainer, with hooks on its optimiser that
    # keep every decoder row at unit norm, take the gradient's radial part out before each step, and start b_dec at
    # the training mean. A few real steps, checked against those three promises.
    from sae_mnist.params import load_params

    spec = importlib.util.spec_from_file_location("dense_end_gap", SCRIPT.parent / "dense_end_gap.py")
    dense_end_gap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dense_end_gap)
    assert dense_end_gap.saelens_hooks("default") is None and dense_end_gap.saelens_hooks("no-grad-clipping") is None
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    seen = {}

    def configure(trainer, x_flat):
        dense_end_gap.saelens_hooks("unit-decoder-projected-mean-b_dec")(trainer, x_flat)
        seen["b_dec"] = trainer.sae.b_dec.detach().clone()
        w = trainer.sae.W_dec

        def radial(optimizer, args, kwargs):  # registered after the projection: what Adam then sees
            seen.setdefault("radial", []).append(float((w.grad * w.detach()).sum(1).abs().max()))

        trainer.optimizer.register_step_pre_hook(radial)

    params = load_params(SCRIPT.parents[1] / "params.yaml")
    training = params.train.of("linear").model_copy(update={"batch_size": 16, "lr": 0.01})
    sae, _ = reference_sae.train_saelens(0.1, 32, x, 8, training, params.recipe, 0, configure, decoder_init_norm=1.0)
    assert torch.allclose(seen["b_dec"], x.mean(0))
    assert len(seen["radial"]) == 8 and max(seen["radial"]) < 1e-6
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(32), atol=1e-6)
    assert not torch.allclose(sae.b_dec, x.mean(0))  # and it trained
