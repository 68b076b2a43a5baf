"""`wide@<seed>`: a wide linear code beside the published probe accuracy of a 2000-unit sparse code.

Makhzani & Frey's 98.8% (a linear classifier on a 2000-unit winner-take-all autoencoder at 5%
lifetime sparsity) says nothing about 256-unit codes. This stage trains the configuration it is
about: a linear SAE of `wide.hidden` units, as one stack per seed of KL (target rho), TopK (k per
image) and L1, on the same recipe, budget, fit split and per-penalty learning rates (lr_select's for linear,
`rates_file`) as the frontier, and probes each (fitted on the fit split, C chosen on the validation split).
Writes `<out_file>`: test metrics and probe of each model.
"""

from __future__ import annotations

from pathlib import Path

from ..params import LinearParams, load_params


def run(seed: int, data_dir: Path, rates_file: Path, model_dir: Path, log_dir: Path, out_file: Path,
        params_file: Path) -> None:
    params = load_params(params_file)
    from ..members import check_seed
    from ..rates import read_rates

    check_seed(params, seed, params_file)
    import torch

    from ..data import load_split, read_manifest
    from ..io import read_json, write_json
    from ..probes import probe
    from ..training import to_float_images
    from ..heldout import encode_all, held_out_metrics, load_model, log_held_out_metrics
    from ..members import Member, at_rates, train_members

    w = params.wide
    members = at_rates([Member("linear", name, getattr(w, name), True, params.recipe, suffix=f"wide{w.hidden}")
                        for name in ("l1", "kl", "topk")], read_rates(rates_file, "linear"), params.train.lr)
    model_params = params.model.model_copy(update={"linear": LinearParams(hidden=w.hidden)})
    train_members(params, "linear", seed, members, data_dir, model_dir, log_dir, stage=f"wide@{seed}",
                  stack_name=f"linear{w.hidden}-seed{seed}", model_params=model_params, split="fit")
    test = load_split(data_dir, "test")
    fit, validation = (load_split(data_dir, s, params.split.validation) for s in ("fit", "validation"))
    x, x_fit, x_val = (to_float_images(torch.from_numpy(s.images.copy()), torch.device("cpu"))
                       for s in (test, fit, validation))
    rows = []
    for m in members:
        info = read_json(model_dir / f"{m.name}.json")
        model, penalty = load_model(info, model_dir / f"{m.name}.pt")
        metrics, _, z = held_out_metrics(model, penalty, x, params)
        fit_codes, val_codes = (encode_all(model, images, params.evaluate.batch_size)[1].numpy()
                                for images in (x_fit, x_val))
        metrics |= probe(fit_codes, fit.labels, val_codes, validation.labels, z.numpy(), test.labels, params.probe)
        log_held_out_metrics(info["mlflow_run_id"], {k: v for k, v in metrics.items() if not isinstance(v, dict)})
        rows.append({"variant": m.variant, "hidden": w.hidden, "setting": m.settings.model_dump(), "lr": m.lr,
                     "convergence": info["convergence"], "metrics": metrics})
    manifest = read_manifest(data_dir)
    write_json(out_file, {"seed": seed, "hidden": w.hidden, "dataset": manifest["dataset"],
                          "data_digest": manifest["digest"], "git_commit": info["git_commit"], "models": rows})
