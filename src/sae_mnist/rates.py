"""Each penalty's learning rate as the lr_select stage chose it (lr_select/<arch>.json), for the stages that train
at it and the report that names it. A leaf module: reading the rates depends on no training or selection code."""

from __future__ import annotations

import json
from pathlib import Path


def read_rates(path, arch: str) -> dict[str, float]:
    """Each selected penalty's chosen learning rate from an lr_select file ({"l1": 0.009, ...}), checked to be the
    architecture's."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro lr_select@{arch}`, which chooses the rates")
    chosen = json.loads(path.read_text())
    if chosen.get("arch") != arch:
        raise ValueError(f"{path} holds the rates of {chosen.get('arch')!r}, not {arch!r}")
    return {penalty: choice["lr"] for penalty, choice in chosen["chosen"].items()}
