"""`train@<arch>-<penalty>`: train one variant on every seed, one MLflow run per seed.

Writes, per seed, `<model_dir>/seed-<s>.pt` (state_dict), `<model_dir>/seed-<s>.json`
(MLflow run id, cost, provenance) and `<log_dir>/seed-<s>.csv` (per-epoch losses).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..params import load_params

# Per-epoch training state, outside every DVC output so that it survives a crash (git- and DVC-ignored).
CHECKPOINT_DIR = Path(".checkpoints")


def variant_name(arch: str, penalty: str) -> str:
    return f"{arch}-{penalty}"


def run(arch: str, penalty_name: str, data_dir: Path, model_dir: Path, log_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)  # before any import, read or run: bad params fail fast
    import mlflow
    import pandas as pd
    import torch

    from .. import plots, tracking
    from ..data import load_split, read_manifest
    from ..io import staged_dir, write_json
    from ..models import build_model, count_parameters
    from ..penalties import build_penalty
    from ..provenance import environment, git_commit
    from ..training import Checkpoint, seed_everything, select_device, train_model

    variant = variant_name(arch, penalty_name)
    manifest = read_manifest(data_dir)
    split = load_split(data_dir, "train")
    images = torch.from_numpy(split.images[: params.train.max_samples].copy())
    torch.set_num_threads(params.train.threads)
    device = select_device(params.train.device)
    penalty = build_penalty(penalty_name, arch, params.penalty)
    experiment_id = tracking.init_store(params.tracking.experiment)
    tracking.fail_abandoned_runs(experiment_id, f"train@{variant}")
    env, commit = environment(device), git_commit()
    penalty_params = params.penalty.of(penalty_name, arch).model_dump()
    model_params = getattr(params.model, arch).model_dump()

    finished = []
    with staged_dir(model_dir) as model_out, staged_dir(log_dir) as log_out:
        for seed in params.seeds:
            seed_everything(seed)
            model = build_model(arch, params.model, penalty.activation)
            tags = {
                "variant": variant,
                "arch": arch,
                "penalty": penalty_name,
                "activation": penalty.activation,
                "seed": str(seed),
                "dvc_stage": f"train@{variant}",
                "git_commit": commit,
                "mlflow.source.git.commit": commit,
                "dataset": manifest["dataset"],
                "data_digest": manifest["digest"],
                "data_source": ", ".join(manifest["source"]),
                "device": env["device"],
                **tracking.process_tags(),
            }
            with mlflow.start_run(run_name=f"{variant}-seed{seed}", tags=tags) as mlflow_run:
                mlflow.log_params(
                    tracking.flatten(
                        {
                            "arch": arch,
                            "penalty": penalty_name,
                            "activation": penalty.activation,
                            "seed": seed,
                            "model": model_params,
                            "penalty_params": penalty_params,
                            "train": params.train.model_dump(),
                            "n_train_samples": len(images),
                        }
                    )
                )
                tracking.log_dataset(split.images[: len(images)], split.labels[: len(images)], manifest, "training")

                def log_epoch(row: dict) -> None:
                    losses = {k: v for k, v in row.items() if k not in ("epoch", "step")}
                    mlflow.log_metrics({f"train_{k}": v for k, v in losses.items()}, step=row["epoch"])
                    shown = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
                    print(f"{variant} seed {seed} epoch {row['epoch']}/{params.train.epochs}: {shown}", flush=True)

                checkpoint = Checkpoint(
                    CHECKPOINT_DIR / variant / f"seed-{seed}.pt",
                    key=json.dumps([variant, seed, model_params, penalty_params, params.train.model_dump(),
                                    manifest["digest"]], sort_keys=True),
                )
                result = train_model(model, penalty, images, params.train, seed, device, on_epoch=log_epoch,
                                     desc=f"{variant} seed {seed}", checkpoint=checkpoint)
                weights = model_out / f"seed-{seed}.pt"
                torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
                history = pd.DataFrame(result.history)
                history.to_csv(log_out / f"seed-{seed}.csv", index=False)
                cost = {
                    "train_wall_time_s": result.wall_time_s,
                    "train_samples_per_s": result.samples_per_s,
                    "n_params": count_parameters(model),
                }
                mlflow.log_metrics(cost)
                mlflow.log_artifact(str(weights), artifact_path="model")
                plots.log_figure(plots.loss_curves({f"seed {seed}": history}, variant), "loss_curves.png")
                write_json(
                    model_out / f"seed-{seed}.json",
                    {
                        "variant": variant,
                        "seed": seed,
                        "activation": penalty.activation,
                        "mlflow_run_id": mlflow_run.info.run_id,
                        "tracking_uri": mlflow.get_tracking_uri(),
                        **cost,
                        "n_train_samples": len(images),
                        "git_commit": commit,
                        "dataset": manifest["dataset"],
                        "data_digest": manifest["digest"],
                        "environment": env,
                    },
                )
                finished.append(checkpoint)
    for checkpoint in finished:  # only once every output is in place
        checkpoint.remove()
