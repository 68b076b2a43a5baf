"""Where the train stages put an architecture's models and per-epoch losses: under models/ and logs/train/, one
directory per stack family. The compared penalties and the unpenalised model train in the train stages' stacks
(<arch>/); a reference penalty in REFERENCE_STAGES trains in stages of its own (train_topk, evaluate_topk), outside
the verdict's core (<arch>-<penalty>/)."""

from __future__ import annotations

REFERENCE_STAGES = ("topk",)


def stack_dir(arch: str, penalty: str) -> str:
    """The directory name, under models/ and logs/train/, of the stacks that train `penalty` on `arch`."""
    return f"{arch}-{penalty}" if penalty in REFERENCE_STAGES else arch
