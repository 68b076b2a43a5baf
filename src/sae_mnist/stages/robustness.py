"""`robustness@<arch>-<study>`: does the primary estimand's sign hold under other training?

On one seed (`robustness.seed`), every L1 and KL frontier setting of the architecture (both penalties, every
setting, the defaults included) is trained as one stack per factor of the study, everything else as the train
stage has it (recipe, fit split, batch size, each penalty at its chosen rate from `rates_file`): study `budget`
multiplies the architecture's train.epochs by each of `robustness.budget_factors` (rounded, at least 1; the
warm-ups and the cosine decay stretch with it), study `lr` multiplies each penalty's own rate by each of
`robustness.lr_factors`. Each model is evaluated as the evaluate stage evaluates it, on the validation split: the
study checks choices (budget, rates), so it never reads the test split (docs/design/verdict-protocol.md). Writes
`<out_file>`: per factor, the epochs and rates used and every model as a frontier file's point, from which the
report computes the single-seed estimand (estimand.points_estimand), beside the main frontier's validation
metrics of that seed. Models and per-epoch losses go under `<model_dir>/<study>-x<factor>/` and
`<log_dir>/<study>-x<factor>/`; MLflow: a parent run per factor's stack, a child run per model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..params import load_params


def variation_name(study: str, factor: float) -> str:
    """'budget-x0.5', 'lr-x3': names a variation's stack, directories and models."""
    return f"{study}-x{factor:g}"


def run(arch: str, study: str, data_dir: Path, rates_file: Path, model_dir: Path, log_dir: Path, out_file: Path,
        params_file: Path) -> None:
    params = load_params(params_file)
    import torch

    from ..data import load_split, read_manifest
    from ..io import write_json
    from ..provenance import git_commit
    from ..training import to_float_images
    from ..heldout import evaluated_points, log_held_out_metrics
    from ..members import at_rates, compared_members, train_members
    from ..rates import read_rates

    r, base = params.robustness, params.train.of(arch)
    rates = read_rates(rates_file, arch)
    validation = load_split(data_dir, "validation", params.split.validation)
    x = to_float_images(torch.from_numpy(validation.images.copy()), torch.device("cpu"))
    variations = []
    for factor in r.factors(study):
        name = variation_name(study, factor)
        training = r.training(base, "budget", factor) if study == "budget" else base
        scale = factor if study == "lr" else 1.0  # the lr study: each penalty's own rate times the factor
        members = [replace(m, suffix=name, lr=m.lr * scale)
                   for m in at_rates(compared_members(params, arch), rates, base.lr)]
        trained = train_members(params, arch, r.seed, members, data_dir, model_dir / name, log_dir / name,
                                stage=f"robustness@{arch}-{study}", stack_name=f"{arch}-robustness-{name}-seed{r.seed}",
                                training=training, split="fit")
        points = evaluated_points(members, trained.penalties, trained.models, trained.stack,
                                  trained.result.convergence, r.seed, training, x, params)
        for point, run_id in zip(points, trained.run_ids):
            log_held_out_metrics(run_id, point["metrics"], split="validation")
            point["training"]["mlflow_run_id"] = run_id
        variations.append({"factor": factor, "epochs": training.epochs, "rates": {m.penalty: m.lr for m in members},
                           "points": points, "wall_time_s": trained.result.wall_time_s})
    manifest = read_manifest(data_dir)
    write_json(out_file, {"arch": arch, "study": study, "seed": r.seed, "split": "validation",
                          "base": {"epochs": base.epochs, "rates": rates},
                          "variations": variations, "dataset": manifest["dataset"], "data_digest": manifest["digest"],
                          "git_commit": git_commit()})
