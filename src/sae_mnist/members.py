"""The models a stack trains (Member: a variant at one penalty setting, on a recipe), and train_members, which
trains them together and writes what each stage keeps of them.

The train, ablation, wide and robustness stages all train through train_members. It writes, per model named
`<variant>` (a default setting) or `<variant>-<setting>` (another frontier point), plus a suffix for an ablation or
a variation: `<model_dir>/<name>.pt` (a LinearSAE/ConvSAE state_dict), `<model_dir>/<name>.json` (what it is, how
it was trained, whether it converged, its MLflow run id, cost, provenance) and `<log_dir>/<name>.csv` (per-epoch
losses). MLflow: one parent run for the stack, a child run per model. All models of a stack start from the seed's
initial weights (training.initial_model) and see the same batches in the same order, which pairs the L1-KL
comparison by seed; training.train_stack gives each what training it alone would, up to float rounding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from .params import COMPARED, PENALTIES, Params, ParamsError, RecipeParams, StackTraining

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
    lr: float | None = None  # its own base learning rate (lr_select's choice for its penalty); None: the stack's

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


def at_rates(members: list[Member], rates: dict[str, float], base_lr: float) -> list[Member]:
    """Each member at its penalty's chosen learning rate (lr_select's `rates`); a penalty without one (none) at
    `base_lr` (train.lr)."""
    return [replace(m, lr=rates.get(m.penalty, base_lr)) for m in members]


def compared_members(params: Params, arch: str) -> list[Member]:
    """Every L1 and KL frontier setting of `arch`, defaults included: the two frontiers the verdict compares."""
    return [m for m in frontier_members(params, arch) if m.penalty in COMPARED]


def check_seed(params: Params, seed: int, params_file: Path) -> None:
    if seed not in params.seeds:
        raise ParamsError(f"{params_file}: seed {seed} is not in seeds {params.seeds}; run `dvc repro`, which "
                          "makes one train stage per seed")


def initial_stack(arch: str, model_params, members: list[Member], seed: int, images):
    """Each member's penalty and starting model on `seed` (training.initial_model), and the stack built from them.

    `images` (n, 28, 28) uint8 are the training images: with centring, b_dec starts at their mean.
    """
    import torch

    from .penalties import make_penalty
    from .stacked import STACKS
    from .training import initial_model, to_float_images

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


@dataclass(frozen=True)
class TrainedStack:
    """What train_members trained, in memory: each member's penalty and model (its initial weights: load
    `stack.export(k)` into it), the stack, the training result and each member's MLflow run id."""

    penalties: list
    models: list
    stack: object
    result: object  # training.StackResult
    run_ids: list[str]


@dataclass(frozen=True)
class StackRun:
    """What every file and MLflow run of one stack names: where it comes from and how it was trained."""

    arch: str
    seed: int
    stage: str  # the DVC stage that trains it
    name: str  # the stack's name, e.g. linear-seed0
    arch_params: dict  # the architecture's size (model.<arch>)
    training: StackTraining
    manifest: dict  # the download stage's: dataset and digest
    n_images: int
    environment: dict
    commit: str

    def tags(self) -> dict[str, str]:
        """The tags of the stack's parent run and of every child run."""
        m = self.manifest
        return {"arch": self.arch, "seed": str(self.seed), "dvc_stage": self.stage, "stack": self.name,
                "git_commit": self.commit, "mlflow.source.git.commit": self.commit, "dataset": m["dataset"],
                "data_digest": m["digest"], "data_source": ", ".join(m["source"]), "device": self.environment["device"]}

    def child_runs(self, members: list[Member], penalties: list, process_tags: dict, flatten) -> list[tuple]:
        """(run name, tags, params) of each member's child run."""
        return [
            (f"{m.name}-seed{self.seed}",
             {**self.tags(), **process_tags, "variant": m.variant, "penalty": m.penalty, "activation": p.activation,
              "setting": setting_label(m.settings), "default_setting": str(m.default).lower(),
              **({"ablation": m.suffix} if m.suffix else {}),
              "mlflow.note.content": describe(m, self.arch_params, self.seed, self.manifest["dataset"],
                                              self.n_images, self.name)},
             flatten({"arch": self.arch, "penalty": m.penalty, "activation": p.activation, "seed": self.seed,
                      "model": self.arch_params, "penalty_params": m.settings.model_dump(),
                      "recipe": m.recipe.model_dump(), "train": self.training.model_dump(),
                      "n_train_samples": self.n_images, **({"lr": m.lr} if m.lr else {})}))
            for m, p in zip(members, penalties)
        ]

    def checkpoint_key(self, members: list[Member]) -> str:
        """What a checkpoint must have been written for to be resumed: the same stack, training and data."""
        return json.dumps([self.arch, self.seed, self.arch_params,
                           [(m.penalty, m.settings.model_dump(), m.recipe.model_dump(), m.lr) for m in members],
                           self.training.model_dump(), self.manifest["digest"]], sort_keys=True)

    def description(self, members: list[Member]) -> str:
        return (f"A stack of {len(members)} {self.arch} sparse autoencoders "
                f"({', '.join(dict.fromkeys(m.variant for m in members))}) trained together on seed {self.seed}, "
                f"{self.manifest['dataset']} ({self.n_images} training images), {self.training.epochs} epochs; one "
                f"child run per model. DVC stage {self.stage}.")

    def member_file(self, m: Member, activation: str, convergence: dict, run_id: str, parent_id: str, cost: dict,
                    store_kind: str) -> dict:
        """`<model_dir>/<name>.json`: what the model is, how it was trained, and where it came from."""
        return {"variant": m.variant, "name": m.name, "arch": self.arch, "seed": self.seed, "penalty": m.penalty,
                "activation": activation, "penalty_params": m.settings.model_dump(), "default_setting": m.default,
                "ablation": m.suffix or None, "model": self.arch_params, "recipe": m.recipe.model_dump(),
                "convergence": convergence, "stack": self.name, "mlflow_run_id": run_id,
                "mlflow_parent_run_id": parent_id, "tracking_store": store_kind, **cost,
                "n_train_samples": self.n_images, "epochs": self.training.epochs, "git_commit": self.commit,
                "dataset": self.manifest["dataset"], "data_digest": self.manifest["digest"],
                "environment": self.environment, **({"lr": m.lr} if m.lr else {})}


