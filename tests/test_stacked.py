"""The stacked trainer against training each model alone, and its own bookkeeping (resume, divergence)."""

from __future__ import annotations

import functools

import pytest
import torch

from sae_mnist.params import ConvParams, LinearParams, ModelParams
from sae_mnist.params import RECIPE_PARTS, RecipeParams, StackTraining
from sae_mnist.penalties import KLPenalty, L1Penalty, NoPenalty, TopKPenalty
from sae_mnist.stacked import STACKS, _conv_weight_from_order, _conv_weight_order
from sae_mnist.checkpoint import Checkpoint
from sae_mnist.training import TrainingDiverged, initial_model, train_model, train_stack

CPU = torch.device("cpu")
# Every penalty, and two settings of each other than none, as a frontier stack holds them.
PENALTIES = [NoPenalty(), L1Penalty(0.05), L1Penalty(0.4), KLPenalty(1.0, 0.05), KLPenalty(3.0, 0.1, scale=2.0),
             TopKPenalty(3), TopKPenalty(7)]
RECIPE = RecipeParams(center_input=True, encoder_from_decoder=True, project_decoder_grad=True, lr_warmup=0.2,
                      lr_decay="cosine", lr_final=0.1, lr_hold=0.25, penalty_warmup=0.3, grad_clip=0.1)
PLAIN = functools.reduce(RecipeParams.without, RECIPE_PARTS, RECIPE)  # every part off


def images(n=200, seed=0) -> torch.Tensor:
    """Digit-like inputs: random strokes on black, so ReLU units fire sparsely as on MNIST."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 28, 28)
    for i in range(n):
        r, c = torch.randint(4, 20, (2,), generator=g).tolist()
        x[i, r:r + 8, c:c + 3] = torch.rand(8, 3, generator=g)
    return (x * 255).round().to(torch.uint8)


MODEL_PARAMS = ModelParams(linear=LinearParams(hidden=24), conv=ConvParams(channels=5))


def single(arch: str, penalty, seed: int = 0, recipe: RecipeParams = RECIPE):
    mean_image = images().float().div(255).mean(0, keepdim=True)
    return initial_model(arch, MODEL_PARAMS, penalty, recipe, seed, mean_image)


def stack_of(arch: str, penalties, seed: int = 0, recipe: RecipeParams = RECIPE):
    return STACKS[arch].from_models([single(arch, p, seed, recipe) for p in penalties])


def single_model_gradients(arch: str, model, penalty, x: torch.Tensor, penalty_factor: float) -> list[torch.Tensor]:
    """Autograd's gradients of one model's objective, in the stack's parameter layout."""
    from sae_mnist.stacked import _blocks_from_image

    x_hat, z = model(x)
    loss = (x - x_hat).pow(2).flatten(1).sum(1).mean()
    loss = loss + penalty_factor * sum(v[0] for v in penalty(model.code_entries(z), len(x)).values())
    loss.backward()
    g = {name: p.grad for name, p in model.named_parameters()}
    if arch == "linear":
        return [g["encoder.weight"].T, g["encoder.bias"][None], g["decoder.weight"].T, g["decoder_bias"].reshape(1, 784)]
    return [_conv_weight_order(g["encoder.weight"]).T, g["encoder.bias"][None], _conv_weight_order(g["decoder.weight"]),
            _blocks_from_image(g["decoder_bias"][0])]


@pytest.mark.parametrize("recipe", [RECIPE, PLAIN], ids=["recipe", "plain"])
@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_one_stacked_step_has_each_models_own_gradients(arch, recipe):
    """The hand-written gradients of a stack step are autograd's for every model: every penalty, TopK included,
    centred or not, the penalty weighed by its warm-up factor."""
    from sae_mnist.training import _penalty_groups, stacked_step

    torch.set_num_threads(1)
    data = images(64)
    stack = stack_of(arch, PENALTIES, recipe=recipe)
    frozen = torch.optim.SGD(stack.views(0, stack.n_models), lr=0.0)
    factors = torch.linspace(0.2, 1.0, len(PENALTIES))
    clip = torch.full((len(PENALTIES),), recipe.grad_clip or torch.inf)
    stacked_step(stack, _penalty_groups(PENALTIES), frozen, stack.batch(stack.prepare(data), torch.arange(64)), 64,
                 factors, grad_clip=clip)
    x = data.unsqueeze(1).float() / 255
    for k, penalty in enumerate(PENALTIES):
        expected = single_model_gradients(arch, single(arch, penalty, recipe=recipe), penalty, x, factors[k].item())
        if recipe.grad_clip is not None:  # the whole gradient scaled to norm grad_clip, as clip_grad_norm_ does
            norm = torch.cat([g.flatten() for g in expected]).norm()
            expected = [g * min(1.0, recipe.grad_clip / (norm.item() + 1e-6)) for g in expected]
        for name, got, want in zip(("We", "be", "Wd", "bd"), (g[k] for g in stack.grads), expected):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-6 * want.abs().max()), (type(penalty).__name__, name)


