"""`train@<arch>-<seed>`: every frontier point of one architecture on one seed, trained as one stack.

The stack holds every setting of every penalty (`penalty:` defaults and `sweep:`; none, l1, kl,
topk), each on the training recipe (`recipe:`). All models start from the seed's initial weights
(see training.initial_model) and see the same batches in the same order, which pairs the L1-KL
comparison by seed; `training.train_stack` gives each what training it alone would, up to float
rounding.

`train_members` is also what the ablation and wide stages train with. It writes, per model named
`<variant>` (a default setting) or `<variant>-<setting>` (another frontier point), plus a suffix
for an ablation: `<model_dir>/<name>.pt` (a LinearSAE/ConvSAE state_dict), `<model_dir>/<name>.json`
(what it is, how it was trained, whether it converged, its MLflow run id, cost, provenance) and
`<log_dir>/<name>.csv` (per-epoch losses). MLflow: one parent run for the stack, a child run per model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..params import PENALTIES, Params, ParamsError, RecipeParams, StackTraining, load_params

# Per-epoch training state, outside every DVC output so that it survives a crash (git- and DVC-ignored).
CHECKPOINT_DIR = Path(".checkpoints")


def variant_name(arch: str, penalty: str) -> str:
    return f"{arch}-{penalty}"


def setting_label(settings) -> str:
    """'lam=0.3', 'beta=1,rho=0.05,scale=2', '' for no penalty: names a penalty setting (params section or dict)."""
    values = settings if isinstance(settings, dict) else settings.model_dump()
    return ",".join(f"{k}={v:g}" for k, v in values.items())


@dataclass(frozen=True)
class Member:
    """One model of a stack: a variant at one penalty setting, on a training recipe."""

    arch: str
    penalty: str
    settings: object  # the penalty's params section, e.g. L1Params
    default: bool  # the variant's default setting (params.yaml `penalty:`), else another frontier point
    recipe: RecipeParams
    suffix: str = field(default="")  # names an ablation, e.g. "without-lr_schedule"

    @property
    def variant(self) -> str:
        return variant_name(self.arch, self.penalty)

    @property
    def name(self) -> str:
        name = self.variant if self.default else f"{self.variant}-{setting_label(self.settings)}"
        return f"{name}-{self.suffix}" if self.suffix else name


def frontier_members(params: Params, arch: str) -> list[Member]:
    """Every frontier point of `arch`, grouped by penalty, each penalty's default first."""
    return [Member(arch, penalty, s, i == 0, params.recipe)
            for penalty in PENALTIES
            for i, s in enumerate(params.sweep.points(penalty, params.penalty.of(penalty, arch), arch))]


@dataclass(frozen=True)
class TrainedStack:
    """What train_members trained, in memory: each member's penalty and model (its initial weights: load
    `stack.export(k)` into it), the stack, the training result and each member's MLflow run id."""

    penalties: list
    models: list
    stack: object
    result: object  # training.StackResult
    run_ids: list[str]


