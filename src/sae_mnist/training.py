"""The training loops, top to bottom: one model (`train_model`) and a stack of models (`train_stack`).

Data stay in memory as one tensor on the training device; each epoch slices batches from a
permutation drawn from a generator seeded by the run's seed, so a run on CPU is bitwise
reproducible for a fixed seed and thread count. `train_model` is the plain reference: one
model, autograd, torch's Adam. The pipeline trains with `train_stack`: every model of one
architecture and seed at once (stacked.py), which gives each model what `train_model` would,
up to float rounding (a test checks this for every architecture and penalty).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .checkpoint import Checkpoint
from .errors import BenchmarkError
from .models import SparseAutoencoder, build_model
from .params import RecipeParams, StackTraining
from .penalties import stack_penalties
from .stacked import StackedSAE


class TrainingDiverged(BenchmarkError):
    """The loss became NaN or infinite; no weights are written."""


@dataclass
class TrainResult:
    history: list[dict]  # one row per epoch
    wall_time_s: float
    samples_per_s: float


def select_device(choice: str) -> torch.device:
    """The training device; on a GPU, with deterministic algorithms where CUDA has them.

    On the CPU the ops used here are deterministic for a fixed thread count (tests check bitwise reruns)
    without the flag, whose call imports torch._inductor: 2.7 s in every training process.
    """
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice)
    if device.type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)


def to_float_images(images_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(n, 28, 28) uint8 -> (n, 1, 28, 28) float32 in [0, 1] on `device`."""
    return images_uint8.to(device).unsqueeze(1).float().div_(255.0)


def initial_model(arch: str, model_params, penalty, recipe: RecipeParams, seed: int,
                  mean_image: torch.Tensor) -> SparseAutoencoder:
    """A model as training starts it: the seed's weights, then the recipe's and the penalty's initialisation.

    Every model of one architecture and seed starts from the same weights (the seed's), so that
    variants differ only in what their penalty and recipe change: the encoder as the decoder's
    transpose (recipe), the code biases (penalty), the decoder bias at the training mean (recipe).
    """
    seed_everything(seed)
    model = build_model(arch, model_params, penalty.activate, recipe.center_input)
    if recipe.encoder_from_decoder:
        model.init_encoder_from_decoder()
    model.init_code_bias(penalty.code_bias_init)
    if recipe.center_input:
        model.init_decoder_bias(mean_image)
    return model


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the summed squared error per image (same scale as the L1 term)."""
    return (x - x_hat).pow(2).flatten(1).sum(1).mean()


def train_step(model: SparseAutoencoder, penalty, optimizer, x: torch.Tensor, penalty_factor: float = 1.0,
               project_decoder_grad: bool = False, grad_clip: float | None = None):
    """One optimiser step on batch x; returns the objective and its named terms (not detached).

    The terms are as the penalty defines them; the objective weighs them by `penalty_factor` (the warm-up).
    `project_decoder_grad`, `grad_clip`: the recipe's parts of those names (RecipeParams).
    """
    x_hat, z = model(x)
    terms = {"recon": reconstruction_loss(x, x_hat)}
    terms |= {name: value[0] for name, value in penalty(model.code_entries(z), len(x)).items()}
    loss = terms["recon"] + penalty_factor * sum(v for k, v in terms.items() if k != "recon")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if project_decoder_grad:
        model.project_decoder_grad()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    model.normalize_decoder()
    return loss, terms


def total_steps(n: int, params: StackTraining) -> int:
    return params.epochs * -(-n // params.batch_size)


def lr_factor(recipe: RecipeParams, step: int, total: int) -> float:
    """Multiplier of train.lr for optimiser step `step` (0-based) of `total`: a linear warm-up over the first
    `lr_warmup` of steps, then constant or a cosine decay to `lr_final`, held there for the last `lr_hold`."""
    warmup, decay_end = round(recipe.lr_warmup * total), round((1 - recipe.lr_hold) * total)
    if step < warmup:
        return (step + 1) / warmup
    if recipe.lr_decay == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, decay_end - warmup))
    return recipe.lr_final + (1 - recipe.lr_final) * 0.5 * (1 + math.cos(math.pi * progress))


def penalty_factor(recipe: RecipeParams, step: int, total: int) -> float:
    """Multiplier of the penalty terms at optimiser step `step` (0-based) of `total`: a linear warm-up over the
    first `penalty_warmup` of steps."""
    warmup = round(recipe.penalty_warmup * total)
    return min(1.0, (step + 1) / warmup) if warmup else 1.0


def train_model(
    model: SparseAutoencoder,
    penalty,
    images: torch.Tensor,
    params: StackTraining,
    seed: int,
    device: torch.device,
    recipe: RecipeParams | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train one model, the plain way: the reference that `train_stack` must agree with, and the benchmarks' baseline.

    `recipe` sets the learning-rate and penalty schedules (None: constant lr, full penalty from the start);
    the model's own initialisation and centring are the caller's (see members.initial_stack).
    """
    x_all = to_float_images(images, device)
    n, steps = len(x_all), total_steps(len(x_all), params)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    order = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    step = 0
    started = time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        permutation = torch.randperm(n, generator=order).to(device)
        totals: dict[str, torch.Tensor] = {}
        first_bad_step = torch.tensor(-1, device=device)
        batches = range(0, n, params.batch_size)
        for start in tqdm(batches, desc=f"{desc} epoch {epoch}/{params.epochs}", unit="batch", mininterval=2, leave=False):
            x = x_all[permutation[start : start + params.batch_size]]
            if recipe is not None:
                optimizer.param_groups[0]["lr"] = params.lr * lr_factor(recipe, step, steps)
            factor = penalty_factor(recipe, step, steps) if recipe is not None else 1.0
            loss, terms = train_step(model, penalty, optimizer, x, factor, recipe is not None and recipe.project_decoder_grad,
                                     recipe.grad_clip if recipe is not None else None)
            step += 1
            # Sums and the divergence check stay on the device: no host sync per step.
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss.detach()), step, first_bad_step)
            for name, value in {"loss": loss, **terms}.items():
                totals[name] = totals.get(name, 0.0) + value.detach() * len(x)
        if (bad := int(first_bad_step)) >= 0:
            raise TrainingDiverged(
                f"{desc}: loss became NaN or infinite at epoch {epoch}, step {bad}; no weights were written. "
                "Lower train.lr or the penalty strength."
            )
        row = {"epoch": epoch, "step": step}
        row.update({name: total.item() / n for name, total in totals.items()})
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    wall = time.perf_counter() - started
    return TrainResult(history=history, wall_time_s=wall, samples_per_s=n * params.epochs / wall)


