"""The training loop, top to bottom, and nothing else.

Data stay in memory as one float tensor on the training device; each epoch
slices batches from a permutation drawn from a generator seeded by the run's
seed, so a run on CPU is bitwise reproducible for a fixed seed and thread count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def train_step(model: SparseAutoencoder, penalty, optimizer, x: torch.Tensor):
    """One optimiser step on batch x; returns the loss and its named terms (not detached)."""
    x_hat, z = model(x)
    terms = {"recon": reconstruction_loss(x, x_hat), **penalty(z)}
    loss = sum(terms.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.normalize_decoder()
    return loss, terms


def train_model(
    model: SparseAutoencoder,
    penalty: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    images: torch.Tensor,
    params: TrainParams,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[dict], None] | None = None,
    desc: str = "train",
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    x_all = to_float_images(images, device)
    n = len(x_all)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    order = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    step, done_seconds = 0, 0.0
    if checkpoint is not None and (state := checkpoint.load()) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order.set_state(state["order"])
        history, step, done_seconds = state["history"], state["step"], state["seconds"]
        print(f"{desc}: resuming from the checkpoint after epoch {len(history)}", flush=True)
        for row in history:
            if on_epoch is not None:
                on_epoch(row)
    started = time.perf_counter() - done_seconds
    for epoch in range(len(history) + 1, params.epochs + 1):
        permutation = torch.randperm(n, generator=order).to(device)
        totals: dict[str, torch.Tensor] = {}
        first_bad_step = torch.tensor(-1, device=device)
        batches = range(0, n, params.batch_size)
        for start in tqdm(batches, desc=f"{desc} epoch {epoch}/{params.epochs}", unit="batch", mininterval=2, leave=False):
            x = x_all[permutation[start : start + params.batch_size]]
            loss, terms = train_step(model, penalty, optimizer, x)
            step += 1
            # Sums and the divergence check stay on the device: no host sync per step.
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss.detach()), step, first_bad_step)
            for name, value in {"loss": loss, **terms}.items():
                totals[name] = totals.get(name, 0.0) + value.detach() * len(x)
        if (bad := int(first_bad_step)) >= 0:
            raise TrainingDiverged(
                f"{desc}: loss became NaN or infinite at epoch {epoch}, step {bad}; no weights were written. "
                "Lower train.lr or the penalty strength."
            )
        row = {"epoch": epoch, "step": step}
        row.update({name: total.item() / n for name, total in totals.items()})
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        if checkpoint is not None:
            checkpoint.save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "order": order.get_state(),
                "history": history, "step": step, "seconds": row["seconds"],
            })
        if on_epoch is not None:
            on_epoch(row)
    wall = time.perf_counter() - started
    return TrainResult(history=history, wall_time_s=wall, samples_per_s=n * params.epochs / wall)


class Checkpoint:
    """The training state after the last finished epoch, so an interrupted run resumes where it stopped.

    `key` names everything the run depends on (variant, seed, params, data digest); a checkpoint
    written under another key is ignored, so a changed configuration never resumes a stale run.
    Resuming on CPU gives the same final weights as an uninterrupted run.
    """

    def __init__(self, path: Path, key: str):
        self.path, self.key = Path(path), key

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a file cut short by a crash: start over
            print(f"WARNING: ignoring unreadable checkpoint {self.path}: {e}", flush=True)
            return None
        return state if state.get("key") == self.key else None

    def save(self, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({**state, "key": self.key}, tmp)
        os.replace(tmp, self.path)  # atomic: a kill mid-save leaves the previous checkpoint

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
