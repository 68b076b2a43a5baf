"""`evaluate@<arch>-<penalty>`: held-out metrics for one variant, every seed, and its sweep points.

Reads the variant's models from the train stages' outputs (`<model_dir>/seed-<s>/`). Writes
`<eval_dir>/seed-<s>.json` (metrics and provenance of the default setting), `<eval_dir>/seed-<s>.npz`
(what the report plots: reconstructions, decoder features, firing frequencies, an activation
sample), `<metrics_file>`: the mean over seeds, for `dvc metrics show`, and `<sweep_file>`: the
test metrics of every sweep point (first seed; none for the unpenalised variant).
The test metrics are also logged to each model's MLflow run. Timing metrics are in the
per-seed files and MLflow only, so that the metrics file is identical between reruns.
"""

from __future__ import annotations

from pathlib import Path

from ..params import load_params

N_RECONSTRUCTIONS = 10  # the first test images, shown originals over reconstructions
ACTIVATION_SAMPLE = 50_000  # code entries kept for the activation histogram
# Wall-clock measurements differ on every run: they stay out of the DVC metrics file, so that
# `dvc metrics diff` between two runs of the same code, params and data is empty.
TIMING_METRICS = ("train_wall_time_s", "train_samples_per_s")


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


def held_out_metrics(model, x, params) -> tuple[dict, object, object]:
    """Reconstruction and sparsity metrics of `model` on images `x`; also returns x_hat and z."""
    from ..metrics import reconstruction_metrics, sparsity_metrics

    x_hat, z = encode_all(model, x, params.evaluate.batch_size)
    metrics = {
        **reconstruction_metrics(x, x_hat),
        **sparsity_metrics(z, params.evaluate.active_threshold, params.evaluate.dense_above),
    }
    return metrics, x_hat, z


def load_model(arch: str, params, info: dict, weights: Path):
    """A trained model from its state_dict and the description the train stage wrote beside it."""
    import torch

    from ..models import build_model

    model = build_model(arch, params.model, info["activation"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def run(arch: str, penalty_name: str, data_dir: Path, model_dir: Path, eval_dir: Path, metrics_file: Path,
        sweep_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import numpy as np
    import torch

    from .. import plots, tracking
    from ..data import load_split, read_manifest
    from ..io import read_json, staged_dir, write_json
    from ..metrics import firing_frequency, unit_mean_activation
    from ..penalties import build_penalty
    from ..probes import probe_accuracy
    from ..training import to_float_images
    from .train import variant_name

    variant = variant_name(arch, penalty_name)
    manifest = read_manifest(data_dir)
    test, train = load_split(data_dir, "test"), load_split(data_dir, "train")
    torch.set_num_threads(params.train.threads)
    x = to_float_images(torch.from_numpy(test.images.copy()), torch.device("cpu"))
    x_train = to_float_images(torch.from_numpy(train.images.copy()), torch.device("cpu"))
    penalty = build_penalty(penalty_name, arch, params.penalty)
    threshold = params.evaluate.active_threshold
    tracking.init_store(params.tracking.experiment)
    per_seed = []

    with staged_dir(eval_dir) as out:
        for seed in params.seeds:
            info = read_json(model_dir / f"seed-{seed}" / f"{variant}.json")
            model = load_model(arch, params, info, model_dir / f"seed-{seed}" / f"{variant}.pt")
            metrics, x_hat, z = held_out_metrics(model, x, params)
            # Probe on the codes of every training image (the model's own training set), scored on the test set.
            train_codes = encode_all(model, x_train, params.evaluate.batch_size)[1].flatten(1).numpy()
            metrics |= probe_accuracy(train_codes, train.labels, z.flatten(1).numpy(), test.labels, params.probe)
            metrics |= {
                "train_wall_time_s": info["train_wall_time_s"],
                "train_samples_per_s": info["train_samples_per_s"],
                "n_params": info["n_params"],
            }
            rho_hat = unit_mean_activation(z)
            if penalty_name == "kl":
                rho = penalty.rho
                metrics["rho_target"] = rho
                metrics["rho_hat_abs_error"] = (rho_hat - rho).abs().mean().item()
            per_seed.append(metrics)

            flat = z.flatten()
            sample = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))[:ACTIVATION_SAMPLE]]
            arrays = {
                "originals": x[:N_RECONSTRUCTIONS, 0].numpy(),
                "reconstructions": x_hat[:N_RECONSTRUCTIONS, 0].numpy(),
                "features": model.decoder_features().numpy(),
                "firing_frequency": firing_frequency(z, threshold).numpy(),
                "rho_hat": rho_hat.numpy(),
                "activation_sample": sample.numpy(),
            }
            np.savez_compressed(out / f"seed-{seed}.npz", **arrays)
            write_json(
                out / f"seed-{seed}.json",
                {
                    "variant": variant,
                    "seed": seed,
                    "activation": penalty.activation,
                    "dataset": manifest["dataset"],
                    "data_digest": manifest["digest"],
                    "n_test_samples": len(x),
                    "active_threshold": threshold,
                    "metrics": metrics,
                    "training": info,
                },
            )
            run_id = info["mlflow_run_id"]
            if not log_test_metrics(run_id, metrics) or seed != params.seeds[0]:
                continue  # figures for the first seed only: each costs seconds to draw
            plots.log_figure(run_id, plots.reconstruction_grid({variant: arrays}), "reconstructions.png")
            plots.log_figure(run_id, plots.feature_grid(arrays["features"], arrays["firing_frequency"], variant),
                             "features.png")
            plots.log_figure(run_id, plots.activation_histograms({variant: arrays["activation_sample"]}, threshold),
                             "activations.png")

    points = []  # the sweep's other settings, trained on the first seed
    first = model_dir / f"seed-{params.seeds[0]}"
    for info_file in sorted(first.glob(f"{variant}-*.json")):
        info = read_json(info_file)
        model = load_model(arch, params, info, info_file.with_suffix(".pt"))
        metrics, _, z = held_out_metrics(model, x, params)
        if penalty_name == "kl":
            metrics["rho_hat_abs_error"] = (unit_mean_activation(z) - info["penalty_params"]["rho"]).abs().mean().item()
        log_test_metrics(info["mlflow_run_id"], metrics)
        points.append({"setting": info["penalty_params"], "metrics": metrics, "training": info})
    write_json(sweep_file, {"variant": variant, "seed": params.seeds[0], "dataset": manifest["dataset"],
                            "data_digest": manifest["digest"], "points": points})

    summary = {
        "dataset": manifest["dataset"],
        "n_seeds": len(per_seed),
        **{k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0] if k not in TIMING_METRICS},
    }
    write_json(metrics_file, summary)
    print(f"{variant}: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float)), flush=True)
