"""`evaluate@<arch>-<penalty>`: held-out metrics and a linear probe for every frontier point of one variant, every seed.

Reads the variant's models from the train stages' outputs (`<model_dir>/seed-<s>/`). Writes
`<frontier_file>`: every point's test metrics (at every threshold), probe and convergence;
`<eval_dir>/seed-<s>.json` (metrics and provenance of the default setting) and `<eval_dir>/seed-<s>.npz`
(what the report plots: reconstructions, decoder features, firing frequencies, an activation
sample); `<metrics_file>`: the default setting's metrics, mean over seeds; `<plot_file>`: every
point's L0 and FVU, the data of the DVC frontier plot.
The test metrics are also logged to each model's MLflow run. Timing metrics are in the
per-seed files and MLflow only, so that the metrics file is identical between reruns.
"""

from __future__ import annotations

from pathlib import Path

from ..params import COMPARED, load_params

N_RECONSTRUCTIONS = 10  # the first test images, shown originals over reconstructions
ACTIVATION_SAMPLE = 50_000  # code entries kept for the activation histogram
# What a frontier point keeps of its training description (the rest, e.g. the environment, is in eval/ and models/).
TRAINING_KEPT = ("mlflow_run_id", "stack", "epochs", "convergence", "train_wall_time_s", "stack_size", "git_commit")
# The probe's C is chosen (held-out training images, params.probe.C) on the variant's first point, its default
# setting on the first seed, and kept for every other point: one choice per variant, not one per model.


def encode_all(model, x, batch_size: int):
    """(x_hat, z) for every image, in batches, without gradients."""
    import torch

    model.eval()
    with torch.no_grad():
        outputs = [model(batch) for batch in x.split(batch_size)]
    return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])


def log_test_metrics(run_id: str, metrics: dict) -> bool:
    """Log `metrics` as test_* to a model's MLflow run; False (with a warning) when the store does not have it."""
    import mlflow

    from .. import tracking

    try:
        mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        print(f"WARNING: MLflow run {run_id} is not in {tracking.tracking_uri()}; test metrics are written to files only",
              flush=True)
        return False
    tracking.log_metrics(run_id, {f"test_{k}": v for k, v in metrics.items()})
    return True


def held_out_metrics(model, penalty, x, params) -> tuple[dict, object, object]:
    """Reconstruction and sparsity metrics of `model` on images `x`; also returns x_hat (truncated code) and z.

    fvu, mse and psnr_db are of the truncated code at evaluate.active_threshold, the code L0 counts;
    fvu_at_<t> and l0_at_<t> for every threshold t in evaluate.thresholds; fvu_untruncated of the code
    as the model computes it. KL models also get their firing probabilities' distance to rho
    (rho_hat on sigmoid(u) = z / scale) and the fraction of entries with sigmoid(u) > 0.99 (saturated).
    """
    import torch

    from ..metrics import l0, reconstruction_metrics, sparsity_metrics, truncate, unit_mean_activation

    e = params.evaluate
    x_full, z = encode_all(model, x, e.batch_size)
    metrics = {}
    with torch.no_grad():
        for t in e.thresholds:
            x_hat = torch.cat([model.decode(truncate(c, t)) for c in z.split(e.batch_size)])
            metrics |= {f"fvu_at_{t:g}": reconstruction_metrics(x, x_hat)["fvu"], f"l0_at_{t:g}": l0(z, t)}
            if t == e.active_threshold:
                metrics |= reconstruction_metrics(x, x_hat)
                kept = x_hat
    metrics |= {"fvu_untruncated": reconstruction_metrics(x, x_full)["fvu"],
                **sparsity_metrics(z, e.active_threshold, e.always_on_above)}
    if penalty.name == "kl":
        firing = penalty.firing_probability(z)
        rho_hat = unit_mean_activation(firing)
        metrics |= {"rho_target": penalty.rho, "rho_hat_abs_error": (rho_hat - penalty.rho).abs().mean().item(),
                    "rho_hat_relative_error": (rho_hat - penalty.rho).abs().mean().item() / penalty.rho,
                    "saturated_fraction": (firing > 0.99).double().mean().item()}
    return metrics, kept, z


