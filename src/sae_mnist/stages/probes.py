"""`probes@<arch>`: a linear probe on every point of the compared frontiers (L1, KL) that the evaluate stages do not
probe, every seed: the report's probe accuracy along the frontiers at matched L0, a study beside the verdict.

The evaluate stage probes each variant's default setting (every seed) and chooses the probe's C on the validation
split once per variant (its frontier file's `probe_C`); this stage fits the same probe (probes.probe_accuracy: on
the fit split's codes, at that C) on each other setting's codes and scores it on the test split, as evaluate would.
Writes `<out_file>`: per variant, each point's name, seed and probe metrics; logs them to each model's MLflow run
(test_probe_*).
"""

from __future__ import annotations

from pathlib import Path

from ..params import COMPARED, load_params


def run(arch: str, data_dir: Path, model_dir: Path, frontier_dir: Path, out_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import torch
    from tqdm import tqdm

    from .. import tracking
    from ..data import load_split
    from ..heldout import encode_all, load_model, log_held_out_metrics
    from ..io import read_json, write_json
    from ..members import variant_name
    from ..probes import probe_accuracy
    from ..provenance import git_commit
    from ..training import to_float_images
    from .evaluate import frontier_points

    test = load_split(data_dir, "test")
    fit = load_split(data_dir, "fit", params.split.validation)
    torch.set_num_threads(params.train.threads)
    x_test, x_fit = (to_float_images(torch.from_numpy(s.images.copy()), torch.device("cpu")) for s in (test, fit))
    tracking.init_store(params.tracking.experiment)
    variants = {}
    for penalty in COMPARED:
        variant = variant_name(arch, penalty)
        C = read_json(frontier_dir / f"{variant}.json")["probe_C"]
        rows = []
        points = [(info, weights) for info, weights in frontier_points(model_dir, variant, params.seeds)
                  if not info["default_setting"]]  # the defaults: probed by the evaluate stage
        for info, weights in tqdm(points, desc=f"probes {variant}", unit="model"):
            model, _ = load_model(info, weights)
            codes = [encode_all(model, x, params.evaluate.batch_size)[1].flatten(1).numpy()
                     for x in (x_fit[: params.probe.max_samples], x_test)]
            metrics = probe_accuracy(codes[0], fit.labels, codes[1], test.labels, C, params.probe.max_iter,
                                     params.probe.max_samples)
            log_held_out_metrics(info["mlflow_run_id"], metrics)
            rows.append({"name": info["name"], "seed": info["seed"], "setting": info["penalty_params"],
                         "metrics": metrics})
        variants[variant] = {"probe_C": C, "points": rows}
    write_json(out_file, {"arch": arch, "seeds": params.seeds, "split": {"fit": "fit", "scored": "test"},
                          "variants": variants, "git_commit": git_commit()})
