"""A training run's state after each epoch, on disk, so that an interrupted stage resumes where it stopped."""

from __future__ import annotations

import os
from pathlib import Path

import torch


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
