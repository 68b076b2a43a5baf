"""`report`: a Markdown report and its figures, generated from the evaluate stage's files.

Reads only files (no torch), so it runs in seconds; every number in it comes
from `metrics/`, `eval/` and `logs/train/`, and its provenance block names the
code, params, data and environment they came from.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..params import ARCHITECTURES, PENALTIES, load_params
from .evaluate import TIMING_METRICS

# (metric, label, format, better): better is "low", "high" or "" (no direction).
TABLE_COLUMNS = [
    ("fvu", "FVU", ".4f", "low"),
    ("mse", "MSE/pixel", ".5f", "low"),
    ("psnr_db", "PSNR dB", ".2f", "high"),
    ("l0", "L0", ".1f", "low"),
    ("code_size", "code size", ".0f", ""),
    ("mean_activation", "mean act.", ".4f", ""),
    ("dead_fraction", "dead", ".3f", "low"),
    ("dense_fraction", "dense", ".3f", "low"),
    ("hoyer", "Hoyer", ".3f", "high"),
    ("train_wall_time_s", "train s", ".1f", "low"),
    ("train_samples_per_s", "samples/s", ".0f", "high"),
    ("n_params", "params", ".0f", ""),
]

METRIC_DEFINITIONS = """\
| metric | meaning |
| --- | --- |
| FVU | fraction of variance unexplained: Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖², x̄ the mean test image (0 is perfect, 1 is no better than predicting x̄) |
| MSE/pixel | mean squared reconstruction error per pixel, pixels in [0, 1] |
| PSNR dB | 10·log₁₀(1 / MSE), over the whole test set |
| L0 | mean number of active code entries per test image; active means activation > {threshold} (for conv, every channel × position entry counts) |
| code size | number of code entries per image (linear: hidden units; conv: channels × 7 × 7) |
| mean act. | mean code activation over test images and entries; equal to the mean over units of ρ̂ⱼ, unit j's mean activation (conv: per channel over images × positions), which KL drives toward ρ |
| dead | fraction of code units (conv: channels) never active on any test image |
| dense | fraction of code units (conv: channels) active on more than {dense_pct:g}% of test images |
| Hoyer | mean per-image Hoyer sparsity (√n − ‖z‖₁/‖z‖₂)/(√n − 1): 1 for a one-hot code, 0 for a constant code; needs no threshold |
| train s, samples/s | training wall time and training throughput (train images × epochs / wall time), on the device in the provenance block |
| params | trainable parameters |

