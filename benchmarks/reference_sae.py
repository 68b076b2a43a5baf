"""Our linear L1 SAE beside the field's reference implementation (SAELens), same data, seed and metric.

    pip install -e '.[reference]'     # sae-lens, an optional dependency
    python benchmarks/reference_sae.py [--seed 0] [--lams 0.05 0.1 0.2 0.4 0.8]
        [--params params.yaml] [--data data/mnist] [--out benchmarks/reference_sae.json]
        [--lr-select lr_select/linear.json] [--train-split fit] [--epochs N]

What it measures. At each lambda of the linear L1 frontier (params.yaml: penalty.l1.linear and sweep.l1.linear), on
the seed given, two SAEs of the same width (model.linear.hidden) are trained on the fit split (the 50,000 MNIST
training images the stages train on; --train-split train: all 60,000), flattened, floats in [0, 1], at the learning
rate the lr_select stage chose for linear L1 (train.lr where its file is absent), and evaluated on the 10,000 test
images by the same code, the evaluate stage's `held_out_metrics`: FVU and L0 of the truncated code at
evaluate.active_threshold (entries at or below it zeroed before decoding), and FVU of the untruncated code. Also
each model's final training objective, reconstruction + lambda * L1, on the training images with the final weights
(one function for both; for SAELens it equals its own loss, which is recorded beside it as a check). Then the
frontiers are compared at matched L0: SAELens's FVU is interpolated (log FVU linear in log L0 between neighbouring
lambdas) at the L0 of each of our points inside its L0 range, and ours/theirs - 1 is reported per point; the
criterion is ours at most 2% above theirs at every matched point.

  ours     the train stage's own code, recipe and params: the L1 frontier points trained as one stack
           (sae_mnist.training.train_stack), train.epochs.linear epochs of train.batch_size, train.lr.
  SAELens  its standard ReLU + L1 SAE (StandardTrainingSAE) trained by its own trainer (SAETrainer), which
           takes any iterator of activation batches (a DataProvider, as SAELens's own synthetic-data runner
           uses it): no language model, no adapter. The same images in the same order (the permutations of
           the seed's generator, one per epoch, as train_stack draws them), cut into full batches of the same
           size, for the same number of steps as ours; the same lr, with linear warm-ups of the lr and the L1
           coefficient over the steps our recipe warms them up (recipe.lr_warmup, recipe.penalty_warmup),
           cosine decay to lr / 10 over the remaining steps (its "cosineannealing"; no final hold); its
           defaults otherwise (initialisation, b_dec at 0 subtracted from the input, Adam betas, gradient-norm
           clipping at 1, float32).

Decoder norms. Ours: every unit's decoder column is renormalised to unit L2 norm after each optimiser step, and
the decoder gradient's part along the column is removed before the step (recipe.project_decoder_grad); the L1
term is lambda * sum_j |z_j|. SAELens (6.x standard SAE): decoder norms are free; its L1 term is
lambda * sum_j z_j ||W_dec_j||, the same objective as ours up to a rescaling of each unit. Before evaluation its
norms are folded into the encoder with its own `fold_W_dec_norm` (unit-norm decoder rows, code z_j ||W_dec_j||),
so its code is on our scale and the 0.1 threshold means the same for both. The folded weights are then loaded
into our LinearSAE (checked to give SAELens's reconstructions), so the evaluation runs the same model code too.

With the sgemm rate before and after (training_speed.matmul_gflops), each side's wall time, the git commit, the
machine and the versions of torch and sae-lens. No MLflow, no DVC outputs: a check, not a pipeline result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TOLERANCE = 0.02  # done: ours at most 2% above SAELens's FVU at every matched L0


def matched_comparison(ours: list[tuple[float, float]], theirs: list[tuple[float, float]]) -> dict:
    """Each of our points against SAELens's frontier read at its L0: the report's own rule
    (report.sections.reference.reference_comparison, log FVU linear in log L0), the criterion TOLERANCE."""
    from sae_mnist.report.sections.reference import reference_comparison

    return reference_comparison(ours, theirs, TOLERANCE)


def full_batches(x, batch_size: int, seed: int):
    """Endless batches of `x` rows in train_stack's order (one seeded permutation per epoch), all of `batch_size`:
    a batch that would run past an epoch's end is filled from the next epoch's permutation."""
    import torch

    order = torch.Generator().manual_seed(seed)
    left = torch.empty(0, dtype=torch.long)
    while True:
        index = torch.cat([left, torch.randperm(len(x), generator=order)])
        full = len(index) // batch_size * batch_size
        for start in range(0, full, batch_size):
            yield x[index[start : start + batch_size]]
        left = index[full:]


def training_objective(model, lam: float, x, batch_size: int) -> float:
    """reconstruction + lam * L1 of `model` (a LinearSAE) on images `x`, as train_step defines them, over all of x."""
    import torch

    from sae_mnist.penalties import L1Penalty
    from sae_mnist.training import reconstruction_loss

    penalty, total = L1Penalty(lam), 0.0
    model.eval()
    with torch.no_grad():
        for batch in x.split(batch_size):
            x_hat, z = model(batch)
            loss = reconstruction_loss(batch, x_hat) + penalty(model.code_entries(z), len(batch))["l1"][0]
            total += loss.item() * len(batch)
    return total / len(x)


def saelens_own_objective(sae, lam: float, x_flat, batch_size: int) -> float:
    """SAELens's training loss (MSE summed over pixels + its weighted L1) at full lambda, over all of x_flat."""
    import torch
    from sae_lens.saes.sae import TrainStepInput

    total = 0.0
    sae.eval()
    with torch.no_grad():
        for batch in x_flat.split(batch_size):
            out = sae.training_forward_pass(TrainStepInput(sae_in=batch, coefficients={"l1": lam},
                                                           dead_neuron_mask=None, n_training_steps=0,
                                                           is_logging_step=False))
            total += out.loss.item() * len(batch)
    return total / len(x_flat)