def load_model(info: dict, weights: Path):
    """A trained model, rebuilt from the description the train stage wrote beside its weights, and its penalty."""
    import torch

    from ..models import build_model
    from ..params import KLParams, L1Params, ModelParams, NoPenaltyParams, TopKParams
    from ..penalties import make_penalty

    sections = {"none": NoPenaltyParams, "l1": L1Params, "kl": KLParams, "topk": TopKParams}
    penalty = make_penalty(info["penalty"], sections[info["penalty"]](**info["penalty_params"]))
    sizes = {"linear": {"hidden": 1}, "conv": {"channels": 1}} | {info["arch"]: info["model"]}
    model = build_model(info["arch"], ModelParams(**sizes), penalty.activate, info["recipe"]["center_input"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model, penalty


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
    import pandas as pd
    import torch
    from tqdm import tqdm

    from .. import plots, tracking
    from ..data import load_split, read_manifest
    from ..io import staged_dir, write_json
    from ..metrics import firing_frequency, unit_mean_activation
    from ..probes import choose_C, probe_accuracy
    from ..training import to_float_images
    from .train import setting_label, variant_name

    variant = variant_name(arch, penalty_name)
    manifest = read_manifest(data_dir)
    test, train = load_split(data_dir, "test"), load_split(data_dir, "train")
    torch.set_num_threads(params.train.threads)
    x = to_float_images(torch.from_numpy(test.images.copy()), torch.device("cpu"))
    x_train = to_float_images(torch.from_numpy(train.images.copy()), torch.device("cpu"))
    threshold = params.evaluate.active_threshold
    tracking.init_store(params.tracking.experiment)
    points = frontier_points(model_dir, variant, params.seeds)
    C, C_scores = None, {}
    results, per_seed = [], []

    with staged_dir(eval_dir) as out:
        for info, weights in tqdm(points, desc=f"evaluate {variant}", unit="model"):
            model, penalty = load_model(info, weights)
            metrics, x_hat, z = held_out_metrics(model, penalty, x, params)
            # Probe on the codes of the training images (the model's own training set; all but in smoke runs),
            # scored on the test set; C is chosen once per variant, on the first point (the default on the first
            # seed), and kept. Every point of the compared frontiers (the report reads probe accuracy along them
            # at matched L0); of the references (none, TopK) the defaults only, for the per-variant table.
            if penalty_name in COMPARED or info["default_setting"]:
                probe_images = x_train[: params.probe.max_samples]
                train_codes = encode_all(model, probe_images, params.evaluate.batch_size)[1].flatten(1).numpy()
                if C is None:
                    C, C_scores = choose_C(train_codes, train.labels, params.probe)
                metrics |= probe_accuracy(train_codes, train.labels, z.flatten(1).numpy(), test.labels, C,
                                          params.probe.max_iter, params.probe.max_samples)
            metrics["train_relative_change_last_tenth"] = info["convergence"]["relative_change_last_tenth"]
            log_test_metrics(info["mlflow_run_id"], metrics)
            results.append({"setting": info["penalty_params"], "seed": info["seed"], "default": info["default_setting"],
                            "name": info["name"], "metrics": metrics,
                            "training": {k: info[k] for k in TRAINING_KEPT}})
            if not info["default_setting"]:
                continue
            seed = info["seed"]
            # Wall times stay in "training", out of the test metrics and so out of the DVC metrics file: they differ
            # on every run, and `dvc metrics diff` between two runs of the same code, params and data must be empty.
            metrics["n_params"] = info["n_params"]
            per_seed.append(metrics)
            flat = z.flatten()
            sample = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))[:ACTIVATION_SAMPLE]]
            firing = penalty.firing_probability(z) if penalty_name == "kl" else z
            arrays = {
                "originals": x[:N_RECONSTRUCTIONS, 0].numpy(),
                "reconstructions": x_hat[:N_RECONSTRUCTIONS, 0].numpy(),
                "features": model.decoder_features().numpy(),
                "firing_frequency": firing_frequency(z, threshold).numpy(),
                "rho_hat": unit_mean_activation(firing).numpy(),
                "activation_sample": sample.numpy(),
            }
            np.savez_compressed(out / f"seed-{seed}.npz", **arrays)
            write_json(out / f"seed-{seed}.json", {
                "variant": variant, "seed": seed, "activation": penalty.activation, "dataset": manifest["dataset"],
                "data_digest": manifest["digest"], "n_test_samples": len(x), "active_threshold": threshold,
                "metrics": metrics, "training": info,
            })
            if seed == params.seeds[0]:  # figures for the first seed only: each costs seconds to draw
                run_id = info["mlflow_run_id"]
                plots.log_figure(run_id, plots.reconstruction_grid({variant: arrays}), "reconstructions.png")
                plots.log_figure(run_id, plots.feature_grid(arrays["features"], arrays["firing_frequency"], variant),
                                 "features.png")
                plots.log_figure(run_id, plots.activation_histograms({variant: arrays["activation_sample"]}, threshold),
                                 "activations.png")

    write_json(frontier_file, {"variant": variant, "seeds": params.seeds, "dataset": manifest["dataset"],
                               "data_digest": manifest["digest"], "probe_C": C, "probe_C_validation": C_scores,
                               "points": results})
    plot_file.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"variant": variant, "seed": r["seed"], "setting": setting_label(r["setting"]) or "none",
                   "default": r["default"], "l0": r["metrics"]["l0"], "fvu": r["metrics"]["fvu"]}
                  for r in results]).to_csv(plot_file, index=False)
    summary = {
        "dataset": manifest["dataset"],
        "n_seeds": len(per_seed),
        **{k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]},
    }
    write_json(metrics_file, summary)
    print(f"{variant}: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float)), flush=True)