The activation threshold {threshold} is shared by every variant. Decoder weights of each code unit have unit L2
norm, so a unit at activation a adds a pattern of norm a to the reconstruction (a whole MNIST digit has norm ≈ 9):
below {threshold} a unit contributes almost nothing.
"""


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "–"
    return format(value, fmt)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _load_variants(metrics_dir: Path, eval_dir: Path, log_dir: Path) -> dict[str, dict]:
    import numpy as np
    import pandas as pd

    variants = {}
    for arch in ARCHITECTURES:
        for penalty in PENALTIES:
            name = f"{arch}-{penalty}"
            summary_path = metrics_dir / f"{name}.json"
            if not summary_path.is_file():
                continue
            seeds = sorted(eval_dir.joinpath(name).glob("seed-*.json"), key=lambda p: int(p.stem.split("-")[1]))
            per_seed = [json.loads(p.read_text()) for p in seeds]
            summary = json.loads(summary_path.read_text())
            for key in TIMING_METRICS:  # kept out of the DVC metrics file; averaged here from the seeds
                summary[key] = float(np.mean([s["metrics"][key] for s in per_seed]))
            variants[name] = {
                "arch": arch,
                "penalty": penalty,
                "summary": summary,
                "seeds": per_seed,
                "arrays": dict(np.load(eval_dir / name / f"{seeds[0].stem}.npz")),
                "history": {p.stem: pd.read_csv(p) for p in sorted((log_dir / name).glob("seed-*.csv"))},
            }
    if not variants:
        raise FileNotFoundError(f"no variant metrics found in {metrics_dir}: run the evaluate stages first")
    return variants


def _comparison_rows(l1: dict, kl: dict) -> list[list[str]]:
    rows = []
    for key, label, fmt, better in TABLE_COLUMNS:
        a, b = l1["summary"].get(key), kl["summary"].get(key)
        if a is None or b is None:
            continue
        diff = b - a
        verdict = ""
        if better and diff != 0:
            kl_better = (diff < 0) == (better == "low")
            verdict = "KL" if kl_better else "L1"
        rows.append([label, _fmt(a, fmt), _fmt(b, fmt), f"{diff:+{fmt}}", verdict])
    return rows


def run(metrics_dir: Path, eval_dir: Path, log_dir: Path, data_dir: Path, out_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)
    from .. import plots
    from ..data import read_manifest
    from ..io import staged_dir, write_json
    from ..provenance import git_commit

    manifest = read_manifest(data_dir)
    variants = _load_variants(Path(metrics_dir), Path(eval_dir), Path(log_dir))
    dataset = manifest["dataset"]
    threshold = params.evaluate.active_threshold

    with staged_dir(out_dir) as out:
        figures = out / "figures"
        figures.mkdir()
        plots.save(plots.reconstruction_grid({n: v["arrays"] for n, v in variants.items()}), figures / "reconstructions.png")
        for name, v in variants.items():
            plots.save(plots.feature_grid(v["arrays"]["features"], v["arrays"]["firing_frequency"], name),
                       figures / f"features-{name}.png")
        for arch in ARCHITECTURES:
            names = [n for n, v in variants.items() if v["arch"] == arch]
            if not names:
                continue
            first_seed = {n: next(iter(variants[n]["history"].values())) for n in names}
            plots.save(plots.loss_curves(first_seed, f"{arch}: reconstruction loss (first seed)"),
                       figures / f"loss-{arch}.png")
            plots.save(plots.activation_histograms({n: variants[n]["arrays"]["activation_sample"] for n in names}, threshold),
                       figures / f"activations-{arch}.png")

        md = []
        title_dataset = "MNIST" if not manifest["is_fallback"] else dataset
        md.append(f"# Sparse autoencoders on {title_dataset}: L1 vs KL sparsity\n")
        if manifest["is_fallback"]:
            md.append(
                f"> **Warning: offline fallback.** These results come from **{dataset}**, "
                f"{manifest['counts']['train']} training and {manifest['counts']['test']} test images, not full MNIST. "
                f"Do not cite them as MNIST results. With a mirror reachable (or `$MNIST_MIRROR` set), "
                f"upgrade with `{manifest['upgrade_command']}`.\n"
            )
        n_seeds = len(params.seeds)
        md.append(
            f"Generated by the `report` stage from the evaluate stage's files; dataset **{dataset}** "
            f"({manifest['counts']['train']} train / {manifest['counts']['test']} test images), "
            f"{n_seeds} seed(s) per variant ({', '.join(map(str, params.seeds))}), values are means over seeds.\n"
        )
        md.append("## Variants\n")
        md.append(
            "Every variant of an architecture shares width, initialisation scheme, optimiser (Adam, "
            f"lr {params.train.lr}), batch size {params.train.batch_size}, {params.train.epochs} epochs, "
            "data and unit-norm decoder weights; they differ only in the penalty and the code activation it needs:\n"
        )
        md.append(_markdown_table(
            ["penalty", "code activation", "loss term added to the reconstruction loss", "setting"],
            [
                ["none", "ReLU", "– (unpenalised reference: what sparsity costs)", "–"],
                ["l1", "ReLU", "λ · mean over samples of Σⱼ|zⱼ|", "; ".join(f"{a}: λ = {params.penalty.of('l1', a).lam:g}" for a in ARCHITECTURES)],
                ["kl", "sigmoid (activations must lie in (0, 1))", "β · Σⱼ KL(ρ ‖ ρ̂ⱼ), ρ̂ⱼ the batch-mean activation of unit j",
                 "; ".join(f"{a}: β = {params.penalty.of('kl', a).beta:g}, ρ = {params.penalty.of('kl', a).rho:g}"
                           for a in ARCHITECTURES)],
            ],
        ) + "\n")
        md.append(
            "The reconstruction loss is the mean over samples of the summed squared error per image. "
            f"`linear`: 784 → {params.model.linear.hidden} → 784. `conv`: one 8×8 stride-4 convolution to "
            f"{params.model.conv.channels} × 7 × 7 code maps and one 8×8 transposed convolution back.\n"
        )

        md.append("## All variants (test set)\n")
        header = ["variant"] + [label for _, label, _, _ in TABLE_COLUMNS]
        rows = [[name] + [_fmt(v["summary"].get(k), f) for k, _, f, _ in TABLE_COLUMNS] for name, v in variants.items()]
        md.append(_markdown_table(header, rows) + "\n")
        md.append(METRIC_DEFINITIONS.format(threshold=threshold, dense_pct=100 * params.evaluate.dense_above))

        md.append("## L1 against KL, per architecture\n")
        if n_seeds == 1:
            md.append(
                "> One seed and one penalty strength per variant: the differences below carry no uncertainty "
                "estimate, and a sparser variant usually reconstructs worse, so compare FVU only together with L0.\n"
            )
        for arch in ARCHITECTURES:
            l1, kl = variants.get(f"{arch}-l1"), variants.get(f"{arch}-kl")
            if l1 is None or kl is None:
                continue
            md.append(f"### {arch}\n")
            md.append(_markdown_table(["metric", "L1", "KL", "KL − L1", "better"], _comparison_rows(l1, kl)) + "\n")
            if "rho_hat_abs_error" in kl["summary"]:
                md.append(
                    f"KL target ρ = {kl['summary']['rho_target']:g}; the mean |ρ̂ⱼ − ρ| over units is "
                    f"{kl['summary']['rho_hat_abs_error']:.4f}.\n"
                )
            base = variants.get(f"{arch}-none")
            if base is not None:
                md.append(
                    f"Unpenalised reference: FVU {base['summary']['fvu']:.4f}, L0 {base['summary']['l0']:.1f}. "
                    f"Sparsity costs L1 {l1['summary']['fvu'] - base['summary']['fvu']:+.4f} FVU and KL "
                    f"{kl['summary']['fvu'] - base['summary']['fvu']:+.4f} FVU against it.\n"
                )
            md.append(f"![{arch} loss curves](figures/loss-{arch}.png)\n")
            md.append(f"![{arch} activations](figures/activations-{arch}.png)\n")
        md.append("## Reconstructions\n")
        md.append("The first test images (top row) and each variant's reconstruction of them (first seed).\n")
        md.append("![reconstructions](figures/reconstructions.png)\n")
        md.append("## Learned features\n")
        md.append(
            "Decoder weights of the most often active units (linear: decoder columns as 28×28 images; "
            "conv: 8×8 transposed-convolution filters), red positive, blue negative, first seed.\n"
        )
        for name in variants:
            md.append(f"![features {name}](figures/features-{name}.png)\n")

        first = next(iter(variants.values()))["seeds"][0]
        env = first["training"]["environment"]
        commits = sorted({s["training"]["git_commit"] for v in variants.values() for s in v["seeds"]})
        md.append("## Provenance\n")
        md.append("\n".join([
            f"- code: git commit of training {', '.join(f'`{c}`' for c in commits)}; report generated at `{git_commit()}`",
            f"- data: **{dataset}**, digest `{manifest['digest']}`, from {', '.join(manifest['source'])}",
            "- data files (MD5 of uncompressed content): " + ", ".join(
                f"`{name}` {f['md5']}" for name, f in manifest["files"].items()),
            f"- device: {env['device']}; Python {env['python']} on {env['platform']}",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()),
            f"- MLflow experiment `{params.tracking.experiment}`, one run per variant and seed "
            "(run ids in `eval/<variant>/seed-<s>.json`)",
        ]) + "\n")
        md.append("Parameters (`params.yaml`):\n\n```yaml\n" + Path(params_file).read_text().strip() + "\n```\n")
        (out / "report.md").write_text("\n".join(md))
        write_json(out / "summary.json", {
            "dataset": dataset,
            "data_digest": manifest["digest"],
            "git_commits": commits,
            "variants": {n: v["summary"] for n, v in variants.items()},
        })
    print(f"report for {len(variants)} variants on {dataset} -> {Path(out_dir) / 'report.md'}")