# TopK's selection is discontinuous: a rounding-level difference between the stack's batched matmuls and the
# single model's can swap which entry is k-th, so over many steps TopK models drift apart by more than rounding.
# Their gradients are checked step by step above; over N steps, the continuous penalties.
CONTINUOUS = [p for p in PENALTIES if not isinstance(p, TopKPenalty)]


MIXED = [RECIPE if k % 3 else PLAIN for k in range(len(PENALTIES))]  # recipes differing within one stack
# Each penalty at its own base rate (lr_select), as a frontier stack trains them: runs of equal rates, and one alone.
OWN_LRS = [3e-3, 1e-3, 1e-3, 9e-3, 9e-3, 2.7e-2, 2.7e-2]


@pytest.mark.parametrize("recipes, lrs", [([RECIPE] * len(PENALTIES), None), ([PLAIN] * len(PENALTIES), None),
                                          (MIXED, None), ([RECIPE] * len(PENALTIES), OWN_LRS), (MIXED, OWN_LRS)],
                         ids=["recipe", "plain", "mixed", "own-lr", "mixed-own-lr"])
@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_each_stacked_model_trains_as_it_would_alone(arch, recipes, lrs):
    """N steps of the stack give every model the weights and losses that train_model gives it alone, with the
    training recipe (centring, encoder from decoder, lr and penalty warm-up, cosine decay), without, with
    different recipes (so learning-rate schedules) for different models of one stack, and with each model at its
    own base learning rate."""
    torch.set_num_threads(1)
    params = StackTraining(epochs=3, batch_size=64, lr=3e-3, threads=1)  # 4 batches per epoch, the last one short
    data = images()
    stack = STACKS[arch].from_models([single(arch, p, recipe=r) for p, r in zip(PENALTIES, recipes)])
    result = train_stack(stack, PENALTIES, [f"m{k}" for k in range(len(PENALTIES))], data, params, 0, CPU,
                         recipes=recipes, lrs=lrs)
    assert result.histories[0][-1]["step"] == 12
    for k, (penalty, recipe) in enumerate(zip(PENALTIES, recipes)):
        if penalty not in CONTINUOUS:
            continue
        model = single(arch, penalty, recipe=recipe)
        initial = {name: value.clone() for name, value in model.state_dict().items()}
        own = params.model_copy(update={"lr": lrs[k]}) if lrs else params
        alone = train_model(model, penalty, data, own, 0, CPU, recipe=recipe)
        for name, expected in model.state_dict().items():
            got = stack.export(k)[name]
            assert got.shape == expected.shape, name
            # Rounding differences grow over the steps (most in conv KL at 9e-3: 6e-5 of a 0.054 move with
            # clipping, 9e-6 without; a 1e-7 relative nudge of its initial weights alone gives 1.6e-5), so the bound
            # is 0.5% of how far training moved the weights. Training without the clipping moves them 10-40% apart.
            moved = (expected - initial[name]).abs().max().item()
            assert (got - expected).abs().max().item() <= 5e-3 * moved + 1e-6, (
                type(penalty).__name__, name, (got - expected).abs().max().item(), moved)
        for row, ref in zip(result.histories[k], alone.history):
            assert row.keys() - {"seconds"} == ref.keys() - {"seconds"}
            for key in ref.keys() - {"epoch", "step", "seconds"}:
                assert row[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), (type(penalty).__name__, key)


def test_the_recipe_clips_gradients_of_these_models():
    """RECIPE's grad_clip acts in the tests above: every model's gradient norm on their data is well above it."""
    from sae_mnist.training import _penalty_groups, stacked_step

    for arch in ("linear", "conv"):
        stack = stack_of(arch, PENALTIES)
        frozen = torch.optim.SGD(stack.views(0, stack.n_models), lr=0.0)
        stacked_step(stack, _penalty_groups(PENALTIES), frozen, stack.batch(stack.prepare(images(64)),
                     torch.arange(64)), 64, torch.ones(len(PENALTIES)))
        norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in stack.grads]).sum(0).sqrt()
        assert (norms > 3 * RECIPE.grad_clip).all(), (arch, norms)


def test_clip_grad_norm_by_hand():
    """Model 0's gradient (3, 4 | 0 | 0 | 0), norm 5, is scaled to norm 1: (0.6, 0.8); model 1's, norm 0.5, stays;
    model 2 (inf: no clipping) keeps its norm 50."""
    stack = stack_of("linear", [NoPenalty()] * 3)
    for g in stack.grads:
        g.zero_()
    stack.grads[0][0, 0, :2] = torch.tensor([3.0, 4.0])
    stack.grads[3][1, 0, 0] = 0.5
    stack.grads[2][2, 0, 0] = 50.0
    stack.clip_grad_norm(torch.tensor([1.0, 1.0, float("inf")]))
    assert stack.grads[0][0, 0, :2].tolist() == pytest.approx([0.6, 0.8], rel=1e-5)
    assert stack.grads[3][1, 0, 0].item() == pytest.approx(0.5, rel=1e-5)
    assert stack.grads[2][2, 0, 0].item() == 50.0
    assert sum(g.abs().sum() for g in stack.grads).item() == pytest.approx(0.6 + 0.8 + 0.5 + 50.0, rel=1e-5)