def as_linear_sae(sae, hidden: int):
    """A folded SAELens standard SAE (unit-norm decoder rows) as our LinearSAE: the same function, our code."""
    import torch

    from sae_mnist.models import LinearSAE
    from sae_mnist.penalties import L1Penalty

    model = LinearSAE(hidden, L1Penalty(0.0).activate, center_input=True)  # SAELens subtracts b_dec too
    with torch.no_grad():
        model.encoder.weight.copy_(sae.W_enc.T)
        model.encoder.bias.copy_(sae.b_enc)
        model.decoder.weight.copy_(sae.W_dec.T)
        model.decoder_bias.copy_(sae.b_dec.view(1, 28, 28))
    return model


def train_saelens(lam: float, hidden: int, x_flat, steps: int, training, recipe, seed: int, configure=None,
                  **sae_options):
    """SAELens's standard L1 SAE trained by its own trainer on the rows of x_flat; returns (sae, wall seconds).
    `sae_options`: StandardTrainingSAEConfig fields other than its defaults (e.g. decoder_init_norm); `configure`:
    called with the trainer before it trains (a diagnosis's hooks on its optimiser, benchmarks/dense_end_gap.py)."""
    import torch
    from sae_lens import SAETrainer, StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    torch.manual_seed(seed)  # its initialisation draws from torch's global generator
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(
        d_in=x_flat.shape[1], d_sae=hidden, l1_coefficient=lam, l1_warm_up_steps=round(recipe.penalty_warmup * steps),
        **sae_options))
    config = SAETrainerConfig(
        total_training_samples=steps * training.batch_size, train_batch_size_samples=training.batch_size,
        lr=training.lr, lr_end=training.lr / 10, lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=round(recipe.lr_warmup * steps), device="cpu")
    trainer = SAETrainer(cfg=config, sae=sae, data_provider=full_batches(x_flat, training.batch_size, seed))
    if configure is not None:
        configure(trainer, x_flat)
    started = time.perf_counter()
    trainer.fit()
    return sae, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lams", type=float, nargs="+", default=None,
                        help="L1 strengths (default: the linear L1 frontier of --params)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/mnist"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/reference_sae.json"))
    parser.add_argument("--lr-select", type=Path, default=Path("lr_select/linear.json"),
                        help="the lr_select stage's file: both train at the rate it chose for L1 (absent: train.lr)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="both train this many epochs (default: train.epochs.linear of --params)")
    parser.add_argument("--train-split", choices=["fit", "train"], default="fit",
                        help="the images both train on: fit (the validation split held out, as the stages train) "
                             "or all 60,000 training images (the protocol before issue 33)")
    args = parser.parse_args()

    import torch

    try:
        import sae_lens
    except ImportError:
        sys.exit("sae-lens is not installed: pip install -e '.[reference]'")

    from sae_mnist.data import load_split, read_manifest
    from sae_mnist.params import load_params
    from sae_mnist.provenance import cpu_name, git_commit
    from sae_mnist.heldout import held_out_metrics
    from sae_mnist.members import frontier_members, initial_stack
    from sae_mnist.training import to_float_images, total_steps, train_stack
    from training_speed import matmul_gflops  # this directory's, as flop_bound.py does

    params = load_params(args.params)
    arch, hidden = "linear", params.model.linear.hidden
    members = [m for m in frontier_members(params, arch) if m.penalty == "l1"]
    if args.lams is not None:
        members = [m for m in members if m.settings.lam in args.lams]
        if missing := sorted(set(args.lams) - {m.settings.lam for m in members}):
            sys.exit(f"not linear L1 frontier points in {args.params}: lam {missing}")
    lams = [m.settings.lam for m in members]
    training, recipe = params.train.of(arch), params.recipe
    if args.epochs is not None:  # e.g. the budget the budget rule picks, to compare both at it
        training = training.model_copy(update={"epochs": args.epochs})
    if args.lr_select.is_file():  # the rate chosen for L1 on the validation split (docs/design/verdict-protocol.md)
        training = training.model_copy(update={"lr": json.loads(args.lr_select.read_text())["chosen"]["l1"]["lr"]})
    else:
        print(f"{args.lr_select} not found: both train at train.lr {training.lr:g}", flush=True)

    torch.set_num_threads(training.threads)
    device = torch.device("cpu")
    train = load_split(args.data, args.train_split, params.split.validation)
    images = torch.from_numpy(train.images[: training.max_samples].copy())
    x_train = to_float_images(images, device)
    x_test = to_float_images(torch.from_numpy(load_split(args.data, "test").images.copy()), device)
    steps = total_steps(len(images), training)
    eval_batch = params.evaluate.batch_size

    _, rate_before = matmul_gflops(device)

    # Ours: the L1 frontier as one stack, as the train stage trains it.
    penalties, models, stack = initial_stack(arch, params.model, members, args.seed, images)
    result = train_stack(stack, penalties, [m.name for m in members], images, training, args.seed, device,
                         recipes=[m.recipe for m in members], desc=f"ours {arch}-l1")
    ours = []
    for k, (lam, model, penalty) in enumerate(zip(lams, models, penalties)):
        model.load_state_dict(stack.export(k))
        metrics, _, _ = held_out_metrics(model, penalty, x_test, params)
        ours.append({"lam": lam, "l0": metrics["l0"], "fvu": metrics["fvu"],
                     "fvu_untruncated": metrics["fvu_untruncated"], "dead_fraction": metrics["dead_fraction"],
                     "objective": training_objective(model, lam, x_train, eval_batch),
                     "objective_last_epoch_mean": result.histories[k][-1]["loss"],
                     "converged": result.convergence[k]["converged"]})
    print(f"ours: {len(members)} models in one stack, {result.wall_time_s:.0f} s", flush=True)

    # SAELens: one model per lambda, each by its own trainer.
    theirs = []
    x_flat = x_train.flatten(1)
    for lam, penalty in zip(lams, penalties):
        sae, wall = train_saelens(lam, hidden, x_flat, steps, training, recipe, args.seed)
        own_objective = saelens_own_objective(sae, lam, x_flat, eval_batch)
        norms = sae.W_dec.detach().norm(dim=1)
        sae.fold_W_dec_norm()
        model = as_linear_sae(sae, hidden)
        with torch.no_grad():  # the adapter must compute what SAELens computes
            reference = sae(x_test[:eval_batch].flatten(1))
            mismatch = (model(x_test[:eval_batch])[0].flatten(1) - reference).abs().max().item()
        if mismatch > 1e-4:
            sys.exit(f"lam {lam}: our LinearSAE with SAELens's folded weights differs from SAELens by {mismatch:g}")
        metrics, _, _ = held_out_metrics(model, penalty, x_test, params)
        theirs.append({"lam": lam, "l0": metrics["l0"], "fvu": metrics["fvu"],
                       "fvu_untruncated": metrics["fvu_untruncated"], "dead_fraction": metrics["dead_fraction"],
                       "objective": training_objective(model, lam, x_train, eval_batch),
                       "objective_saelens_loss": own_objective, "wall_time_s": round(wall, 1),
                       "decoder_norms_before_folding": {"min": norms.min().item(), "median": norms.median().item(),
                                                        "max": norms.max().item()}})
        print(f"SAELens lam {lam:g}: {wall:.0f} s, L0 {metrics['l0']:.1f}, FVU {metrics['fvu']:.4f}", flush=True)

    _, rate_after = matmul_gflops(device)

    comparison = matched_comparison([(p["l0"], p["fvu"]) for p in ours], [(p["l0"], p["fvu"]) for p in theirs])
    manifest = read_manifest(args.data)
    out = {
        "command": " ".join(["python", *sys.argv]),
        "arch": arch, "hidden": hidden, "seed": args.seed, "lams": lams,
        "dataset": manifest["dataset"], "data_digest": manifest["digest"],
        "train_split": args.train_split, "lr_select": str(args.lr_select) if args.lr_select.is_file() else None,
        "n_train": len(images), "n_test": len(x_test), "steps": steps, "batch_size": training.batch_size,
        "lr": training.lr, "epochs": training.epochs, "active_threshold": params.evaluate.active_threshold,
        "ours": {"wall_time_s": round(result.wall_time_s, 1), "stack_size": len(members),
                 "decoder_norm": "unit norm after every step; decoder gradient projected onto the sphere's tangent "
                                 "before each Adam step (recipe.project_decoder_grad); L1 = lam * sum_j |z_j|",
                 "recipe": recipe.model_dump(), "points": ours},
        "saelens": {"wall_time_s": round(sum(p["wall_time_s"] for p in theirs), 1),
                    "decoder_norm": "free during training, L1 = lam * sum_j z_j ||W_dec_j||; folded into the code "
                                    "(fold_W_dec_norm: unit-norm rows, code z_j ||W_dec_j||) before evaluation",
                    "trainer": {"class": "SAETrainer", "sae": "StandardTrainingSAE",
                                "lr_warm_up_steps": round(recipe.lr_warmup * steps),
                                "l1_warm_up_steps": round(recipe.penalty_warmup * steps),
                                "lr_scheduler_name": "cosineannealing", "lr_end": training.lr / 10,
                                "gradient_clipping": 1.0, "data": "full batches in train_stack's sample order"},
                    "points": theirs},
        "matched_l0": comparison,
        "git_commit": git_commit(), "machine": cpu_name(), "threads": training.threads,
        "sgemm_gflops": {"before": round(rate_before), "after": round(rate_after)},
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "sae-lens": sae_lens.__version__},
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")

    print("\n| lam | ours L0 | ours FVU | ours objective | SAELens L0 | SAELens FVU | SAELens objective |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for a, b in zip(ours, theirs):
        print(f"| {a['lam']:g} | {a['l0']:.1f} | {a['fvu']:.4f} | {a['objective']:.3f} | "
              f"{b['l0']:.1f} | {b['fvu']:.4f} | {b['objective']:.3f} |")
    print("\nmatched L0 (ours / SAELens - 1): " + ", ".join(
        f"L0 {r['l0']:.1f}: " + ("outside its range" if r["relative_difference"] is None
                                 else f"{100 * r['relative_difference']:+.1f}%") for r in comparison["points"]))
    worst = comparison["worst_relative_difference"]
    print(f"worst {'n/a' if worst is None else f'{100 * worst:+.1f}%'} "
          f"({'within' if comparison['passed'] else 'NOT within'} {100 * TOLERANCE:g}%); sgemm "
          f"{rate_before:.0f} / {rate_after:.0f} GFLOP/s (before / after); written to {args.out}")


if __name__ == "__main__":
    main()
