"""`report`: the Markdown and HTML report and its figures, generated from result files.

Reads only files (no torch): per-seed metrics (`eval/`), loss logs, the frontier sweeps
(`sweep/`) and the baselines. Every number and every sentence of comparison is computed
here from those files (see sae_mnist.reporting), and the "How to cite" block names the
code, params, data and environment they came from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..params import ARCHITECTURES, PENALTIES, load_params

# Columns of the main table (all means over seeds ± the 95% CI half-width).
MAIN_COLUMNS = ("fvu", "mse", "l0", "dead_fraction", "dense_fraction", "hoyer", "probe_accuracy", "train_samples_per_s")

METRIC_DEFINITIONS = """\
| metric | meaning |
| --- | --- |
| FVU | fraction of variance unexplained: Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖², x̄ the mean test image (0 is perfect, 1 is no better than predicting x̄) |
| MSE/pixel | mean squared reconstruction error per pixel, pixels in [0, 1] |
| PSNR dB | 10·log₁₀(1 / MSE), over the whole test set |
| L0 | mean number of active code entries per test image; active means activation > {threshold} (for conv, every channel × position entry counts) |
| code size | number of code entries per image (linear: hidden units; conv: channels × 7 × 7) |
| mean act. | mean code activation over test images and entries; equal to the mean over units of ρ̂ⱼ, unit j's mean activation (conv: per channel over images × positions), which KL drives toward ρ |
| mean \\|ρ̂ − ρ\\| | KL only: mean over units of the distance between ρ̂ⱼ and the target ρ |
| dead | fraction of code units (conv: channels) never active on any test image |
| dense | fraction of code units (conv: channels) active on more than {dense_pct:g}% of test images |
| Hoyer | mean per-image Hoyer sparsity (√n − ‖z‖₁/‖z‖₂)/(√n − 1): 1 for a one-hot code, 0 for a constant code; needs no threshold |
| probe acc. | test accuracy of a multinomial logistic regression (scikit-learn, lbfgs, C = {C:g}, at most {max_iter} iterations, standardised features) trained on the codes of all training images |
| train s, samples/s | wall time of the stack the model was trained in (every model of its architecture and seed, trained together) and the throughput per model (train images × epochs / that time), on the device in the provenance block |
| params | trainable parameters |

The activation threshold {threshold} is shared by every variant. Decoder weights of each code unit have unit L2
norm, so a unit at activation a adds a pattern of norm a to the reconstruction (a whole MNIST digit has norm ≈ 9):
below {threshold} a unit contributes almost nothing.

