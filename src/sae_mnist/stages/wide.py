"""`wide@<seed>`: a wide linear code beside the published probe accuracy of a 2000-unit sparse code.

Makhzani & Frey's 98.8% (a linear classifier on a 2000-unit winner-take-all autoencoder at 5%
lifetime sparsity) says nothing about 256-unit codes. This stage trains the configuration it is
about: a linear SAE of `wide.hidden` units, as one stack per seed of KL (target rho), TopK (k per
image) and L1, on the same recipe and budget as the frontier, and probes each. Writes `<out_file>`:
test metrics and probe of each model.
"""

from __future__ import annotations

from pathlib import Path

from ..params import LinearParams, load_params


def run(seed: int, data_dir: Path, model_dir: Path, log_dir: Path, out_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    from ..members import check_seed

    check_seed(params, seed, params_file)
    import torch

    from ..data import load_split, read_manifest
    from ..io import read_json, write_json
    from ..probes import probe
    from ..training import to_float_images
    from ..heldout import encode_all, held_out_metrics, load_model, log_held_out_metrics
    from ..members import Member, train_members

    w = params.wide
    members = [Member("linear", name, getattr(w, name), True, params.recipe, suffix=f"wide{w.hidden}")
               for name in ("l1", "kl", "topk")]
    model_params = params.model.model_copy(update={"linear": LinearParams(hidden=w.hidden)})
    train_members(params, "linear", seed, members, data_dir, model_dir, log_dir, stage=f"wide@{seed}",
                  stack_name=f"linear{w.hidden}-seed{seed}", model_params=model_params)
    test, train = load_split(data_dir, "test"), load_split(data_dir, "train")
    x = to_float_images(torch.from_numpy(test.images.copy()), torch.device("cpu"))
    x_train = to_float_images(torch.from_numpy(train.images.copy()), torch.device("cpu"))
    rows = []
    for m in members:
        info = read_json(model_dir / f"{m.name}.json")
        model, penalty = load_model(info, model_dir / f"{m.name}.pt")
        metrics, _, z = held_out_metrics(model, penalty, x, params)
        train_codes = encode_all(model, x_train, params.evaluate.batch_size)[1].numpy()
        metrics |= probe(train_codes, train.labels, z.numpy(), test.labels, params.probe)
        log_held_out_metrics(info["mlflow_run_id"], {k: v for k, v in metrics.items() if not isinstance(v, dict)})
        rows.append({"variant": m.variant, "hidden": w.hidden, "setting": m.settings.model_dump(),
                     "convergence": info["convergence"], "metrics": metrics})
    manifest = read_manifest(data_dir)
    write_json(out_file, {"seed": seed, "hidden": w.hidden, "dataset": manifest["dataset"],
                          "data_digest": manifest["digest"], "git_commit": info["git_commit"], "models": rows})
