"""`sweep@<arch>-<penalty>`: one point of the matched-sparsity frontier per penalty setting.

Trains and evaluates every setting in `sweep.<penalty>.<arch>` (params.yaml) on the first
seed, at the main runs' width, optimiser, epochs and data. The default setting is left out:
its point is the main train/evaluate stages' run on the same seed, which the same code
would reproduce bit for bit. Each point is an MLflow run with its setting as params and its
test metrics; `<out_file>` lists every point for the report.
"""

from __future__ import annotations

from pathlib import Path

from ..params import load_params


def run(arch: str, penalty_name: str, data_dir: Path, out_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import mlflow
    import torch

    from ..data import load_split
    from ..io import write_json
    from ..metrics import unit_mean_activation
    from ..training import to_float_images
    from .evaluate import held_out_metrics
    from .train import TrainingSession, setting_label, variant_name

    variant = variant_name(arch, penalty_name)
    session = TrainingSession(params, data_dir, stage=f"sweep@{variant}")
    x = to_float_images(torch.from_numpy(load_split(data_dir, "test").images.copy()), torch.device("cpu"))
    seed = params.seeds[0]
    settings = params.sweep.points(penalty_name, params.penalty.of(penalty_name, arch), arch)[1:]
    points, finished = [], []
    for i, setting in enumerate(settings, 1):
        label = setting_label(setting)
        print(f"{variant}: sweep point {i}/{len(settings)}: {label}", flush=True)
        trained = session.train(arch, penalty_name, setting, seed, run_name=f"{variant}-{label}-seed{seed}")
        metrics, _, z = held_out_metrics(trained.model, x, params)
        if penalty_name == "kl":
            metrics["rho_hat_abs_error"] = (unit_mean_activation(z) - setting.rho).abs().mean().item()
        with mlflow.start_run(run_id=trained.info["mlflow_run_id"]):
            mlflow.log_metrics({f"test_{k}": float(v) for k, v in metrics.items()})
        points.append({"setting": setting.model_dump(), "metrics": metrics, "training": trained.info})
        finished.append(trained.checkpoint)
    write_json(out_file, {"variant": variant, "seed": seed, "dataset": session.manifest["dataset"],
                          "data_digest": session.manifest["digest"], "points": points})
    for checkpoint in finished:  # only once the output is in place
        checkpoint.remove()