@dataclass(frozen=True)
class _PenaltyGroup:
    """Models models[start:stop] of a stack, which share a penalty class (so an activation): evaluated in one call."""

    start: int
    stop: int
    penalty: object  # the group's penalty, its fields holding one value per model (penalties.stack_penalties)


def _penalty_groups(penalties: list) -> list[_PenaltyGroup]:
    return [_PenaltyGroup(a, b, stack_penalties(penalties[a:b])) for a, b in _runs([type(p) for p in penalties])]


def stacked_step(stack: StackedSAE, groups: list[_PenaltyGroup], optimizer, batch: dict, n_images: int,
                 penalty_factors: torch.Tensor, project_decoder_grad: torch.Tensor | None = None,
                 grad_clip: torch.Tensor | None = None):
    """One optimiser step of every model in the stack; returns (recon (K,), {term: (K,)}), detached.

    The stack does the matmuls and their gradients; autograd only the activation and penalty of each
    group. Model k's objective is recon + penalty_factors[k] * its penalty terms. `project_decoder_grad`
    (K, 1, 1): 1 for the models whose recipe projects the decoder gradient (RecipeParams), None for none.
    `grad_clip` (K,): each model's recipe.grad_clip (inf where it has none), None where no model clips.
    """
    u = stack.encode(batch)
    parts = [u[g.start:g.stop].detach().requires_grad_() for g in groups]  # fresh leaves: u is a reused buffer
    with torch.enable_grad():
        codes = [g.penalty.activate(part, n_images) for g, part in zip(groups, parts)]
        group_terms = [g.penalty(code, n_images) for g, code in zip(groups, codes)]
    z = codes[0].detach() if len(codes) == 1 else torch.cat([c.detach() for c in codes], out=stack.buffer("z", *u.shape))
    recon, grad_z = stack.decode(z, batch)
    outputs, output_grads = codes, list(grad_z.split([g.stop - g.start for g in groups]))
    penalty_values = [(value * penalty_factors[g.start:g.stop]).sum()
                      for g, terms in zip(groups, group_terms) for value in terms.values()]
    if penalty_values:
        outputs, output_grads = [*outputs, sum(penalty_values)], [*output_grads, None]
    torch.autograd.backward(outputs, output_grads)
    grad_u = parts[0].grad if len(parts) == 1 else torch.cat([p.grad for p in parts], out=stack.buffer("grad_u", *u.shape))
    stack.encode_backward(grad_u, batch)
    if project_decoder_grad is not None:
        stack.project_decoder_grad(project_decoder_grad)
    if grad_clip is not None:
        stack.clip_grad_norm(grad_clip)
    optimizer.step()
    stack.normalize_decoder()
    terms: dict[str, torch.Tensor] = {}
    for g, values in zip(groups, group_terms):
        for name, value in values.items():
            terms.setdefault(name, recon.new_zeros(stack.n_models))[g.start:g.stop] = value.detach()
    return recon, terms


