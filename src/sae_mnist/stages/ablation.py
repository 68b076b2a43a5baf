"""`ablation@<arch>`: why each part of the training recipe is there, measured.

On one seed (`ablation.seed`), every variant's default setting is trained as one stack with the full
recipe, without each part in turn, and with none (the recipe before it: raw inputs, independent
initialisation, the full decoder gradient, constant learning rate, full penalty from the first step), each
penalty at its chosen rate (`rates_file`), on the fit split. The recipe is a choice, so the ablation reads the
validation split, never the test split (docs/design/verdict-protocol.md). Writes `<out_file>`: each model's
validation FVU, L0 and dead fraction (and the rest of the held-out metrics) and whether it converged; the report
turns it into the ablation table.
"""

from __future__ import annotations

from pathlib import Path

from ..params import PENALTIES, RECIPE_PARTS, Params, load_params


def ablation_members(params: Params, arch: str) -> list:
    """Per variant (default setting): the recipe, without each part it has in turn (a part already off, e.g.
    grad_clip null, would repeat the full recipe), and without all of them."""
    from ..members import Member

    full = params.recipe
    bare = full
    for part in RECIPE_PARTS:
        bare = bare.without(part)
    recipes = {"full": full, **{f"without-{p}": full.without(p) for p in RECIPE_PARTS if full.without(p) != full},
               "without-all": bare}
    # Grouped by recipe: the models of one recipe share an optimiser group (training.train_stack).
    return [Member(arch, penalty, params.penalty.of(penalty, arch), True, recipe, suffix=name)
            for name, recipe in recipes.items() for penalty in PENALTIES]


def run(arch: str, data_dir: Path, rates_file: Path, model_dir: Path, log_dir: Path, out_file: Path,
        params_file: Path) -> None:
    params = load_params(params_file)
    import torch

    from ..data import load_split, read_manifest
    from ..io import read_json, write_json
    from ..training import to_float_images
    from ..heldout import held_out_metrics, load_model, log_held_out_metrics
    from ..members import at_rates, train_members
    from ..rates import read_rates

    seed = params.ablation.seed
    members = at_rates(ablation_members(params, arch), read_rates(rates_file, arch), params.train.lr)
    train_members(params, arch, seed, members, data_dir, model_dir, log_dir, stage=f"ablation@{arch}",
                  stack_name=f"{arch}-ablation-seed{seed}", split="fit")
    validation = load_split(data_dir, "validation", params.split.validation)
    x = to_float_images(torch.from_numpy(validation.images.copy()), torch.device("cpu"))
    rows = []
    for m in members:
        info = read_json(model_dir / f"{m.name}.json")
        model, penalty = load_model(info, model_dir / f"{m.name}.pt")
        metrics, _, _ = held_out_metrics(model, penalty, x, params)
        log_held_out_metrics(info["mlflow_run_id"], metrics, split="validation")
        rows.append({"variant": m.variant, "recipe": m.suffix, "recipe_params": m.recipe.model_dump(), "lr": m.lr,
                     "convergence": info["convergence"], "metrics": metrics})
    manifest = read_manifest(data_dir)
    write_json(out_file, {"arch": arch, "seed": seed, "split": "validation", "dataset": manifest["dataset"],
                          "data_digest": manifest["digest"], "git_commit": info["git_commit"], "models": rows})
