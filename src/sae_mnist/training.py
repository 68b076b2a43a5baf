"""The training loop, top to bottom, and nothing else.

Data stay in memory as one float tensor on the training device; each epoch
slices batches from a permutation drawn from a generator seeded by the run's
seed, so a run on CPU is bitwise reproducible for a fixed seed and thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .errors import BenchmarkError
from .models import SparseAutoencoder
from .params import TrainParams


class TrainingDiverged(BenchmarkError):
    """The loss became NaN or infinite; no weights are written."""


@dataclass
class TrainResult:
    history: list[dict]  # one row per epoch
    wall_time_s: float
    samples_per_s: float


def select_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def to_float_images(images_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(n, 28, 28) uint8 -> (n, 1, 28, 28) float32 in [0, 1] on `device`."""
    return images_uint8.to(device).unsqueeze(1).float().div_(255.0)


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the summed squared error per image (same scale as the L1 term)."""
    return (x - x_hat).pow(2).flatten(1).sum(1).mean()


def train_model(
    model: SparseAutoencoder,
    penalty: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    images: torch.Tensor,
    params: TrainParams,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[dict], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    x_all = to_float_images(images, device)
    n = len(x_all)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    order = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    step = 0
    started = time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        permutation = torch.randperm(n, generator=order).to(device)
        totals: dict[str, torch.Tensor] = {}
        batches = range(0, n, params.batch_size)
        for start in tqdm(batches, desc=f"{desc} epoch {epoch}/{params.epochs}", unit="batch", mininterval=2, leave=False):
            x = x_all[permutation[start : start + params.batch_size]]
            x_hat, z = model(x)
            terms = {"recon": reconstruction_loss(x, x_hat), **penalty(z)}
            loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.normalize_decoder()
            step += 1
            # Sums stay on the device: no host sync per step.
            for name, value in {"loss": loss, **terms}.items():
                totals[name] = totals.get(name, 0.0) + value.detach() * len(x)
        row = {"epoch": epoch, "step": step}
        row.update({name: total.item() / n for name, total in totals.items()})
        row["seconds"] = time.perf_counter() - started
        if not all(math.isfinite(v) for v in row.values()):
            raise TrainingDiverged(f"{desc}: loss is not finite at epoch {epoch} (step {step}): {row}")
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    wall = time.perf_counter() - started
    return TrainResult(history=history, wall_time_s=wall, samples_per_s=n * params.epochs / wall)
