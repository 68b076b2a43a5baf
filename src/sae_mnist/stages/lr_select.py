"""`lr_select@<arch>`: each penalty's learning rate, chosen on the validation split (sae_mnist.selection).

On one seed (`lr_select.seed`), every L1, KL and TopK frontier setting of the architecture is trained as one stack
per factor of `lr_select.factors` (train.lr times it), on the `fit` split, everything else as the train stage has
it; each model is evaluated on the `validation` split as the evaluate stage evaluates it (held_out_metrics). Each
penalty's score per factor is selection.choose's; where a best lies at an edge, one more factor beyond it is trained
(selection.next_factor, at most `lr_select.max_rates`). This stage never reads the test split.

Writes `<out_file>`: per penalty the grid, the score per factor, the chosen factor and rate; every model's
validation metrics per factor; the splits' sizes and SHA-256. Models and per-epoch losses go under
`<model_dir>/lr-x<factor>/` and `<log_dir>/lr-x<factor>/`; MLflow: a parent run per factor's stack, a child run per
model with its validation_* metrics.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..params import SELECTED, load_params


def run(arch: str, data_dir: Path, model_dir: Path, log_dir: Path, out_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import torch

    from ..data import load_split, read_manifest, split_digest
    from ..heldout import evaluated_points, log_held_out_metrics
    from ..io import write_json
    from ..members import frontier_members, train_members
    from ..provenance import git_commit
    from ..selection import choose, next_factor
    from ..training import to_float_images
    from .robustness import variation_name

    s, base = params.lr_select, params.train.of(arch)
    validation = load_split(data_dir, "validation", params.split.validation)
    x = to_float_images(torch.from_numpy(validation.images.copy()), torch.device("cpu"))
    members = [m for m in frontier_members(params, arch) if m.penalty in SELECTED]
    factors, variations = list(s.factors.of(arch)), {}
    while True:
        for factor in factors:
            if factor in variations:
                continue
            name = variation_name("lr", factor)
            training = base.model_copy(update={"lr": base.lr * factor})
            stack = [replace(m, suffix=name) for m in members]
            trained = train_members(params, arch, s.seed, stack, data_dir, model_dir / name, log_dir / name,
                                    stage=f"lr_select@{arch}", stack_name=f"{arch}-lr_select-{name}-seed{s.seed}",
                                    training=training, split="fit")
            points = evaluated_points(stack, trained.penalties, trained.models, trained.stack,
                                      trained.result.convergence, s.seed, training, x, params)
            for point, run_id in zip(points, trained.run_ids):
                log_held_out_metrics(run_id, point["metrics"], split="validation")
                point["training"]["mlflow_run_id"] = run_id
            variations[factor] = {"factor": factor, "lr": training.lr, "points": points,
                                  "wall_time_s": trained.result.wall_time_s}
        choices = [choose(p, {f: [q for q in v["points"] if q["penalty"] == p] for f, v in variations.items()},
                          params.evaluate.active_threshold, params.sweep.l0_range.of(arch)) for p in SELECTED]
        factor = next_factor(choices, s.step, s.max_rates)
        if factor is None:
            break
        factors.append(factor)
    for c in choices:
        if c.grid_range != "declared":
            print(f"WARNING: lr_select@{arch} {c.penalty}: its frontiers at every rate share "
                  + ("no L0 range, so it keeps train.lr" if c.grid_range == "none" else
                     f"no L0 inside sweep.l0_range {list(params.sweep.l0_range.of(arch))}; scored where they do"),
                  flush=True)
        print(f"lr_select@{arch} {c.penalty}: lr {base.lr * c.best:.4g} (x{c.best:g}); mean log10 validation FVU "
              + ", ".join(f"x{f:g} {v:.4f}" for f, v in sorted(c.scores.items())), flush=True)
    manifest, fit = read_manifest(data_dir), load_split(data_dir, "fit", params.split.validation)
    write_json(out_file, {
        "arch": arch, "seed": s.seed, "base_lr": base.lr, "epochs": base.epochs,
        "threshold": params.evaluate.active_threshold, "l0_range": list(params.sweep.l0_range.of(arch)),
        "chosen": {c.penalty: c.as_json(base.lr) for c in choices},
        "variations": [variations[f] for f in sorted(variations)],
        "splits": {"fit": {"images": len(fit.labels), "sha256": split_digest(fit)},
                   "validation": {"images": len(validation.labels), "sha256": split_digest(validation)}},
        "dataset": manifest["dataset"], "data_digest": manifest["digest"], "git_commit": git_commit()})