def _runs(items: list) -> list[tuple[int, int]]:
    """(start, stop) of each maximal run of equal consecutive items."""
    runs, start = [], 0
    for stop in range(1, len(items) + 1):
        if stop == len(items) or items[stop] != items[start]:
            runs.append((start, stop))
            start = stop
    return runs


@dataclass
class StackResult:
    histories: list[list[dict]]  # per model, one row per epoch
    convergence: list[dict]  # per model, see `convergence`
    wall_time_s: float
    samples_per_s: float  # training images per second, per model (each model sees every image)


WINDOWS = 10  # training is cut into this many windows of equal steps to judge convergence
# Converged: over the last tenth of its steps the objective moved by less than 1% of itself, or by less than
# 1e-4 in FVU units. The floor is for nearly lossless models (FVU ~0.001-0.01), whose objective heads to 0:
# there 1% is a few 1e-5 of FVU, far below any difference the report compares, and no budget reaches it
# (benchmarks/convergence_budget.json: such runs still fall 6-12% per tenth after 80 epochs).
RELATIVE_TOLERANCE = 0.01
FVU_TOLERANCE = 1e-4


def convergence(window_sums: list[float], window_steps: list[int], data_variance: float) -> dict:
    """The mean training objective over each tenth of the steps, and its change over the last tenth.

    relative_change = (mean over steps 80-90% - mean over 90-100%) / mean over 90-100%: how much the
    objective still fell in the last 10% of training. The same drop divided by the data's variance
    (summed over pixels, as the reconstruction error is) puts it in FVU units. Converged: either is
    below its tolerance (RELATIVE_TOLERANCE, FVU_TOLERANCE). (A run of fewer than 10 steps has one
    window per step.)
    """
    means = [total / count for total, count in zip(window_sums, window_steps)]
    change = (means[-2] - means[-1]) / abs(means[-1])
    fvu_change = (means[-2] - means[-1]) / data_variance
    return {"objective_by_tenth": means, "relative_change_last_tenth": change, "fvu_change_last_tenth": fvu_change,
            "converged": abs(change) < RELATIVE_TOLERANCE or abs(fvu_change) < FVU_TOLERANCE,
            "tolerance": {"relative": RELATIVE_TOLERANCE, "fvu": FVU_TOLERANCE}}


def _stack_optimizer(stack: StackedSAE, recipes: list[RecipeParams | None], lrs: list[float], device: torch.device):
    """(runs, Adam, the decoder-gradient projection mask or None, the gradient clipping norms or None) for a stack
    whose model k trains on recipes[k] at base learning rate lrs[k].

    Adam is elementwise, so its state is per model whatever the grouping. A parameter group per run of models
    with the same recipe and rate gives each its own learning-rate schedule: one group per penalty for a frontier
    stack whose penalties have their own rates. (A group per model would be thousands of tiny tensors: slow, and
    pathological when other processes share the CPUs.)
    """
    runs = _runs(list(zip(recipes, lrs)))
    projected = [r is not None and r.project_decoder_grad for r in recipes]
    project = torch.tensor(projected, dtype=torch.float32, device=device).view(-1, 1, 1) if any(projected) else None
    clips = [r.grad_clip if r is not None and r.grad_clip is not None else math.inf for r in recipes]
    clip = torch.tensor(clips, dtype=torch.float32, device=device) if any(math.isfinite(c) for c in clips) else None
    optimizer = torch.optim.Adam([{"params": stack.views(a, b), "lr": lrs[a]} for a, b in runs],
                                 fused=device.type in ("cpu", "cuda"))
    return runs, optimizer, project, clip


def _resume(state: dict, stack: StackedSAE, optimizer, order: torch.Generator, device: torch.device):
    """Restore a checkpoint's stack, optimiser and batch order; (window sums, histories, step, seconds) so far."""
    stack.load_state(state["stack"])
    optimizer.load_state_dict(state["optimizer"])
    order.set_state(state["order"])
    return state["window_sums"].to(device), state["histories"], state["step"], state["seconds"]


