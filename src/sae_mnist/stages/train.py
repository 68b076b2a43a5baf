"""`train@<arch>-<seed>`: every model of one architecture on one seed, trained as one stack.

The stack holds the default setting of every penalty (none, l1, kl) and, on the first seed,
the sweep's other settings (the matched-sparsity frontier). All models start from the seed's
initial weights (KL's encoder biases apart, see penalties.py) and see the same batches in the
same order, which keeps the L1-KL comparison paired; `training.train_stack` gives each what
training it alone would, up to float rounding.

Writes, per model named `<variant>` (a default setting) or `<variant>-<setting>` (a sweep point):
`<model_dir>/<name>.pt` (a LinearSAE/ConvSAE state_dict), `<model_dir>/<name>.json` (what it is,
its MLflow run id, cost, provenance) and `<log_dir>/<name>.csv` (per-epoch losses).
MLflow: one parent run for the stack, one child run per model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..params import PENALTIES, Params, ParamsError, load_params

# Per-epoch training state, outside every DVC output so that it survives a crash (git- and DVC-ignored).
CHECKPOINT_DIR = Path(".checkpoints")


def variant_name(arch: str, penalty: str) -> str:
    return f"{arch}-{penalty}"


def setting_label(settings) -> str:
    """'lam=0.3', 'beta=1,rho=0.05', '' for no penalty: names a penalty setting in run names and files."""
    return ",".join(f"{k}={v:g}" for k, v in settings.model_dump().items())


@dataclass(frozen=True)
class Member:
    """One model of a stack: a variant at one penalty setting."""

    arch: str
    penalty: str
    settings: object  # the penalty's params section, e.g. L1Params
    default: bool  # the variant's default setting (params.yaml `penalty:`), else a sweep point

    @property
    def variant(self) -> str:
        return variant_name(self.arch, self.penalty)

    @property
    def name(self) -> str:
        return self.variant if self.default else f"{self.variant}-{setting_label(self.settings)}"


def stack_members(params: Params, arch: str, seed: int) -> list[Member]:
    """The models of stack (arch, seed), grouped by penalty: each default, then (first seed only) its sweep points."""
    members = []
    for penalty in PENALTIES:
        default = params.penalty.of(penalty, arch)
        members.append(Member(arch, penalty, default, True))
        if penalty != "none" and seed == params.seeds[0]:
            members += [Member(arch, penalty, s, False) for s in params.sweep.points(penalty, default, arch)[1:]]
    return members


def run(arch: str, seed: int, data_dir: Path, model_dir: Path, log_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)  # before any import, read or run: bad params fail fast
    if seed not in params.seeds:
        raise ParamsError(f"{params_file}: seed {seed} is not in seeds {params.seeds}; run `dvc repro`, which "
                          "makes one train stage per seed")
    import mlflow
    import pandas as pd
    import torch

    from .. import tracking
    from ..data import load_split, read_manifest
    from ..io import staged_dir, write_json
    from ..models import build_model, count_parameters
    from ..penalties import make_penalty
    from ..provenance import environment, git_commit
    from ..stacked import STACKS
    from ..training import Checkpoint, seed_everything, select_device, train_stack

    stage, stack_name = f"train@{arch}-{seed}", f"{arch}-seed{seed}"
    members = stack_members(params, arch, seed)
    manifest = read_manifest(data_dir)
    split = load_split(data_dir, "train")
    images = torch.from_numpy(split.images[: params.train.max_samples].copy())
    torch.set_num_threads(params.train.threads)
    device = select_device(params.train.device)
    experiment_id = tracking.init_store(params.tracking.experiment)
    tracking.fail_abandoned_runs(experiment_id, stage)
    env, commit = environment(device), git_commit()

    penalties, models = [], []
    for m in members:
        penalty = make_penalty(m.penalty, m.settings)
        seed_everything(seed)  # every model starts from the seed's weights
        model = build_model(arch, params.model, penalty.activation)
        model.init_code_bias(penalty.code_bias_init)
        penalties.append(penalty)
        models.append(model)
    stack = STACKS[arch].from_models(models)
    model_params = getattr(params.model, arch).model_dump()
    common_tags = {
        "arch": arch, "seed": str(seed), "dvc_stage": stage, "stack": stack_name, "git_commit": commit,
        "mlflow.source.git.commit": commit, "dataset": manifest["dataset"], "data_digest": manifest["digest"],
        "data_source": ", ".join(manifest["source"]), "device": env["device"], **tracking.process_tags(),
    }
    children = [
        (f"{m.name}-seed{seed}",
         {**common_tags, "variant": m.variant, "penalty": m.penalty, "activation": p.activation,
          "setting": setting_label(m.settings), "default_setting": str(m.default).lower()},
         tracking.flatten({"arch": arch, "penalty": m.penalty, "activation": p.activation, "seed": seed,
                           "model": model_params, "penalty_params": m.settings.model_dump(),
                           "train": params.train.model_dump(), "n_train_samples": len(images)}))
        for m, p in zip(members, penalties)
    ]
    checkpoint = Checkpoint(
        CHECKPOINT_DIR / f"{stack_name}.pt",
        key=json.dumps([arch, seed, model_params, [(m.penalty, m.settings.model_dump()) for m in members],
                        params.train.model_dump(), manifest["digest"]], sort_keys=True),
    )
    with mlflow.start_run(run_name=stack_name, tags=common_tags) as parent:
        mlflow.log_params(tracking.flatten({"arch": arch, "seed": seed, "model": model_params,
                                            "train": params.train.model_dump(), "n_models": len(members),
                                            "n_train_samples": len(images)}))
        tracking.log_dataset(split.images[: len(images)], split.labels[: len(images)], manifest, "training")
        with tracking.child_runs(parent.info.run_id, children) as run_ids:

            def log_epoch(rows: list[dict]) -> None:
                for run_id, row in zip(run_ids, rows):
                    tracking.log_metrics(run_id, {f"train_{k}": v for k, v in row.items() if k not in ("epoch", "step")},
                                         step=row["epoch"])
                shown = " ".join(f"{m.name}={row['loss']:.4g}" for m, row in zip(members, rows))
                print(f"{stack_name} epoch {rows[0]['epoch']}/{params.train.epochs}: loss {shown}", flush=True)

            result = train_stack(stack, penalties, [m.name for m in members], images, params.train, seed, device,
                                 on_epoch=log_epoch, desc=stack_name, checkpoint=checkpoint)
            cost = {"train_wall_time_s": result.wall_time_s, "train_samples_per_s": result.samples_per_s,
                    "stack_size": len(members), "n_params": count_parameters(models[0])}
            mlflow.log_metrics({"train_wall_time_s": result.wall_time_s,
                                "train_samples_per_s": result.samples_per_s * len(members)})
            with staged_dir(model_dir) as model_out, staged_dir(log_dir) as log_out:
                for k, (m, run_id) in enumerate(zip(members, run_ids)):
                    tracking.log_metrics(run_id, cost)
                    weights = model_out / f"{m.name}.pt"
                    torch.save(stack.export(k), weights)
                    if m.default:
                        mlflow.MlflowClient().log_artifact(run_id, str(weights), artifact_path="model")
                    pd.DataFrame(result.histories[k]).to_csv(log_out / f"{m.name}.csv", index=False)
                    write_json(model_out / f"{m.name}.json", {
                        "variant": m.variant, "name": m.name, "seed": seed, "penalty": m.penalty,
                        "activation": penalties[k].activation, "penalty_params": m.settings.model_dump(),
                        "default_setting": m.default, "stack": stack_name, "mlflow_run_id": run_id,
                        "mlflow_parent_run_id": parent.info.run_id, "tracking_uri": mlflow.get_tracking_uri(),
                        **cost, "n_train_samples": len(images), "git_commit": commit, "dataset": manifest["dataset"],
                        "data_digest": manifest["digest"], "environment": env,
                    })
    checkpoint.remove()  # only once every output is in place
