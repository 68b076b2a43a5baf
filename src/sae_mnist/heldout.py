"""A trained model on held-out images: its metrics as the evaluate stage computes them (held_out_metrics), the
model rebuilt from what train_members wrote (load_model), and a stack trained and evaluated in memory
(train_points), as the robustness stage, make verify and the benchmarks use it."""

from __future__ import annotations

from pathlib import Path

from .params import Params, StackTraining


def encode_all(model, x, batch_size: int):
    """(x_hat, z) for every image, in batches, without gradients."""
    import torch

    model.eval()
    with torch.no_grad():
        outputs = [model(batch) for batch in x.split(batch_size)]
    return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])


def log_held_out_metrics(run_id: str, metrics: dict, split: str = "test") -> bool:
    """Log `metrics` as <split>_* (test_* by default) to a model's MLflow run; False (with a warning) when the store
    does not have it."""
    import mlflow

    from . import tracking

    try:
        mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        print(f"WARNING: MLflow run {run_id} is not in {tracking.tracking_uri()}; {split} metrics are written to "
              "files only", flush=True)
        return False
    tracking.log_metrics(run_id, {f"{split}_{k}": v for k, v in metrics.items()})
    return True


def held_out_metrics(model, penalty, x, params) -> tuple[dict, object, object]:
    """Reconstruction and sparsity metrics of `model` on images `x`; also returns x_hat (truncated code) and z.

    fvu, mse and psnr_db are of the truncated code at evaluate.active_threshold, the code L0 counts;
    fvu_at_<t> and l0_at_<t> for every threshold t in evaluate.thresholds; fvu_untruncated of the code
    as the model computes it. KL models also get their firing probabilities' distance to rho
    (rho_hat on sigmoid(u) = z / scale) and the fraction of entries with sigmoid(u) > 0.99 (saturated).
    """
    import torch

    from .metrics import l0, reconstruction_metrics, sparsity_metrics, truncate, unit_mean_activation

    e = params.evaluate
    x_full, z = encode_all(model, x, e.batch_size)
    metrics = {}
    with torch.no_grad():
        for t in e.thresholds:
            x_hat = torch.cat([model.decode(truncate(c, t)) for c in z.split(e.batch_size)])
            metrics |= {f"fvu_at_{t:g}": reconstruction_metrics(x, x_hat)["fvu"], f"l0_at_{t:g}": l0(z, t)}
            if t == e.active_threshold:
                metrics |= reconstruction_metrics(x, x_hat)
                kept = x_hat
    metrics |= {"fvu_untruncated": reconstruction_metrics(x, x_full)["fvu"],
                **sparsity_metrics(z, e.active_threshold, e.always_on_above)}
    if penalty.name == "kl":
        firing = penalty.firing_probability(z)
        rho_hat = unit_mean_activation(firing)
        metrics |= {"rho_target": penalty.rho, "rho_hat_abs_error": (rho_hat - penalty.rho).abs().mean().item(),
                    "rho_hat_relative_error": (rho_hat - penalty.rho).abs().mean().item() / penalty.rho,
                    "saturated_fraction": (firing > 0.99).double().mean().item()}
    return metrics, kept, z


def load_model(info: dict, weights: Path):
    """A trained model, rebuilt from the description the train stage wrote beside its weights, and its penalty."""
    import torch

    from .models import build_model
    from .params import KLParams, L1Params, ModelParams, NoPenaltyParams, TopKParams
    from .penalties import make_penalty

    sections = {"none": NoPenaltyParams, "l1": L1Params, "kl": KLParams, "topk": TopKParams}
    penalty = make_penalty(info["penalty"], sections[info["penalty"]](**info["penalty_params"]))
    sizes = {"linear": {"hidden": 1}, "conv": {"channels": 1}} | {info["arch"]: info["model"]}
    model = build_model(info["arch"], ModelParams(**sizes), penalty.activate, info["recipe"]["center_input"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model, penalty


def evaluated_points(members: list, penalties: list, models: list, stack, convergence: list[dict], seed: int,
                     training: StackTraining, x_test, params: Params) -> list[dict]:
    """Each trained member of `stack` (model k: stack.export(k), loaded into models[k]) evaluated on `x_test` as
    the evaluate stage does: a frontier file's point (name, penalty, setting, seed, default, metrics) with the
    epochs, learning rate and convergence it trained with under `training`."""
    points = []
    for k, (member, model, penalty) in enumerate(zip(members, models, penalties)):
        model.load_state_dict(stack.export(k))
        metrics, _, _ = held_out_metrics(model, penalty, x_test, params)
        points.append({"name": member.name, "penalty": member.penalty, "setting": member.settings.model_dump(),
                       "seed": seed, "default": member.default, "metrics": metrics,
                       "training": {"epochs": training.epochs, "lr": member.lr or training.lr,
                                    "convergence": convergence[k]}})
    return points


def train_points(params: Params, arch: str, seed: int, members: list, training: StackTraining, images, x_test,
                 device, desc: str = "stack") -> tuple[list[dict], object]:
    """Train `members` as one stack on `seed` under `training`, in memory (no files, no MLflow), and evaluate each:
    (evaluated_points, the training.StackResult). What benchmarks/budget_by_verdict.py measures with."""
    from .members import initial_stack
    from .training import train_stack

    penalties, models, stack = initial_stack(arch, params.model, members, seed, images)
    result = train_stack(stack, penalties, [m.name for m in members], images, training, seed, device,
                         recipes=[m.recipe for m in members], desc=desc, lrs=[m.lr or training.lr for m in members])
    return evaluated_points(members, penalties, models, stack, result.convergence, seed, training, x_test,
                            params), result
