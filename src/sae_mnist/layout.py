"""Where the train stages put an architecture's models and per-epoch losses: under models/ and logs/train/, one
directory per stack family. The compared penalties and the unpenalised model train in the train stages' stacks
(<arch>/); a reference penalty in REFERENCE_STAGES trains in stages of its own (train_topk, evaluate_topk), outside
the verdict's core (<arch>-<penalty>/)."""

from __future__ import annotations

REFERENCE_STAGES = ("topk",)


def stack_dir(arch: str, penalty: str) -> str:
    """The directory name, under models/ and logs/train/, of the stacks that train `penalty` on `arch`."""
    return f"{arch}-{penalty}" if penalty in REFERENCE_STAGES else arch


def train_names(arch: str, seed: int, penalties: list[str]) -> tuple[str, str]:
    """The DVC stage and the MLflow stack run that train `penalties` on `arch` at `seed`, as dvc.yaml names them:
    train@<arch>-<seed> and <arch>-seed<seed> for the compared penalties, train_<p>@<arch>-<seed> and
    <arch>-<p>-seed<seed> for a reference penalty p, which trains alone."""
    references = sorted(set(penalties) & set(REFERENCE_STAGES))
    if not references:
        return f"train@{arch}-{seed}", f"{arch}-seed{seed}"
    if len(set(penalties)) > 1:
        raise ValueError(f"a reference penalty trains alone, in stages of its own; got {sorted(set(penalties))}")
    return f"train_{references[0]}@{arch}-{seed}", f"{stack_dir(arch, references[0])}-seed{seed}"
