"""Sparsity penalties: one class each, returning named loss terms, one value per model.

Codes come stacked, (models, entries, units): the unit axis last and every code entry of every
image along `entries` (linear: one per image; conv: image x position). `n_images` is the
number of images in the batch. One model is a stack of one; the stacked trainer evaluates a
whole group of models with the same penalty in one call, each field then holding one value
per model (see `stack_penalties`).

Each penalty also owns the code activation it needs (`activate`), so that the variants of an
architecture differ only in the penalty and that activation:
  none  ReLU           unpenalised reference
  l1    ReLU           exact zeros, the standard SAE choice
  kl    s * sigmoid    the KL target is a mean activation, so sigmoid(u) must lie in (0, 1); a fixed
                       code scale s lets a unit's decoder pattern reach norm s, not just 1 (see KLPenalty)
  topk  TopK           no penalty: the k largest pre-activations of each image, through a ReLU, the rest
                       zero (k-sparse autoencoders, Makhzani & Frey 2013; Gao et al. 2024): a reference

A penalty may also set the encoder biases' initial value (`code_bias_init`, None to keep
the initialisation's). Adding a penalty means adding a class here and a params section in params.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .params import PenaltyParams


def _per_model(value, z: torch.Tensor) -> torch.Tensor:
    """A penalty field as a tensor that broadcasts against per-model values: () or (models,)."""
    return torch.as_tensor(value, dtype=z.dtype, device=z.device)


def _per_model_code(value, z: torch.Tensor) -> torch.Tensor:
    """A penalty field that broadcasts against codes (models, entries, units)."""
    return _per_model(value, z).reshape(-1, 1, 1)


class _ReLU:
    activation: ClassVar[str] = "relu"

    def activate(self, u: torch.Tensor, n_images: int) -> torch.Tensor:
        return torch.relu(u)


@dataclass(frozen=True)
class NoPenalty(_ReLU):
    name: ClassVar[str] = "none"
    terms: ClassVar[tuple[str, ...]] = ()  # the names of the loss terms it returns
    code_bias_init: ClassVar[None] = None  # keep the initialisation's biases

    def __call__(self, z: torch.Tensor, n_images: int) -> dict[str, torch.Tensor]:
        return {}


@dataclass(frozen=True)
class L1Penalty(_ReLU):
    """lam * (mean over images of sum_j |z_j|), on the code only (conv: j runs over channels and positions)."""

    lam: float | torch.Tensor
    name: ClassVar[str] = "l1"
    terms: ClassVar[tuple[str, ...]] = ("l1",)
    code_bias_init: ClassVar[None] = None

    def __call__(self, z, n_images):
        return {"l1": _per_model(self.lam, z) * z.abs().sum((1, 2)) / n_images}


@dataclass(frozen=True)
class KLPenalty:
    """beta * sum_j KL(rho || rho_hat_j), rho_hat_j the batch-mean of sigmoid(u_j), the unit's firing probability.

    The code is z = scale * sigmoid(u): a fixed code scale s (not learned). With unit-norm
    decoder columns a sigmoid unit adds a pattern of norm at most 1, where a ReLU unit reaches
    any norm; s lifts that cap to s. It is fixed, not a free per-unit gain, because in the sparse
    regime g * sigmoid(u) ~ sigmoid(u + ln g): a learned gain could trade places with the bias and
    meet rho_hat = rho without changing what the model computes. With s fixed, rho_hat is a
    function of the code itself (z / s), so the KL term cannot fall while the reconstruction stays
    the same (a test checks this). The frontier takes KL's best envelope over the swept scales.

    For conv codes rho_hat_j is per channel, over batch x height x width.
    rho_hat is clamped to [eps, 1 - eps] so the penalty is always finite.
    The encoder biases start at logit(rho), so every unit starts at its target mean
    activation instead of sigmoid(0) = 0.5.
    """

    beta: float | torch.Tensor
    rho: float | torch.Tensor
    scale: float | torch.Tensor = 1.0
    eps: ClassVar[float] = 1e-6
    name: ClassVar[str] = "kl"
    terms: ClassVar[tuple[str, ...]] = ("kl",)
    activation: ClassVar[str] = "sigmoid"

    @property
    def code_bias_init(self) -> float:
        return math.log(self.rho / (1 - self.rho))

    def activate(self, u, n_images):
        return _per_model_code(self.scale, u) * torch.sigmoid(u)

    def firing_probability(self, z: torch.Tensor) -> torch.Tensor:
        """sigmoid(u) from the code z = scale * sigmoid(u)."""
        return z / _per_model_code(self.scale, z)

    def __call__(self, z, n_images):
        rho = _per_model(self.rho, z).reshape(-1, 1)
        divergence = kl_divergence(rho, self.firing_probability(z).mean(1), self.eps).sum(1)
        return {"kl": _per_model(self.beta, z) * divergence}


@dataclass(frozen=True)
class TopKPenalty:
    """No loss term: the activation keeps each image's k largest pre-activations (through a ReLU), zeroes the rest.

    For conv codes the k are chosen among all channels x positions of the image. Where fewer than
    k pre-activations are positive, fewer than k entries are non-zero.
    """

    k: int | torch.Tensor
    name: ClassVar[str] = "topk"
    terms: ClassVar[tuple[str, ...]] = ()
    activation: ClassVar[str] = "topk"
    code_bias_init: ClassVar[None] = None

    def activate(self, u, n_images):
        models = u.shape[0]
        per_image = u.reshape(models, n_images, -1)
        k = torch.as_tensor(self.k, device=u.device).reshape(-1).long()
        values, index = per_image.topk(min(int(k.max()), per_image.shape[2]), dim=2)  # k beyond the code: all of it
        keep = torch.arange(values.shape[2], device=u.device) < k.reshape(-1, 1, 1)  # a per-model k in one call
        z = torch.zeros_like(per_image).scatter(2, index, torch.relu(values) * keep)
        return z.reshape(u.shape)

    def __call__(self, z, n_images):
        return {}


def kl_divergence(rho, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Elementwise KL(Bernoulli(rho) || Bernoulli(rho_hat))."""
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


def stack_penalties(penalties: list) -> object:
    """One penalty of the same class whose fields hold every model's value, in order: (models,) tensors."""
    cls = type(penalties[0])
    if any(type(p) is not cls for p in penalties):
        raise ValueError(f"a penalty group mixes {sorted({type(p).__name__ for p in penalties})}")
    return cls(**{f.name: torch.tensor([getattr(p, f.name) for p in penalties]) for f in dataclasses.fields(cls)})


PENALTY_CLASSES = {cls.name: cls for cls in (NoPenalty, L1Penalty, KLPenalty, TopKPenalty)}


def make_penalty(name: str, settings):
    """The penalty `name` ("none", "l1", "kl", "topk") at `settings` (its params section, e.g. L1Params)."""
    if name not in PENALTY_CLASSES:
        raise ValueError(f"unknown penalty {name!r}; choose from {', '.join(PENALTY_CLASSES)}")
    return PENALTY_CLASSES[name](**settings.model_dump())


def build_penalty(name: str, arch: str, params: PenaltyParams):
    """The penalty at its default setting for `arch` (params.yaml's `penalty.<name>.<arch>`)."""
    return make_penalty(name, params.of(name, arch))