def train_members(params: Params, arch: str, seed: int, members: list[Member], data_dir: Path, model_dir: Path,
                  log_dir: Path, stage: str, stack_name: str, model_params=None,
                  training: StackTraining | None = None) -> TrainedStack:
    """Train `members` as one stack on `seed`; write their weights, descriptions and logs; track them in MLflow.

    `training`: what the stack trains with, by default the train: settings at the architecture's budget.
    """
    import mlflow
    import pandas as pd
    import torch

    from .. import tracking
    from ..data import load_split, read_manifest
    from ..io import staged_dir, write_json
    from ..models import count_parameters
    from ..provenance import environment, git_commit
    from ..training import Checkpoint, select_device, train_stack

    model_params = model_params or params.model
    training = training or params.train.of(arch)  # by default the train: settings at this architecture's budget
    manifest = read_manifest(data_dir)
    split = load_split(data_dir, "train")
    images = torch.from_numpy(split.images[: training.max_samples].copy())
    torch.set_num_threads(training.threads)
    device = select_device(training.device)
    experiment_id = tracking.init_store(params.tracking.experiment)
    tracking.fail_abandoned_runs(experiment_id, stage)
    env, commit = environment(device), git_commit()

    penalties, models, stack = initial_stack(arch, model_params, members, seed, images)
    arch_params = getattr(model_params, arch).model_dump()
    common_tags = {
        "arch": arch, "seed": str(seed), "dvc_stage": stage, "stack": stack_name, "git_commit": commit,
        "mlflow.source.git.commit": commit, "dataset": manifest["dataset"], "data_digest": manifest["digest"],
        "data_source": ", ".join(manifest["source"]), "device": env["device"], **tracking.process_tags(),
    }
    children = [
        (f"{m.name}-seed{seed}",
         {**common_tags, "variant": m.variant, "penalty": m.penalty, "activation": p.activation,
          "setting": setting_label(m.settings), "default_setting": str(m.default).lower(),
          **({"ablation": m.suffix} if m.suffix else {}),
          "mlflow.note.content": describe(m, arch_params, seed, manifest["dataset"], len(images), stack_name)},
         tracking.flatten({"arch": arch, "penalty": m.penalty, "activation": p.activation, "seed": seed,
                           "model": arch_params, "penalty_params": m.settings.model_dump(),
                           "recipe": m.recipe.model_dump(), "train": training.model_dump(),
                           "n_train_samples": len(images)}))
        for m, p in zip(members, penalties)
    ]
    checkpoint = Checkpoint(
        CHECKPOINT_DIR / f"{stack_name}.pt",
        key=json.dumps([arch, seed, arch_params, [(m.penalty, m.settings.model_dump(), m.recipe.model_dump())
                                                  for m in members], training.model_dump(), manifest["digest"]],
                       sort_keys=True),
    )
    stack_description = (f"A stack of {len(members)} {arch} sparse autoencoders ({', '.join(dict.fromkeys(m.variant for m in members))}) "
                         f"trained together on seed {seed}, {manifest['dataset']} ({len(images)} training images), "
                         f"{training.epochs} epochs; one child run per model. DVC stage {stage}.")
    with mlflow.start_run(run_name=stack_name, tags={**common_tags, "mlflow.note.content": stack_description},
                          log_system_metrics=True) as parent:
        mlflow.log_params(tracking.flatten({"arch": arch, "seed": seed, "model": arch_params,
                                            "train": training.model_dump(), "n_models": len(members),
                                            "n_train_samples": len(images)}))
        tracking.log_dataset(split.images[: len(images)], split.labels[: len(images)], manifest, "training")
        with tracking.child_runs(parent.info.run_id, children) as run_ids:

            def log_epoch(rows: list[dict]) -> None:
                for run_id, row in zip(run_ids, rows):
                    tracking.log_metrics(run_id, {f"train_{k}": v for k, v in row.items() if k not in ("epoch", "step")},
                                         step=row["epoch"])
                worst = max(rows, key=lambda r: r["loss"])
                print(f"{stack_name} epoch {rows[0]['epoch']}/{training.epochs}: {len(rows)} models, objective "
                      f"{min(r['loss'] for r in rows):.4g} to {worst['loss']:.4g}", flush=True)

            result = train_stack(stack, penalties, [m.name for m in members], images, training, seed, device,
                                 recipes=[m.recipe for m in members], on_epoch=log_epoch, desc=stack_name,
                                 checkpoint=checkpoint)
            cost = {"train_wall_time_s": result.wall_time_s, "train_samples_per_s": result.samples_per_s,
                    "stack_size": len(members), "n_params": count_parameters(models[0])}
            mlflow.log_metrics({"train_wall_time_s": result.wall_time_s,
                                "train_samples_per_s": result.samples_per_s * len(members)})
            with staged_dir(model_dir) as model_out, staged_dir(log_dir) as log_out:
                for k, (m, run_id) in enumerate(zip(members, run_ids)):
                    converged = result.convergence[k]
                    tracking.log_metrics(run_id, {**cost, "train_relative_change_last_tenth":
                                                  converged["relative_change_last_tenth"]})
                    weights = model_out / f"{m.name}.pt"
                    torch.save(stack.export(k), weights)
                    if m.default and not m.suffix:  # each frontier default: a loadable, registered (first seed) model
                        models[k].load_state_dict(stack.export(k))
                        registered = f"sae-mnist-{m.variant}" if seed == params.seeds[0] else None
                        tracking.log_model(run_id, models[k], images[:2].unsqueeze(1).float() / 255, registered)
                    pd.DataFrame(result.histories[k]).to_csv(log_out / f"{m.name}.csv", index=False)
                    write_json(model_out / f"{m.name}.json", {
                        "variant": m.variant, "name": m.name, "arch": arch, "seed": seed, "penalty": m.penalty,
                        "activation": penalties[k].activation, "penalty_params": m.settings.model_dump(),
                        "default_setting": m.default, "ablation": m.suffix or None, "model": arch_params,
                        "recipe": m.recipe.model_dump(), "convergence": converged, "stack": stack_name,
                        "mlflow_run_id": run_id, "mlflow_parent_run_id": parent.info.run_id,
                        "tracking_store": tracking.store_kind(), **cost, "n_train_samples": len(images),
                        "epochs": training.epochs, "git_commit": commit, "dataset": manifest["dataset"],
                        "data_digest": manifest["digest"], "environment": env,
                    })
    checkpoint.remove()  # only once every output is in place
    return TrainedStack(penalties, models, stack, result, list(run_ids))


def initial_stack(arch: str, model_params, members: list[Member], seed: int, images):
    """Each member's penalty and starting model on `seed` (training.initial_model), and the stack built from them.

    `images` (n, 28, 28) uint8 are the training images: with centring, b_dec starts at their mean.
    """
    import torch

    from ..penalties import make_penalty
    from ..stacked import STACKS
    from ..training import initial_model, to_float_images

    mean_image = to_float_images(images, torch.device("cpu")).mean(0)
    penalties = [make_penalty(m.penalty, m.settings) for m in members]
    models = [initial_model(arch, model_params, p, m.recipe, seed, mean_image) for m, p in zip(members, penalties)]
    return penalties, models, STACKS[arch].from_models(models)


def describe(m: Member, arch_params: dict, seed: int, dataset: str, n_images: int, stack: str) -> str:
    """A run's description in words, for the MLflow UI."""
    size = ", ".join(f"{k} {v}" for k, v in arch_params.items())
    setting = setting_label(m.settings) or "no penalty"
    role = "its default setting" if m.default else "a point of its frontier"
    ablation = f", recipe {m.suffix}" if m.suffix else ""
    return (f"{m.variant} ({size}) at {setting}, {role}{ablation}; seed {seed}; trained on {dataset} "
            f"({n_images} images) in stack {stack}.")


def check_seed(params: Params, seed: int, params_file: Path) -> None:
    if seed not in params.seeds:
        raise ParamsError(f"{params_file}: seed {seed} is not in seeds {params.seeds}; run `dvc repro`, which "
                          "makes one train stage per seed")


def run(arch: str, seed: int, data_dir: Path, model_dir: Path, log_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)  # before any import, read or run: bad params fail fast
    check_seed(params, seed, params_file)
    train_members(params, arch, seed, frontier_members(params, arch), data_dir, model_dir, log_dir,
                  stage=f"train@{arch}-{seed}", stack_name=f"{arch}-seed{seed}")