def train_members(params: Params, arch: str, seed: int, members: list[Member], data_dir: Path, model_dir: Path,
                  log_dir: Path, stage: str, stack_name: str, model_params=None,
                  training: StackTraining | None = None, split: str = "train") -> TrainedStack:
    """Train `members` as one stack on `seed`; write their weights, descriptions and logs; track them in MLflow.

    `training`: what the stack trains with, by default the train: settings at the architecture's budget.
    `split`: the training images it sees (data.load_split: `fit` holds out the validation split).
    """
    import mlflow
    import torch

    from . import tracking
    from .data import load_split, read_manifest
    from .provenance import environment, git_commit
    from .checkpoint import Checkpoint
    from .training import select_device, train_stack

    model_params = model_params or params.model
    training = training or params.train.of(arch)  # by default the train: settings at this architecture's budget
    manifest = read_manifest(data_dir)
    split = load_split(data_dir, split, params.split.validation)
    images = torch.from_numpy(split.images[: training.max_samples].copy())
    torch.set_num_threads(training.threads)
    device = select_device(training.device)
    experiment_id = tracking.init_store(params.tracking.experiment)
    tracking.fail_abandoned_runs(experiment_id, stage)
    run = StackRun(arch, seed, stage, stack_name, getattr(model_params, arch).model_dump(), training, manifest,
                   len(images), environment(device), git_commit())

    penalties, models, stack = initial_stack(arch, model_params, members, seed, images)
    checkpoint = Checkpoint(CHECKPOINT_DIR / f"{stack_name}.pt", key=run.checkpoint_key(members))
    with mlflow.start_run(run_name=stack_name, tags={**run.tags(), **tracking.process_tags(),
                                                     "mlflow.note.content": run.description(members)},
                          log_system_metrics=True) as parent:
        mlflow.log_params(tracking.flatten({"arch": arch, "seed": seed, "model": run.arch_params,
                                            "train": training.model_dump(), "n_models": len(members),
                                            "n_train_samples": len(images)}))
        tracking.log_dataset(split.images[: len(images)], split.labels[: len(images)], manifest, "training")
        children = run.child_runs(members, penalties, tracking.process_tags(), tracking.flatten)
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
                                 checkpoint=checkpoint, lrs=[m.lr or training.lr for m in members])
            mlflow.log_metrics({"train_wall_time_s": result.wall_time_s,
                                "train_samples_per_s": result.samples_per_s * len(members)})
            trained = TrainedStack(penalties, models, stack, result, list(run_ids))
            write_members(run, params, members, trained, parent.info.run_id, images, model_dir, log_dir)
    checkpoint.remove()  # only once every output is in place
    return trained


def write_members(run: StackRun, params: Params, members: list[Member], trained: TrainedStack, parent_id: str,
                  images, model_dir: Path, log_dir: Path) -> None:
    """Each member's weights, description and per-epoch losses, written whole or not at all; its cost and
    convergence logged to its MLflow run, and each frontier default logged as a loadable model (registered for
    the first seed)."""
    import pandas as pd
    import torch

    from . import tracking
    from .io import staged_dir, write_json
    from .models import count_parameters

    result, stack, models = trained.result, trained.stack, trained.models
    cost = {"train_wall_time_s": result.wall_time_s, "train_samples_per_s": result.samples_per_s,
            "stack_size": len(members), "n_params": count_parameters(models[0])}
    with staged_dir(model_dir) as model_out, staged_dir(log_dir) as log_out:
        for k, (m, run_id) in enumerate(zip(members, trained.run_ids)):
            converged = result.convergence[k]
            tracking.log_metrics(run_id, {**cost, "train_relative_change_last_tenth":
                                          converged["relative_change_last_tenth"]})
            torch.save(stack.export(k), model_out / f"{m.name}.pt")
            if m.default and not m.suffix:  # each frontier default: a loadable, registered (first seed) model
                models[k].load_state_dict(stack.export(k))
                registered = f"sae-mnist-{m.variant}" if run.seed == params.seeds[0] else None
                tracking.log_model(run_id, models[k], images[:2].unsqueeze(1).float() / 255, registered)
            pd.DataFrame(result.histories[k]).to_csv(log_out / f"{m.name}.csv", index=False)
            write_json(model_out / f"{m.name}.json", run.member_file(
                m, trained.penalties[k].activation, converged, run_id, parent_id, cost, tracking.store_kind()))
