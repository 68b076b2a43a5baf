"""`train@<arch>-<seed>` and `train_topk@<arch>-<seed>`: frontier points of one architecture on one seed, trained
as one stack.

The stack holds every setting of the penalties named (`penalty:` defaults and `sweep:`): none, l1 and kl for the
train stage, topk for train_topk (a reference, outside the verdict's core), each on the training recipe (`recipe:`)
and at its penalty's learning rate as lr_select chose it on the validation split (`rates_file`; none at train.lr).
It trains on the fit split: the validation split is held out from every model (docs/design/verdict-protocol.md).
sae_mnist.members.train_members trains it (training.train_stack) and writes each model's weights, description and
losses under `<model_dir>` and `<log_dir>`.
"""

from __future__ import annotations

from pathlib import Path

from ..layout import train_names
from ..params import load_params


def run(arch: str, seed: int, penalties: list[str], data_dir: Path, rates_file: Path, model_dir: Path,
        log_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)  # before any import, read or run: bad params fail fast
    from ..members import at_rates, check_seed, frontier_members, train_members
    from ..rates import read_rates

    check_seed(params, seed, params_file)
    members = at_rates([m for m in frontier_members(params, arch) if m.penalty in penalties],
                       read_rates(rates_file, arch), params.train.lr)
    stage, stack_name = train_names(arch, seed, penalties)
    train_members(params, arch, seed, members, data_dir, model_dir, log_dir, stage=stage, stack_name=stack_name,
                  split="fit")