def train_stack(
    stack: StackedSAE,
    penalties: list,
    names: list[str],
    images: torch.Tensor,
    params: StackTraining,
    seed: int,
    device: torch.device,
    recipes: list[RecipeParams | None] | None = None,
    on_epoch: Callable[[list[dict]], None] | None = None,
    desc: str = "stack",
    checkpoint: Checkpoint | None = None,
    lrs: list[float] | None = None,
) -> StackResult:
    """Train the K models of `stack` together, model k with penalties[k] and recipes[k] (schedules), named names[k],
    at base learning rate lrs[k] (default: params.lr for every model).

    Each model's weights follow what `train_model` gives it alone, up to float rounding: the same
    initial weights (the stack is built from single models), batches in the same order (the same
    seeded permutation), its own loss, learning rate and Adam state, and Adam's update is elementwise.
    """
    data = {k: v.to(device) for k, v in stack.prepare(images).items()}
    n, steps = len(images), total_steps(len(images), params)
    windows = min(WINDOWS, steps)  # a smoke run may have fewer steps than windows
    stack.to(device)
    groups = _penalty_groups(penalties)
    recipes = recipes or [None] * len(penalties)
    lrs = lrs or [params.lr] * len(penalties)
    runs, optimizer, project, clip = _stack_optimizer(stack, recipes, lrs, device)
    order = torch.Generator().manual_seed(seed)
    histories: list[list[dict]] = [[] for _ in names]
    window_sums = torch.zeros(stack.n_models, windows, dtype=torch.float64, device=device)
    step, done_seconds = 0, 0.0
    if checkpoint is not None and (state := checkpoint.load()) is not None:
        window_sums, histories, step, done_seconds = _resume(state, stack, optimizer, order, device)
        print(f"{desc}: resuming from the checkpoint after epoch {len(histories[0])}", flush=True)
        for epoch_rows in zip(*histories):
            if on_epoch is not None:
                on_epoch(list(epoch_rows))
    progress = tqdm(total=steps, initial=step, desc=desc, unit="step", mininterval=2, leave=False)
    started = time.perf_counter() - done_seconds
    for epoch in range(len(histories[0]) + 1, params.epochs + 1):
        permutation = torch.randperm(n, generator=order).to(device)
        totals: dict[str, torch.Tensor] = {}
        first_bad_step = torch.full((stack.n_models,), -1, device=device)
        for start in range(0, n, params.batch_size):
            index = permutation[start : start + params.batch_size]
            for group, (a, _) in zip(optimizer.param_groups, runs):
                group["lr"] = lrs[a] * (lr_factor(recipes[a], step, steps) if recipes[a] else 1.0)
            factors = torch.tensor([penalty_factor(r, step, steps) if r else 1.0 for r in recipes], device=device)
            recon, terms = stacked_step(stack, groups, optimizer, stack.batch(data, index), len(index), factors, project,
                                        clip)
            loss = recon + factors * sum(terms.values()) if terms else recon
            window_sums[:, step * windows // steps] += loss
            step += 1
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss), step, first_bad_step)
            for name, value in {"loss": loss, "recon": recon, **terms}.items():
                totals[name] = totals.get(name, 0.0) + value * len(index)
            progress.update()
        if bad := [(names[k], s) for k, s in enumerate(first_bad_step.tolist()) if s >= 0]:
            progress.close()
            raise TrainingDiverged(
                "; ".join(f"{name}: loss became NaN or infinite at epoch {epoch}, step {s}" for name, s in bad)
                + "; no weights were written. Lower train.lr or the penalty strength."
            )
        seconds = time.perf_counter() - started
        means = {name: (total / n).tolist() for name, total in totals.items()}
        for k, penalty in enumerate(penalties):
            own = ("loss", "recon", *penalty.terms)
            histories[k].append({"epoch": epoch, "step": step, **{name: means[name][k] for name in own},
                                 "seconds": seconds})
        if checkpoint is not None:
            checkpoint.save({"stack": stack.state(), "optimizer": optimizer.state_dict(), "order": order.get_state(),
                             "window_sums": window_sums, "histories": histories, "step": step, "seconds": seconds})
        if on_epoch is not None:
            on_epoch([h[-1] for h in histories])
    progress.close()
    wall = time.perf_counter() - started
    window_steps = [sum(1 for s in range(steps) if s * windows // steps == w) for w in range(windows)]
    variance = to_float_images(images, torch.device("cpu")).flatten(1).double().var(0).sum().item()
    return StackResult(histories=histories,
                       convergence=[convergence(row, window_steps, variance) for row in window_sums.tolist()],
                       wall_time_s=wall, samples_per_s=n * params.epochs / wall)
