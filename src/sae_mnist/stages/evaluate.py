"""`evaluate@<arch>-<penalty>`: held-out metrics for every frontier point of one variant, every seed, and a linear
probe for its default setting (the other points' probes: stages/probes.py).

Reads the variant's models from the train stages' outputs (`<model_dir>/seed-<s>/`). Writes
`<frontier_file>`: every point's test metrics (at every threshold; the reported numbers), its validation metrics
(what decisions read: sweep placement, the seeds a sparse-end stretch needs), probe and convergence;
`<eval_dir>/seed-<s>.json` (metrics and provenance of the default setting) and `<eval_dir>/seed-<s>.npz`
(what the report plots: reconstructions, decoder features, firing frequencies, an activation
sample); `<metrics_file>`: the default setting's metrics, mean over seeds; `<plot_file>`: every
point's L0 and FVU, the data of the DVC frontier plot.
The test metrics are also logged to each model's MLflow run. Timing metrics are in the
per-seed files and MLflow only, so that the metrics file is identical between reruns.
"""

from __future__ import annotations

from pathlib import Path

from ..params import load_params

N_RECONSTRUCTIONS = 10  # the first test images, shown originals over reconstructions
ACTIVATION_SAMPLE = 50_000  # code entries kept for the activation histogram
# What a frontier point keeps of its training description (the rest, e.g. the environment, is in eval/ and models/).
TRAINING_KEPT = ("mlflow_run_id", "stack", "epochs", "lr", "convergence", "train_wall_time_s", "stack_size",
                 "git_commit")
# The probe's C is chosen (params.probe.C, fitted on the fit split, scored on the validation split) on the variant's
# first point, its default setting on the first seed, and kept for every other point: one choice per variant.


def frontier_points(model_dir: Path, variant: str, seeds: list[int]) -> list[tuple[dict, Path]]:
    """Every trained point of `variant` (default first, then by name), per seed: (description, weights)."""
    from ..io import read_json

    points = []
    for seed in seeds:
        infos = [read_json(f) for f in sorted((model_dir / f"seed-{seed}").glob("*.json"))]
        mine = [i for i in infos if i["variant"] == variant and not i.get("ablation")]
        mine.sort(key=lambda i: (not i["default_setting"], i["name"]))
        points += [(i, model_dir / f"seed-{seed}" / f"{i['name']}.pt") for i in mine]
    return points