@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_a_stack_computes_what_its_single_models_compute(arch):
    torch.set_num_threads(1)
    models = [single(arch, p, seed=k, recipe=RECIPE if k % 2 else PLAIN) for k, p in enumerate(PENALTIES)]
    for m in models:  # different weights per model, centred or not
        with torch.no_grad():
            m.decoder_bias.uniform_(-0.2, 0.2)
    stack = STACKS[arch].from_models(models)
    data = images(6)
    batch = stack.batch(stack.prepare(data), torch.arange(6))
    u = stack.encode(batch)
    z = torch.cat([p.activate(u[k:k + 1], 6) for k, p in enumerate(PENALTIES)])
    recon, _ = stack.decode(z, batch)
    x = data.unsqueeze(1).float() / 255
    for k, model in enumerate(models):
        x_hat, code = model(x)
        assert torch.allclose(z[k], model.code_entries(code)[0], atol=1e-5)
        expected = (x - x_hat).pow(2).flatten(1).sum(1).mean()
        assert recon[k].item() == pytest.approx(expected.item(), rel=1e-5)
        for name, value in model.state_dict().items():
            assert torch.equal(stack.export(k)[name], value), name


def test_conv_weight_order_round_trips_and_matches_the_patches():
    w = torch.randn(3, 1, 8, 8)
    assert torch.equal(_conv_weight_from_order(_conv_weight_order(w)), w)
    image = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    patches = STACKS["conv"].prepare(image)["patches"][0].float()  # (49, 64) in the stack's order
    unfolded = torch.nn.functional.unfold(image.float().unsqueeze(0), 8, padding=2, stride=4)[0].T  # (49, 64), (ky, kx)
    assert torch.allclose(patches @ _conv_weight_order(w).T, unfolded @ w.flatten(1).T, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_stacked_training_is_bitwise_deterministic(arch):
    torch.set_num_threads(1)
    params = StackTraining(epochs=2, batch_size=64, lr=3e-3, threads=1)
    runs = []
    for _ in range(2):
        stack = stack_of(arch, PENALTIES)
        train_stack(stack, PENALTIES, list("abcdefg"), images(), params, 0, CPU, recipes=[RECIPE] * len(PENALTIES))
        runs.append(stack)
    for a, b in zip(runs[0].params, runs[1].params):
        assert torch.equal(a, b)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_resume_from_checkpoint_gives_the_same_weights(tmp_path, arch):
    torch.set_num_threads(1)
    params = StackTraining(epochs=3, batch_size=64, lr=3e-3, threads=1)
    names = [f"m{k}" for k in range(len(PENALTIES))]
    straight = stack_of(arch, PENALTIES)
    expected = train_stack(straight, PENALTIES, names, images(), params, 0, CPU)

    checkpoint = Checkpoint(tmp_path / "stack.pt", key="config-a")

    def crash_after_epoch_2(rows):
        if rows[0]["epoch"] == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_stack(stack_of(arch, PENALTIES), PENALTIES, names, images(), params, 0, CPU,
                    on_epoch=crash_after_epoch_2, checkpoint=checkpoint)
    assert checkpoint.load()["step"] == 2 * 4

    resumed = stack_of(arch, PENALTIES, seed=123)  # a fresh process would initialise differently: the checkpoint wins
    replayed = []
    result = train_stack(resumed, PENALTIES, names, images(), params, 0, CPU, on_epoch=replayed.append,
                         checkpoint=checkpoint)
    for a, b in zip(straight.params, resumed.params):
        assert torch.equal(a, b)
    assert [[r["loss"] for r in h] for h in result.histories] == [[r["loss"] for r in h] for h in expected.histories]
    assert [rows[0]["epoch"] for rows in replayed] == [1, 2, 3]

    assert Checkpoint(tmp_path / "stack.pt", key="config-b").load() is None  # another configuration
    (tmp_path / "stack.pt").write_bytes(b"cut short")
    assert checkpoint.load() is None


def test_divergence_names_each_diverged_model_and_its_first_bad_step():
    penalties = [L1Penalty(0.1), L1Penalty(float("inf")), NoPenalty()]
    params = StackTraining(epochs=2, batch_size=64, lr=3e-3, threads=1)
    with pytest.raises(TrainingDiverged) as caught:
        train_stack(stack_of("linear", penalties), penalties, ["ok", "bad", "fine"], images(), params, 0, CPU)
    message = str(caught.value)
    assert message.startswith("bad: loss became NaN or infinite at epoch 1, step 1; no weights were written.")
    assert "ok:" not in message and "fine:" not in message