Statistics: "mean ± h" is the mean over seeds and h the half-width of its 95% confidence interval from Student's t
with n − 1 degrees of freedom. Differences KL − L1 come with the 95% Welch interval and the two-sided Welch t-test
p-value across seeds. Training is deterministic for a fixed seed, so the spread is seed-to-seed variation only.
"""


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _load_variants(metrics_dir: Path, eval_dir: Path, log_dir: Path) -> dict[str, dict]:
    import numpy as np
    import pandas as pd

    from ..reporting import seed_summaries

    variants = {}
    for arch in ARCHITECTURES:
        for penalty in PENALTIES:
            name = f"{arch}-{penalty}"
            if not (metrics_dir / f"{name}.json").is_file():
                continue
            seeds = sorted(eval_dir.joinpath(name).glob("seed-*.json"), key=lambda p: int(p.stem.split("-")[1]))
            per_seed = [json.loads(p.read_text()) for p in seeds]
            variants[name] = {
                "arch": arch,
                "penalty": penalty,
                "seeds": per_seed,
                "stats": seed_summaries([s["metrics"] for s in per_seed]),
                "arrays": dict(np.load(eval_dir / name / f"{seeds[0].stem}.npz")),
                "history": {f"seed-{s['seed']}": pd.read_csv(log_dir / arch / f"seed-{s['seed']}" / f"{name}.csv")
                            for s in per_seed},
            }
    if not variants:
        raise FileNotFoundError(f"no variant metrics found in {metrics_dir}: run the evaluate stages first")
    return variants


def _frontier_points(variant: dict, sweep: dict | None, default: dict, first_seed: int):
    """Every run on one variant's frontier: the main run on the first seed plus the sweep's points."""
    import pandas as pd

    main = next(s for s in variant["seeds"] if s["seed"] == first_seed)
    rows = [{"family": "default", **default, "l0": main["metrics"]["l0"], "fvu": main["metrics"]["fvu"]}]
    for point in (sweep or {}).get("points", []):
        setting = point["setting"]
        family = "lam" if "lam" in setting else ("beta" if setting["rho"] == default["rho"] else "rho")
        rows.append({"family": family, **setting, "l0": point["metrics"]["l0"], "fvu": point["metrics"]["fvu"]})
    return pd.DataFrame(rows)


def run(metrics_dir: Path, eval_dir: Path, log_dir: Path, sweep_dir: Path, baselines_file: Path, data_dir: Path,
        out_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import numpy as np
    import pandas as pd

    from .. import plots, reporting
    from ..data import read_manifest
    from ..io import read_json, staged_dir, write_json
    from ..provenance import git_commit
    from ..reporting import METRICS, mean_ci

    manifest = read_manifest(data_dir)
    variants = _load_variants(Path(metrics_dir), Path(eval_dir), Path(log_dir))
    sweeps = {p.stem: read_json(p) for p in sorted(Path(sweep_dir).glob("*.json"))}
    baselines = read_json(baselines_file)
    pca_fvu = np.array(baselines["pca_fvu"])
    dataset, threshold, first_seed = manifest["dataset"], params.evaluate.active_threshold, params.seeds[0]
    n_seeds = len(params.seeds)
    archs = [a for a in ARCHITECTURES if any(v["arch"] == a for v in variants.values())]

    # Matched-sparsity analysis, per architecture.
    frontiers, matched, verdicts = {}, {}, {}
    for arch in archs:
        pair = {p: variants.get(f"{arch}-{p}") for p in ("l1", "kl")}
        if None in pair.values():
            continue
        points = {p: _frontier_points(v, sweeps.get(f"{arch}-{p}"), params.penalty.of(p, arch).model_dump(), first_seed)
                  for p, v in pair.items()}
        frontiers[arch] = points
        matched[arch] = reporting.matched_l0(
            {p: (f["l0"].to_numpy(), f["fvu"].to_numpy()) for p, f in points.items()},
            seed_sd={p: v["stats"]["fvu"].std for p, v in pair.items()},
            n_seeds={p: v["stats"]["fvu"].n for p, v in pair.items()},
        )
        verdicts[arch] = reporting.matched_verdict(arch, matched[arch])
    seed_comparisons = {
        arch: reporting.compare_seeds([s["metrics"] for s in variants[f"{arch}-l1"]["seeds"]],
                                      [s["metrics"] for s in variants[f"{arch}-kl"]["seeds"]])
        for arch in frontiers
    }

    with staged_dir(out_dir) as out:
        figures = out / "figures"
        figures.mkdir()
        for arch, points in frontiers.items():
            seed_points = {f"{arch}-{p}": pd.DataFrame([s["metrics"] for s in variants[f"{arch}-{p}"]["seeds"]])
                           for p in ("l1", "kl")}
            plots.save(plots.frontier(arch, points, pca_fvu, seed_points, [r["l0"] for r in matched[arch]]),
                       figures / f"frontier-{arch}.png")
        plots.save(plots.reconstruction_grid({n: v["arrays"] for n, v in variants.items()}), figures / "reconstructions.png")
        for name, v in variants.items():
            plots.save(plots.feature_grid(v["arrays"]["features"], v["arrays"]["firing_frequency"], name),
                       figures / f"features-{name}.png")
        for arch in archs:
            names = [n for n, v in variants.items() if v["arch"] == arch]
            first_history = {n: next(iter(variants[n]["history"].values())) for n in names}
            plots.save(plots.loss_curves(first_history, f"{arch}: reconstruction loss (first seed)"),
                       figures / f"loss-{arch}.png")
            plots.save(plots.activation_histograms({n: variants[n]["arrays"]["activation_sample"] for n in names}, threshold),
                       figures / f"activations-{arch}.png")
            plots.save(plots.firing_histograms({n: variants[n]["arrays"]["firing_frequency"] for n in names}),
                       figures / f"firing-{arch}.png")
        kl_names = [n for n, v in variants.items() if v["penalty"] == "kl"]
        if kl_names:
            plots.save(plots.rho_hat_distribution({n: variants[n]["arrays"]["rho_hat"] for n in kl_names},
                                                  {n: params.penalty.of("kl", variants[n]["arch"]).rho for n in kl_names}),
                       figures / "rho-hat.png")

        md = []
        title_dataset = "MNIST" if not manifest["is_fallback"] else dataset
        title = f"Sparse autoencoders on {title_dataset}: L1 vs KL sparsity"
        md.append(f"# {title}\n")
        if manifest["is_fallback"]:
            md.append(
                f"> **Warning: offline fallback.** These results come from **{dataset}**, "
                f"{manifest['counts']['train']} training and {manifest['counts']['test']} test images, not full MNIST. "
                f"Do not cite them as MNIST results. With a mirror reachable (or `$MNIST_MIRROR` set), "
                f"upgrade with `{manifest['upgrade_command']}`.\n"
            )
        md.append(
            f"Generated by the `report` stage from result files; dataset **{dataset}** "
            f"({manifest['counts']['train']} train / {manifest['counts']['test']} test images), "
            f"{n_seeds} seed(s) per variant ({', '.join(map(str, params.seeds))}). Every number and every comparison "
            "sentence below is computed from those files.\n"
        )
        md.append("## Verdict at matched sparsity\n")
        md.append("\n".join(f"- {verdicts[a]}" for a in verdicts) + "\n")
        md.append(
            "A sparser code usually reconstructs worse, so FVU at one penalty strength each says little; the verdict "
            "compares the variants' frontiers at equal L0 (section *Matched sparsity*).\n"
        )

        md.append("## Variants\n")
        md.append(
            "Every variant of an architecture shares width, initialisation scheme, optimiser (Adam, "
            f"lr {params.train.lr}), batch size {params.train.batch_size}, {params.train.epochs} epochs, "
            "data and unit-norm decoder weights; they differ only in the penalty and the code activation it needs:\n"
        )
        md.append(_table(
            ["penalty", "code activation", "loss term added to the reconstruction loss", "default setting"],
            [
                ["none", "ReLU", "– (unpenalised reference: what sparsity costs)", "–"],
                ["l1", "ReLU", "λ · mean over samples of Σⱼ\\|zⱼ\\|",
                 "; ".join(f"{a}: λ = {params.penalty.of('l1', a).lam:g}" for a in ARCHITECTURES)],
                ["kl", "sigmoid (activations must lie in (0, 1))", "β · Σⱼ KL(ρ ‖ ρ̂ⱼ), ρ̂ⱼ the batch-mean activation of unit j",
                 "; ".join(f"{a}: β = {params.penalty.of('kl', a).beta:g}, ρ = {params.penalty.of('kl', a).rho:g}"
                           for a in ARCHITECTURES)],
            ],
        ))
        md.append(
            "The reconstruction loss is the mean over samples of the summed squared error per image. "
            f"`linear`: 784 → {params.model.linear.hidden} → 784. `conv`: one 8×8 stride-4 convolution to "
            f"{params.model.conv.channels} × 7 × 7 code maps and one 8×8 transposed convolution back.\n"
        )

        md.append("## All variants at their default setting (test set, mean ± 95% CI over seeds)\n")
        rows = [[name] + [mean_ci(v["stats"][k], METRICS[k][1]) if k in v["stats"] else "–" for k in MAIN_COLUMNS]
                for name, v in variants.items()]
        md.append(_table(["variant"] + [METRICS[k][0] for k in MAIN_COLUMNS], rows))
        md.append("Every metric with its standard deviation and interval is in the appendix; definitions follow it.\n")

        md.append("## L1 against KL at the default settings, across seeds\n")
        for arch, comparisons in seed_comparisons.items():
            md.append(f"### {arch}\n")
            rows = []
            for c in comparisons:
                d = c["difference"]
                l1_stat, kl_stat = variants[f"{arch}-l1"]["stats"][c["metric"]], variants[f"{arch}-kl"]["stats"][c["metric"]]
                rows.append([c["label"], mean_ci(l1_stat, c["fmt"]), mean_ci(kl_stat, c["fmt"]),
                             format(d.diff, "+" + c["fmt"]), f"[{format(d.ci_low, c['fmt'])}, {format(d.ci_high, c['fmt'])}]",
                             reporting.p_value(d.p)])
            md.append(_table(["metric", "L1", "KL", "KL − L1", "95% CI", "Welch p"], rows))
            md.append("\n".join(f"- {c['sentence']}" for c in comparisons) + "\n")
            base = variants.get(f"{arch}-none")
            if base is not None:
                fvu = {p: variants[f"{arch}-{p}"]["stats"]["fvu"].mean for p in ("none", "l1", "kl")}
                md.append(
                    f"Unpenalised reference: FVU {fvu['none']:.4f}, L0 {base['stats']['l0'].mean:.1f}. "
                    f"Sparsity costs L1 {fvu['l1'] - fvu['none']:+.4f} FVU and KL {fvu['kl'] - fvu['none']:+.4f} FVU against it.\n"
                )

        md.append("## Matched sparsity: the FVU–L0 frontier\n")
        md.append(
            f"Each variant is swept over its penalty strength at fixed width, optimiser, epochs and data, one run per "
            f"setting on seed {first_seed} (grid in `params.yaml`, `sweep:`; the default setting's point is the main run "
            "on that seed). KL is swept over β at its default ρ and over ρ at its default β. The frontier is each "
            "penalty's best FVU at each sparsity (its points not beaten by a sparser one); FVU is interpolated linearly "
            "in log L0 between neighbouring frontier points, never extrapolated, at three L0 values inside the range "
            "both frontiers cover (25%, 50% and 75% of it in log scale). The dashed line is PCA with k components "
            "(the best k-dimensional linear code; its L0 is k).\n"
        )
        md.append(
            "Uncertainty: sweep points are single runs, so the interval of a matched difference uses the seed-to-seed "
            "standard deviation of FVU measured at the default settings as each point's noise (Welch–Satterthwaite "
            "degrees of freedom); interpolation error is not included.\n"
        )
        for arch, points in frontiers.items():
            md.append(f"### {arch}\n")
            md.append(f"![{arch} frontier](figures/frontier-{arch}.png)\n")
            rows = [[f"{r['l0']:.3g}", f"{r['fvu_l1']:.4f}", f"{r['fvu_kl']:.4f}", f"{r['difference'].diff:+.4f}",
                     f"[{r['difference'].ci_low:.4f}, {r['difference'].ci_high:.4f}]", reporting.p_value(r["difference"].p),
                     f"{pca_fvu[min(len(pca_fvu), max(1, round(r['l0']))) - 1]:.4f}"]
                    for r in matched[arch]]
            if rows:
                md.append(_table(["L0", "FVU L1", "FVU KL", "KL − L1", "95% CI", "p", "PCA, k = round(L0)"], rows))
                md.append("\n".join(f"- {r['sentence']}" for r in matched[arch]) + "\n")
            md.append(f"**{verdicts[arch]}**\n")
            sweep_rows = []
            for penalty, frame in points.items():
                for _, r in frame.sort_values("l0").iterrows():
                    setting = ", ".join(f"{k} = {r[k]:g}" for k in ("lam", "beta", "rho") if k in r and pd.notna(r[k]))
                    sweep_rows.append([penalty.upper(), r["family"], setting, f"{r['l0']:.1f}", f"{r['fvu']:.4f}"])
            md.append("<details><summary>every frontier run</summary>\n\n" +
                      _table(["penalty", "swept", "setting", "L0", "FVU"], sweep_rows) + "\n</details>\n")

        md.append("## Linear probes\n")
        md.append(
            "Logistic regression on each variant's codes of the training images (every seed), accuracy on the test "
            "images; the same probe on raw pixels and on PCA codes, and published reference points.\n"
        )
        rows = [[name, mean_ci(v["stats"]["probe_accuracy"], ".4f")] for name, v in variants.items() if "probe_accuracy" in v["stats"]]
        rows += [[f"{rep} (this benchmark)", f"{r['probe_accuracy']:.4f}"] for rep, r in baselines["probes"].items()]
        rows += [[f"{r['representation']} (published)", f"≈ {r['accuracy']:.3f}"] for r in baselines["published"]]
        md.append(_table(["representation", "test accuracy"], rows))
        md.append("Published references: " + "; ".join(r["source"] for r in baselines["published"]) + ".\n")
        unconverged = sorted({n for n, v in variants.items() for s in v["seeds"] if s["metrics"].get("probe_converged") == 0.0}
                             | {rep for rep, r in baselines["probes"].items() if r.get("probe_converged") == 0.0})
        if unconverged:
            md.append(f"> lbfgs stopped at its iteration limit ({params.probe.max_iter}) for: {', '.join(unconverged)}; "
                      "those accuracies may rise slightly with `probe.max_iter`.\n")

        md.append("## Features\n")
        md.append("Firing frequency of every code unit (conv: channel active anywhere on the image), log scale; "
                  "dead units are counted in the legend.\n")
        for arch in archs:
            md.append(f"![{arch} firing frequencies](figures/firing-{arch}.png)\n")
        if kl_names:
            md.append("Each unit's mean activation ρ̂ⱼ against the KL target ρ (first seed); "
                      + "; ".join(f"{n}: mean |ρ̂ⱼ − ρ| = {mean_ci(variants[n]['stats']['rho_hat_abs_error'], '.4f')}"
                                  for n in kl_names) + ".\n")
            md.append("![rho hat](figures/rho-hat.png)\n")
        md.append("Decoder weights of the most often active units (linear: decoder columns as 28×28 images; "
                  "conv: 8×8 transposed-convolution filters), red positive, blue negative, first seed.\n")
        for name in variants:
            md.append(f"![features {name}](figures/features-{name}.png)\n")
        md.append("## Reconstructions, training curves, activations\n")
        md.append("The first test images (top row) and each variant's reconstruction of them (first seed).\n")
        md.append("![reconstructions](figures/reconstructions.png)\n")
        for arch in archs:
            md.append(f"![{arch} loss curves](figures/loss-{arch}.png)\n")
            md.append(f"![{arch} activations](figures/activations-{arch}.png)\n")

        md.append("## Metric definitions\n")
        md.append(METRIC_DEFINITIONS.format(threshold=threshold, dense_pct=100 * params.evaluate.dense_above,
                                            C=params.probe.C, max_iter=params.probe.max_iter))
        md.append("## Appendix: every metric over seeds (mean; sd; 95% CI)\n")
        keys = [k for k in METRICS if any(k in v["stats"] for v in variants.values())]
        rows = [[METRICS[k][0]] + [reporting.full_summary(v["stats"][k], METRICS[k][1]) if k in v["stats"] else "–"
                                   for v in variants.values()] for k in keys]
        md.append(_table(["metric"] + list(variants), rows))

        first = next(iter(variants.values()))["seeds"][0]
        env = first["training"]["environment"]
        commits = sorted({s["training"]["git_commit"] for v in variants.values() for s in v["seeds"]}
                         | {p["training"]["git_commit"] for s in sweeps.values() for p in s["points"]})
        params_sha = hashlib.sha256(Path(params_file).read_bytes()).hexdigest()
        md.append("## How to cite\n")
        md.append(
            "Cite the benchmark with the metadata in `CITATION.cff` at the repository root, and name the exact "
            "results you quote by the identifiers below: together they pin the code, the parameters and the data, "
            "and `dvc repro` at that commit reproduces every number (bit for bit on the same CPU and thread count).\n"
        )
        md.append("\n".join([
            f"- code: git commit of training {', '.join(f'`{c}`' for c in commits)}; report generated at `{git_commit()}`",
            f"- parameters: `params.yaml` SHA-256 `{params_sha}` (in full below)",
            f"- data: **{dataset}**, digest `{manifest['digest']}`, from {', '.join(manifest['source'])}",
            "- data files (MD5 of uncompressed content): " + ", ".join(
                f"`{name}` {f['md5']}" for name, f in manifest["files"].items()),
            f"- device: {env['device']}; Python {env['python']} on {env['platform']}",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()),
            f"- MLflow experiment `{params.tracking.experiment}`, one run per variant and seed and per sweep point "
            "(run ids in `eval/<variant>/seed-<s>.json` and `sweep/<variant>.json`; each a child of its stack's run)",
        ]) + "\n")
        md.append("Parameters (`params.yaml`):\n\n```yaml\n" + Path(params_file).read_text().strip() + "\n```\n")
        text = "\n".join(md)
        (out / "report.md").write_text(text)
        (out / "report.html").write_text(reporting.markdown_to_html(text, out, title))
        write_json(out / "summary.json", {
            "dataset": dataset,
            "data_digest": manifest["digest"],
            "params_sha256": params_sha,
            "git_commits": commits,
            "variants": {n: {k: s.__dict__ for k, s in v["stats"].items()} for n, v in variants.items()},
            "matched_l0": {a: [{"l0": r["l0"], "fvu_l1": r["fvu_l1"], "fvu_kl": r["fvu_kl"], **r["difference"].__dict__}
                               for r in rows_] for a, rows_ in matched.items()},
            "verdicts": verdicts,
        })
    print(f"report for {len(variants)} variants on {dataset} -> {Path(out_dir) / 'report.md'} and report.html")