def run(arch: str, penalty_name: str, data_dir: Path, model_dir: Path, eval_dir: Path, metrics_file: Path,
        frontier_file: Path, plot_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import numpy as np
    import torch
    from tqdm import tqdm

    from .. import tracking
    from ..data import load_split, read_manifest, split_digest
    from ..heldout import encode_all, held_out_metrics, load_model, log_held_out_metrics
    from ..io import staged_dir, write_json
    from ..members import variant_name
    from ..probes import choose_C_on_validation, probe_accuracy
    from ..training import to_float_images

    variant = variant_name(arch, penalty_name)
    manifest = read_manifest(data_dir)
    test = load_split(data_dir, "test")
    fit, validation = (load_split(data_dir, s, params.split.validation) for s in ("fit", "validation"))
    torch.set_num_threads(params.train.threads)
    x, x_fit, x_val = (to_float_images(torch.from_numpy(s.images.copy()), torch.device("cpu"))
                       for s in (test, fit, validation))
    threshold = params.evaluate.active_threshold
    tracking.init_store(params.tracking.experiment)
    points = frontier_points(model_dir, variant, params.seeds)
    C, C_scores = None, {}
    results, per_seed = [], []

    with staged_dir(eval_dir) as out:
        for info, weights in tqdm(points, desc=f"evaluate {variant}", unit="model"):
            model, penalty = load_model(info, weights)
            metrics, x_hat, z = held_out_metrics(model, penalty, x, params)
            on_validation, _, z_val = held_out_metrics(model, penalty, x_val, params)
            # Probe on the codes of the fit split (the model's own training images; all but in smoke runs), scored
            # on the test set; C is chosen on the validation split once per variant, on the first point (the
            # default on the first seed), and kept. The defaults only: the other points of the compared frontiers
            # are probed at that C by the probes@<arch> study (the report's probe accuracy along the frontiers).
            if info["default_setting"]:
                fit_codes = encode_all(model, x_fit[: params.probe.max_samples],
                                       params.evaluate.batch_size)[1].flatten(1).numpy()
                if C is None:
                    C, C_scores = choose_C_on_validation(fit_codes, fit.labels, z_val.flatten(1).numpy(),
                                                         validation.labels, params.probe)
                metrics |= probe_accuracy(fit_codes, fit.labels, z.flatten(1).numpy(), test.labels, C,
                                          params.probe.max_iter, params.probe.max_samples)
            metrics["train_relative_change_last_tenth"] = info["convergence"]["relative_change_last_tenth"]
            if log_held_out_metrics(info["mlflow_run_id"], metrics):
                log_held_out_metrics(info["mlflow_run_id"], on_validation, split="validation")
            results.append({"setting": info["penalty_params"], "seed": info["seed"], "default": info["default_setting"],
                            "name": info["name"], "metrics": metrics, "validation": on_validation,
                            "training": {k: info[k] for k in TRAINING_KEPT if k in info}})
            if not info["default_setting"]:
                continue
            seed = info["seed"]
            # Wall times stay in "training", out of the test metrics and so out of the DVC metrics file: they differ
            # on every run, and `dvc metrics diff` between two runs of the same code, params and data must be empty.
            metrics["n_params"] = info["n_params"]
            per_seed.append(metrics)
            arrays = default_arrays(model, penalty, x, x_hat, z, threshold, seed)
            np.savez_compressed(out / f"seed-{seed}.npz", **arrays)
            write_json(out / f"seed-{seed}.json", {
                "variant": variant, "seed": seed, "activation": penalty.activation, "dataset": manifest["dataset"],
                "data_digest": manifest["digest"], "n_test_samples": len(x), "active_threshold": threshold,
                "metrics": metrics, "training": info,
            })
            if seed == params.seeds[0]:  # figures for the first seed only: each costs seconds to draw
                log_figures(info["mlflow_run_id"], variant, arrays, threshold)

    splits = {name: {"images": len(s.images), "sha256": split_digest(s)} for name, s in
              (("fit", fit), ("validation", validation))}
    write_json(frontier_file, {"variant": variant, "seeds": params.seeds, "dataset": manifest["dataset"],
                               "data_digest": manifest["digest"], "splits": splits, "probe_C": C,
                               "probe_C_validation": C_scores, "points": results})
    write_plot_and_metrics(variant, results, per_seed, manifest["dataset"], plot_file, metrics_file)


def default_arrays(model, penalty, x, x_hat, z, threshold: float, seed: int) -> dict:
    """What the report draws of a default setting on one seed: reconstructions, decoder features, firing
    frequencies, ρ̂ (KL: of sigmoid(u), else of the code) and a seeded sample of code activations."""
    import torch

    from ..metrics import firing_frequency, unit_mean_activation

    flat = z.flatten()
    sample = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))[:ACTIVATION_SAMPLE]]
    firing = penalty.firing_probability(z) if penalty.name == "kl" else z
    return {
        "originals": x[:N_RECONSTRUCTIONS, 0].numpy(),
        "reconstructions": x_hat[:N_RECONSTRUCTIONS, 0].numpy(),
        "features": model.decoder_features().numpy(),
        "firing_frequency": firing_frequency(z, threshold).numpy(),
        "rho_hat": unit_mean_activation(firing).numpy(),
        "activation_sample": sample.numpy(),
    }


def log_figures(run_id: str, variant: str, arrays: dict, threshold: float) -> None:
    """The default's reconstructions, features and activations as figures of its MLflow run."""
    from .. import plots

    plots.log_figure(run_id, plots.reconstruction_grid({variant: arrays}), "reconstructions.png")
    plots.log_figure(run_id, plots.feature_grid(arrays["features"], arrays["firing_frequency"], variant),
                     "features.png")
    plots.log_figure(run_id, plots.activation_histograms({variant: arrays["activation_sample"]}, threshold),
                     "activations.png")


def write_plot_and_metrics(variant: str, results: list[dict], per_seed: list[dict], dataset: str, plot_file: Path,
                           metrics_file: Path) -> None:
    """The DVC frontier plot's data (every point's L0 and FVU) and the default setting's metrics, mean over seeds."""
    import numpy as np
    import pandas as pd

    from ..io import write_json
    from ..members import setting_label

    plot_file.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"variant": variant, "seed": r["seed"], "setting": setting_label(r["setting"]) or "none",
                   "default": r["default"], "l0": r["metrics"]["l0"], "fvu": r["metrics"]["fvu"]}
                  for r in results]).to_csv(plot_file, index=False)
    summary = {
        "dataset": dataset,
        "n_seeds": len(per_seed),
        **{k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]},
    }
    write_json(metrics_file, summary)
    print(f"{variant}: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float)), flush=True)
