"""`train@<arch>-<penalty>`: train one variant on every seed, one MLflow run per seed.

Writes, per seed, `<model_dir>/seed-<s>.pt` (state_dict), `<model_dir>/seed-<s>.json`
(MLflow run id, cost, provenance) and `<log_dir>/seed-<s>.csv` (per-epoch losses).
`TrainingSession.train` is also what the sweep stage trains its frontier points with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..params import Params, load_params

# Per-epoch training state, outside every DVC output so that it survives a crash (git- and DVC-ignored).
CHECKPOINT_DIR = Path(".checkpoints")


def variant_name(arch: str, penalty: str) -> str:
    return f"{arch}-{penalty}"


def setting_label(settings) -> str:
    """'lam=0.3', 'beta=1,rho=0.05', '' for no penalty: names a penalty setting in run names and files."""
    return ",".join(f"{k}={v:g}" for k, v in settings.model_dump().items())


@dataclass
class TrainedRun:
    model: object  # SparseAutoencoder
    history: object  # pandas DataFrame, one row per epoch
    info: dict  # what seed-<s>.json holds: run id, cost, provenance
    checkpoint: object  # removed by the caller once its outputs are in place


@dataclass
class TrainingSession:
    """What every run of one stage shares: params, training data, device, MLflow experiment, provenance."""

    params: Params
    data_dir: Path
    stage: str
    manifest: dict = field(init=False)

    def __post_init__(self):
        import torch

        from .. import tracking
        from ..data import load_split, read_manifest
        from ..provenance import environment, git_commit
        from ..training import select_device

        self.manifest = read_manifest(self.data_dir)
        self.split = load_split(self.data_dir, "train")
        self.images = torch.from_numpy(self.split.images[: self.params.train.max_samples].copy())
        torch.set_num_threads(self.params.train.threads)
        self.device = select_device(self.params.train.device)
        experiment_id = tracking.init_store(self.params.tracking.experiment)
        tracking.fail_abandoned_runs(experiment_id, self.stage)
        self.env, self.commit = environment(self.device), git_commit()

    def train(self, arch: str, penalty_name: str, settings, seed: int, run_name: str) -> TrainedRun:
        """Train one model in its own MLflow run (params, per-epoch losses, cost, weights' provenance)."""
        import mlflow
        import pandas as pd

        from .. import tracking
        from ..models import build_model, count_parameters
        from ..penalties import make_penalty
        from ..training import Checkpoint, seed_everything, train_model

        params, manifest = self.params, self.manifest
        variant = variant_name(arch, penalty_name)
        penalty = make_penalty(penalty_name, settings)
        model_params = getattr(params.model, arch).model_dump()
        seed_everything(seed)
        model = build_model(arch, params.model, penalty.activation)
        model.init_code_bias(penalty.code_bias_init)
        tags = {
            "variant": variant, "arch": arch, "penalty": penalty_name, "activation": penalty.activation,
            "setting": setting_label(settings), "seed": str(seed), "dvc_stage": self.stage,
            "git_commit": self.commit, "mlflow.source.git.commit": self.commit,
            "dataset": manifest["dataset"], "data_digest": manifest["digest"],
            "data_source": ", ".join(manifest["source"]), "device": self.env["device"], **tracking.process_tags(),
        }
        with mlflow.start_run(run_name=run_name, tags=tags) as mlflow_run:
            mlflow.log_params(tracking.flatten({
                "arch": arch, "penalty": penalty_name, "activation": penalty.activation, "seed": seed,
                "model": model_params, "penalty_params": settings.model_dump(), "train": params.train.model_dump(),
                "n_train_samples": len(self.images),
            }))
            tracking.log_dataset(self.split.images[: len(self.images)], self.split.labels[: len(self.images)],
                                 manifest, "training")

            def log_epoch(row: dict) -> None:
                losses = {k: v for k, v in row.items() if k not in ("epoch", "step")}
                mlflow.log_metrics({f"train_{k}": v for k, v in losses.items()}, step=row["epoch"])
                shown = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
                print(f"{run_name} epoch {row['epoch']}/{params.train.epochs}: {shown}", flush=True)

            checkpoint = Checkpoint(
                CHECKPOINT_DIR / variant / f"{run_name}.pt",
                key=json.dumps([variant, seed, model_params, settings.model_dump(), params.train.model_dump(),
                                manifest["digest"]], sort_keys=True),
            )
            result = train_model(model, penalty, self.images, params.train, seed, self.device, on_epoch=log_epoch,
                                 desc=run_name, checkpoint=checkpoint)
            history = pd.DataFrame(result.history)
            cost = {
                "train_wall_time_s": result.wall_time_s,
                "train_samples_per_s": result.samples_per_s,
                "n_params": count_parameters(model),
            }
            mlflow.log_metrics(cost)  # per-epoch losses are MLflow metrics, charted by its UI: no figure needed
            info = {
                "variant": variant, "seed": seed, "activation": penalty.activation,
                "penalty_params": settings.model_dump(),
                "mlflow_run_id": mlflow_run.info.run_id, "tracking_uri": mlflow.get_tracking_uri(),
                **cost, "n_train_samples": len(self.images), "git_commit": self.commit,
                "dataset": manifest["dataset"], "data_digest": manifest["digest"], "environment": self.env,
            }
        return TrainedRun(model=model, history=history, info=info, checkpoint=checkpoint)


def run(arch: str, penalty_name: str, data_dir: Path, model_dir: Path, log_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)  # before any import, read or run: bad params fail fast
    import mlflow
    import torch

    from ..io import staged_dir, write_json

    variant = variant_name(arch, penalty_name)
    session = TrainingSession(params, data_dir, stage=f"train@{variant}")
    settings = params.penalty.of(penalty_name, arch)
    finished = []
    with staged_dir(model_dir) as model_out, staged_dir(log_dir) as log_out:
        for seed in params.seeds:
            trained = session.train(arch, penalty_name, settings, seed, run_name=f"{variant}-seed{seed}")
            weights = model_out / f"seed-{seed}.pt"
            torch.save({k: v.cpu() for k, v in trained.model.state_dict().items()}, weights)
            with mlflow.start_run(run_id=trained.info["mlflow_run_id"]):
                mlflow.log_artifact(str(weights), artifact_path="model")
            trained.history.to_csv(log_out / f"seed-{seed}.csv", index=False)
            write_json(model_out / f"seed-{seed}.json", trained.info)
            finished.append(trained.checkpoint)
    for checkpoint in finished:  # only once every output is in place
        checkpoint.remove()
