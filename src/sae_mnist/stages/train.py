"""`train@<arch>-<seed>`: every frontier point of one architecture on one seed, trained as one stack.

The stack holds every setting of every penalty (`penalty:` defaults and `sweep:`; none, l1, kl, topk), each on
the training recipe (`recipe:`); sae_mnist.members.train_members trains it (training.train_stack) and writes each
model's weights, description and losses under `<model_dir>` and `<log_dir>`.
"""

from __future__ import annotations

from pathlib import Path

from ..params import load_params


def run(arch: str, seed: int, data_dir: Path, model_dir: Path, log_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)  # before any import, read or run: bad params fail fast
    from ..members import check_seed, frontier_members, train_members

    check_seed(params, seed, params_file)
    train_members(params, arch, seed, frontier_members(params, arch), data_dir, model_dir, log_dir,
                  stage=f"train@{arch}-{seed}", stack_name=f"{arch}-seed{seed}")
