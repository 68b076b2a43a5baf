"""`report`: the Markdown and HTML report and its figures, generated from result files.

Reads only files (no torch), and logs the report to an MLflow run of its own: per-seed default-setting metrics (`eval/`), every frontier point
(`frontier/`), the recipe ablation (`ablation/`), the robustness studies (`robustness/`), the wide configuration
(`wide/`), loss logs and the baselines. The study sections are stages/report_studies.py's. Every number, check and sentence of comparison is computed here from those files
(see sae_mnist.reporting and sae_mnist.stats), and the "How to cite" block names the code,
params, data and environment they came from.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from ..params import ARCHITECTURES, COMPARED, PENALTIES, STUDIES, load_params

# Columns of the per-variant table (means over seeds with 95% intervals).
MAIN_COLUMNS = ("fvu", "l0", "code_size", "dead_fraction", "always_on_fraction", "probe_accuracy")
PENALTY_LABEL = {"none": "none", "l1": "L1", "kl": "KL", "topk": "TopK"}

METRIC_DEFINITIONS = """\
| metric | meaning |
| --- | --- |
| FVU | fraction of variance unexplained: Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖², x̄ the mean test image (0 is perfect, 1 is no better than predicting x̄). x̂ decodes the **truncated code**: every entry at or below the activity threshold (here {threshold}) set to zero, so the decoder uses exactly the entries L0 counts (sigmoid codes are never exactly zero) |
| FVU at t, L0 at t | the same at threshold t, for each t in {thresholds} (no retraining) |
| FVU untruncated | FVU of the code as the model computes it |
| MSE/pixel, PSNR dB | mean squared error per pixel of the truncated code's reconstruction, pixels in [0, 1]; 10·log₁₀(1 / MSE) |
| L0 | mean number of active code entries per test image; active means activation > {threshold} (conv: every channel × position entry counts) |
| code size | code entries per image (linear: hidden units; conv: channels × 7 × 7) |
| dead | code units (conv: channels) never active on any test image, counted on each seed ("0, 1, 0 of 32 channels": seeds in order); `dead_fraction` in the metrics files |
| always on | units (conv: channels) active on more than {always_pct:g}% of test images, counted like dead ones. (Earlier versions counted "dense" units above 10%: at L0 ≈ 43 of 256 the average unit must fire on ~17% of images, so that marked even usage as a fault.) |
| mean act. | mean code activation over test images and entries |
| ρ̂ⱼ, mean \\|ρ̂ − ρ\\| / ρ | KL only: unit j's firing probability, the mean of sigmoid(uⱼ) (= zⱼ / scale) over test images (conv: and positions), and the mean over units of its distance to the target ρ, relative to ρ. "Reaches its target": ≤ 0.1 |
| saturated | KL only: fraction of code entries with sigmoid(u) > 0.99, where the code is capped at its scale |
| Hoyer | mean per-image Hoyer sparsity (√n − ‖z‖₁/‖z‖₂)/(√n − 1): 1 for a one-hot code, 0 for a constant code; needs no threshold |
| probe acc. | test accuracy of a multinomial logistic regression (scikit-learn, lbfgs, standardised features, at most {max_iter} iterations) trained on the codes of {probe_images}; its inverse regularisation C is chosen from {C} by accuracy on the last {validation_pct:g}% of them (fitted on the rest), once per variant on its default setting's first seed, then refitted on all of them. Every point of the L1 and KL frontiers is probed (the report reads probe accuracy along them); of none and TopK, the default setting |
| converged | the training objective's mean over the last 10% of steps moved by less than {relative_pct:g}% of itself from its mean over the 10% before, or by less than {fvu_tol:g} in FVU units (see *Convergence*) |

Statistics: "mean [lo, hi]" is the mean over seeds and the 95% interval of the mean from Student's t with n − 1
degrees of freedom, computed where the metric's bounds are respected: on logits for fractions (probe accuracy),
on logs for FVU and MSE, then mapped back (a value on a bound is moved half a unit of resolution inside first).
Dead and always-on units are counts per seed, without an interval: a conv code has 32 channels, one of them 3.1%. With 3 seeds a t interval has 2 degrees of freedom (t = 4.30): intervals are wide, and a
difference can be real yet not significant. Differences KL − L1 are **paired** by seed (the same seed gives L1
and KL the same initial weights and batches), with the paired t interval and test.
"""


def _cell(v: dict, key: str, summary) -> str:
    """A variant's entry for one metric in a table: per-seed counts for dead and always-on units
    (reporting.UNIT_COUNTS), else `summary(stats, format)` of its seeds, or '–' where it has no such metric."""
    from ..reporting import METRICS, UNIT_COUNTS, unit_counts

    if key in UNIT_COUNTS:
        return unit_counts([s["metrics"] for s in v["seeds"]], key, v["arch"])
    return summary(v["stats"][key], METRICS[key][1]) if key in v["stats"] else "–"


def _mean_where_reached(values) -> str:
    """The mean over the seeds whose frontier reaches this L0 (nan where it does not), or "–" where none does."""
    import numpy as np

    reached = values[~np.isnan(values)]
    return f"{reached.mean():.4f}" if reached.size else "–"


def _check(ok: bool) -> str:
    return "✓" if ok else "✗"


def _load_variants(eval_dir: Path, frontier_dir: Path, log_dir: Path) -> dict[str, dict]:
    import numpy as np
    import pandas as pd

    from ..io import read_json
    from ..reporting import seed_summaries

    variants = {}
    for arch in ARCHITECTURES:
        for penalty in PENALTIES:
            name = f"{arch}-{penalty}"
            if not (frontier_dir / f"{name}.json").is_file():
                continue
            seeds = sorted(eval_dir.joinpath(name).glob("seed-*.json"), key=lambda p: int(p.stem.split("-")[1]))
            per_seed = [json.loads(p.read_text()) for p in seeds]
            variants[name] = {
                "arch": arch, "penalty": penalty, "seeds": per_seed,
                "stats": seed_summaries([s["metrics"] for s in per_seed]),
                "arrays": dict(np.load(eval_dir / name / f"{seeds[0].stem}.npz")),
                "history": {s["seed"]: pd.read_csv(log_dir / arch / f"seed-{s['seed']}" / f"{name}.csv") for s in per_seed},
                "frontier": read_json(frontier_dir / f"{name}.json"),
            }
    if not variants:
        raise FileNotFoundError(f"no frontier files found in {frontier_dir}: run the evaluate stages first")
    return variants


def analyse(variants: dict, thresholds: list[float], primary_threshold: float, pca_fvu, l0_ranges) -> dict:
    """Per architecture: each penalty's per-seed frontiers at every threshold, the primary estimand at each (at the
    primary threshold inside the declared L0 range, l0_ranges.of(arch)), Holm, and at the primary threshold the
    estimand under the other interpolation rule (the sensitivity)."""
    import numpy as np

    from .. import reporting, stats

    results = {}
    for arch in ARCHITECTURES:
        pts = {p: variants[f"{arch}-{p}"]["frontier"]["points"] for p in PENALTIES if f"{arch}-{p}" in variants}
        if "l1" not in pts or "kl" not in pts:
            continue
        fronts = {t: {p: reporting.seed_frontiers(v, t, extra="probe_accuracy" if p in COMPARED else None)
                      for p, v in pts.items()} for t in thresholds}
        declared = l0_ranges.of(arch)
        estimands = {t: reporting.primary_estimand(fronts[t]["l1"], fronts[t]["kl"],
                                                   l0_range=declared if t == primary_threshold else None)
                     for t in thresholds}
        kl_capped = [p for p in pts["kl"] if p["setting"].get("scale", 1.0) == 1.0]
        capped = reporting.primary_estimand(fronts[primary_threshold]["l1"],
                                            reporting.seed_frontiers(kl_capped, primary_threshold),
                                            l0_range=declared) if kl_capped else None
        primary = estimands[primary_threshold]
        extra = {}
        if primary is not None:
            grid = primary["grid"]
            k = np.arange(1, len(pca_fvu) + 1)
            extra["pca"] = np.interp(np.log10(grid), np.log10(k), pca_fvu)
            if "topk" in pts:
                extra["topk"] = reporting.matched_values(fronts[primary_threshold]["topk"], grid,
                                                         log_y=primary["log_fvu"])
            probe = {p: reporting.matched_values(fronts[primary_threshold][p], grid, column=2) for p in ("l1", "kl")}
            extra["probe"] = probe
            extra["probe_difference"] = [stats.paired(probe["kl"][:, i], probe["l1"][:, i]) for i in range(len(grid))]
            other_rule = reporting.primary_estimand(fronts[primary_threshold]["l1"], fronts[primary_threshold]["kl"],
                                                    log_fvu=not primary["log_fvu"], l0_range=declared)
            extra["sensitivity"] = other_rule
            extra["sensitivity_sentence"] = reporting.sensitivity_sentence(arch, primary, other_rule)
        results[arch] = {"points": pts, "fronts": fronts, "estimands": estimands, "capped": capped, **extra}
    archs = list(results)
    p_primary = [results[a]["estimands"][primary_threshold]["difference"].p
                 if results[a]["estimands"][primary_threshold] else math.nan for a in archs]
    for arch, p_holm in zip(archs, stats.holm(p_primary)):
        results[arch]["holm_p"] = p_holm
        results[arch]["verdict"] = reporting.verdict(arch, results[arch]["estimands"], primary_threshold, p_holm)
    return results


def run(eval_dir: Path, log_dir: Path, frontier_dir: Path, ablation_dir: Path, robustness_dir: Path, wide_dir: Path,
        baselines_file: Path, reference_file: Path, data_dir: Path, out_dir: Path, headline_file: Path,
        params_file: Path) -> None:
    params = load_params(params_file)
    import numpy as np

    from .. import plots, reporting
    from ..data import read_manifest
    from . import report_reference, report_studies, report_verdict
    from ..io import read_json, staged_dir, write_json
    from ..provenance import git_commit
    from ..reporting import METRICS, mean_ci
    from ..stats import summarize

    manifest = read_manifest(data_dir)
    variants = _load_variants(Path(eval_dir), Path(frontier_dir), Path(log_dir))
    baselines = read_json(baselines_file)
    ablations = {p.stem: read_json(p) for p in sorted(Path(ablation_dir).glob("*.json"))}
    wide = [read_json(Path(wide_dir) / f"seed-{seed}.json") for seed in params.seeds]  # not stale seeds' files
    pca_fvu = np.array(baselines["pca_fvu"])
    e = params.evaluate
    theta, thresholds = e.active_threshold, sorted(e.thresholds)
    dataset, n_seeds = manifest["dataset"], len(params.seeds)
    archs = [a for a in ARCHITECTURES if any(v["arch"] == a for v in variants.values())]
    results = analyse(variants, thresholds, theta, pca_fvu, params.sweep.l0_range)
    report_studies.add_robustness(results, report_studies.load_robustness(robustness_dir), theta,
                                  params.robustness.seed, params.sweep.l0_range)
    all_points = [pt for v in variants.values() for pt in v["frontier"]["points"]]
    converged = [pt["training"]["convergence"]["converged"] for pt in all_points]
    batches = -(-min(params.train.max_samples or 60000, manifest["counts"]["train"]) // params.train.batch_size)
    epochs = {arch: params.train.of(arch).epochs for arch in archs}
    budget = ", ".join(f"{arch} {epochs[arch]} epochs = {batches * epochs[arch]:,} steps" for arch in archs)
    tolerance = all_points[0]["training"]["convergence"]["tolerance"]

    # Checks the issue tracker asked the results to meet, each computed here.
    checks = []
    checks.append((all(converged), f"every run converged ({sum(converged)} of {len(converged)} frontier runs; "
                                   "criterion in *Convergence*)"))
    for arch in archs:
        for penalty, limit in (("none", 0.02), ("l1", 0.10), ("kl", 0.10)):
            v = variants.get(f"{arch}-{penalty}")
            if v:
                checks.append(reporting.dead_unit_check(f"{arch}-{penalty}", arch, [s["metrics"] for s in v["seeds"]],
                                                        limit))
    if "linear-none" in variants:
        half = params.model.linear.hidden // 2
        fvu_none = variants["linear-none"]["stats"]["fvu"].mean
        checks.append((fvu_none < pca_fvu[half - 1], f"unpenalised linear FVU {fvu_none:.4f} below PCA with {half} "
                                                      f"components ({pca_fvu[half - 1]:.4f})"))
    for arch, r in results.items():
        est = r["estimands"][theta]
        if est is None:
            continue
        for p in ("l1", "kl"):
            ok = bool((est[f"fvu_{p}"].mean(axis=0) < r["pca"]).all())
            checks.append((ok, f"{arch}: the {p.upper()} frontier (mean over seeds) is below PCA at k = L0 over the "
                               f"compared range L0 ≈ {est['grid'][0]:.3g} to {est['grid'][-1]:.3g}"))
    for arch in archs:
        v = variants.get(f"{arch}-kl")
        if v:
            err = max(s["metrics"]["rho_hat_relative_error"] for s in v["seeds"])
            checks.append((err <= 0.1, f"{arch}-kl at its default reaches its target: mean |ρ̂ − ρ| / ρ ≤ 0.1 on every "
                                       f"seed (largest {err:.3f})"))
    placement = {arch: {p: reporting.placement(variants[f"{arch}-{p}"]["frontier"]["points"], theta,
                                               params.sweep.l0_range.of(arch))
                        for p in PENALTIES if p != "none" and f"{arch}-{p}" in variants} for arch in archs}
    placed_counts = {arch: {p: reporting.placement_counts(rows) for p, rows in placed.items()}
                     for arch, placed in placement.items()}
    for arch, counts in placed_counts.items():
        if "l1" in counts and "kl" in counts:
            inside = {p: counts[p]["inside"] for p in ("l1", "kl")}
            checks.append((abs(inside["l1"] - inside["kl"]) <= 1,
                           f"{arch}: L1 and KL put as many settings inside the declared L0 range "
                           f"{'–'.join(f'{b:g}' for b in params.sweep.l0_range.of(arch))} (±1): "
                           f"L1 {inside['l1']}, KL {inside['kl']}"))
    reference = read_json(reference_file)
    reference_md, reference_check = "", None
    if "linear-l1" in variants:
        reference_md, reference_check = report_reference.section(
            reference, variants["linear-l1"]["frontier"]["points"], theta,
            report_reference.our_settings(params, min(params.train.max_samples or math.inf, manifest["counts"]["train"])))
    if reference_check is not None:
        checks.append(reference_check)
    probes_ok = [pt["metrics"]["probe_converged"] == 1.0 for pt in all_points if "probe_converged" in pt["metrics"]]
    checks.append((all(probes_ok), f"every probe converged ({sum(probes_ok)} of {len(probes_ok)})"))

    with staged_dir(out_dir) as out:
        figures = out / "figures"
        figures.mkdir()
        for arch, r in results.items():
            grids = {t: (est["grid"] if est else None) for t, est in r["estimands"].items()}
            drawn = report_reference.drawn(reference, theta) if arch == "linear" else None
            plots.save(plots.frontiers(arch, thresholds, r["points"], pca_fvu, r["fronts"], grids, reference=drawn),
                       figures / f"frontier-{arch}.png")
        report_verdict.save_figures(results, theta, figures)
        report_studies.save_robustness_figures(results, theta, figures)
        plots.save(plots.reconstruction_grid({n: v["arrays"] for n, v in variants.items()}), figures / "reconstructions.png")
        for name, v in variants.items():
            plots.save(plots.feature_grid(v["arrays"]["features"], v["arrays"]["firing_frequency"], name),
                       figures / f"features-{name}.png")
        for arch in archs:
            names = [n for n, v in variants.items() if v["arch"] == arch]
            first_history = {n: next(iter(variants[n]["history"].values())) for n in names}
            plots.save(plots.loss_curves(first_history, f"{arch}: training objective (first seed)", column="loss"),
                       figures / f"loss-{arch}.png")
            plots.save(plots.activation_histograms({n: variants[n]["arrays"]["activation_sample"] for n in names}, theta),
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
        if params.smoke:
            title = f"SMOKE RUN, NOT FOR CITING: {title}"
        md.append(f"# {title}\n")
        if params.smoke:
            md.append("> **Smoke run.** These numbers come from the quick profile (`make quick`: a subset of the "
                      "images, few epochs, small models). They check that the pipeline runs end to end; do not cite "
                      "them. The reference results come from `dvc repro` with the committed `params.yaml`.\n")
        if manifest["is_fallback"]:
            md.append(
                f"> **Warning: offline fallback.** These results come from **{dataset}**, "
                f"{manifest['counts']['train']} training and {manifest['counts']['test']} test images, not full MNIST. "
                f"Do not cite them as MNIST results. With a mirror reachable (or `$MNIST_MIRROR` set), "
                f"upgrade with `{manifest['upgrade_command']}`.\n"
            )
        md.append(
            f"Generated by the `report` stage from result files; dataset **{dataset}** "
            f"({manifest['counts']['train']} train / {manifest['counts']['test']} test images), every frontier point "
            f"trained on each of {n_seeds} seed(s) ({', '.join(map(str, params.seeds))}). Every number, check and "
            "comparison sentence below is computed from those files.\n"
        )

        md.append(report_verdict.verdict_section(results, thresholds, theta))

        md.append("## Checks\n")
        md.append("\n".join(f"- {_check(ok)} {text}" for ok, text in checks) + "\n")

        md.append("## What was trained\n")
        r_ = params.recipe
        md.append(
            f"Every model of an architecture has the same width (linear 784 → {params.model.linear.hidden} → 784; "
            f"conv: an 8×8 stride-4 convolution to {params.model.conv.channels} × 7 × 7 code maps and its transposed "
            "convolution back), the same data, optimiser (Adam, "
            f"lr {params.train.lr:g}), batch size {params.train.batch_size}, budget ({budget}) and recipe, and a "
            "decoder with unit-norm columns and a per-pixel bias. They differ only in "
            "the penalty and the code activation it needs. The recipe, identical for every variant (see *Recipe "
            f"ablation*): the encoder sees x − b_dec, b_dec starting at the training mean (`center_input`: "
            f"{r_.center_input}); the encoder starts as the decoder's transpose (`encoder_from_decoder`: "
            f"{r_.encoder_from_decoder}); before each Adam step, each unit's decoder gradient loses its component "
            "along the unit's decoder weights, which only changes their norm and which the renormalisation after the "
            f"step undoes (`project_decoder_grad`: {r_.project_decoder_grad}); the learning rate rises linearly over "
            f"the first {r_.lr_warmup:.0%} of steps, "
            f"then follows a {r_.lr_decay} decay to {r_.lr_final:g} × lr"
            + (f", held there for the last {r_.lr_hold:.0%} of steps" if r_.lr_hold else "")
            + "; the penalty coefficient rises linearly over "
            f"the first {r_.penalty_warmup:.0%} of steps.\n"
        )
        frontier_sizes = {n: len({json.dumps(pt['setting'], sort_keys=True) for pt in v['frontier']['points']})
                          for n, v in variants.items()}
        md.append(reporting.markdown_table(
            ["penalty", "code activation", "loss term", "default setting (per arch)", "frontier settings (per arch)"],
            [["none", "ReLU", "– (unpenalised reference)", "–", "1"],
             ["L1", "ReLU", "λ · mean over images of Σⱼ\\|zⱼ\\|",
              "; ".join(f"{a}: λ = {params.penalty.of('l1', a).lam:g}" for a in ARCHITECTURES),
              ", ".join(str(frontier_sizes.get(f"{a}-l1", 0)) for a in ARCHITECTURES)],
             ["KL", "scale · sigmoid", "β · Σⱼ KL(ρ ‖ ρ̂ⱼ), ρ̂ⱼ the batch mean of sigmoid(uⱼ)",
              "; ".join(f"{a}: β = {params.penalty.of('kl', a).beta:g}, ρ = {params.penalty.of('kl', a).rho:g}, "
                        f"scale {params.penalty.of('kl', a).scale:g}" for a in ARCHITECTURES),
              ", ".join(str(frontier_sizes.get(f"{a}-kl", 0)) for a in ARCHITECTURES)],
             ["TopK (reference)", "the k largest pre-activations, ReLU", "–",
              "; ".join(f"{a}: k = {params.penalty.of('topk', a).k}" for a in ARCHITECTURES),
              ", ".join(str(frontier_sizes.get(f"{a}-topk", 0)) for a in ARCHITECTURES)]],
        ))
        md.append("The frontier settings are in `params.yaml` (`penalty:` and `sweep:`); every one is trained on every "
                  "seed, the default setting being one of them.\n")
        md.append(f"Where each setting lies (L0 at threshold {theta:g}, mean over seeds) against the declared range "
                  "`sweep.l0_range` the verdict is read over. The placement rule: L1 and KL each put the same number "
                  "of settings inside it (±1), spaced roughly evenly in log L0, with one reference setting beyond "
                  "each end.\n")
        for arch in archs:
            lo, hi = params.sweep.l0_range.of(arch)
            rows, counted = [], []
            for penalty in ("l1", "kl", "topk"):
                v = variants.get(f"{arch}-{penalty}")
                if v is None:
                    continue
                placed, counts = placement[arch][penalty], placed_counts[arch][penalty]
                counted.append(f"{PENALTY_LABEL[penalty]} {counts['inside']} inside, {counts['below']} below, "
                               f"{counts['above']} above")
                rows += [[PENALTY_LABEL[penalty], ", ".join(f"{k} {x:g}" for k, x in p["setting"].items()),
                          f"{p['l0']:.1f}", p["where"]] for p in placed]
            md.append(f"{arch}, range L0 {lo:g}–{hi:g}: " + "; ".join(counted) + ".\n")
            md.append(reporting.markdown_table(["penalty", "setting", "L0", "against the range"], rows))

        md.append("## Matched sparsity: the FVU–L0 frontiers\n")
        md.append(
            "Each dot is one run (one setting, one seed); each line one seed's frontier for one penalty, the runs not "
            "beaten by a sparser one (for KL: its best envelope over the code scales). The dashed line is PCA with k "
            "components (the best k-dimensional linear code, its L0 is k). The shaded band is the L0 range of the "
            "primary estimand. One panel per activity threshold: L0 and FVU are both recomputed at each (the "
            "truncated code), without retraining.\n"
        )
        for arch, r in results.items():
            md.append(f"### {arch}\n")
            md.append(f"![{arch} frontier](figures/frontier-{arch}.png)\n")
            if arch == "linear" and reference_md:
                md.append(reference_md)
            est = r["estimands"][theta]
            if est is None:
                continue
            rows = []
            for i, l0 in enumerate(est["grid"]):
                rows.append([reporting.l0_text(l0), f"{est['fvu_l1'][:, i].mean():.4f}",
                             f"{est['fvu_kl'][:, i].mean():.4f}",
                             _mean_where_reached(r["topk"][:, i]) if "topk" in r else "–", f"{r['pca'][i]:.4f}"])
            md.append(f"Secondary: the frontiers read at each L0 of the grid (threshold {theta:g}; means over seeds; "
                      f"{reporting.INTERPOLATION[est['log_fvu']]}; KL − L1 with its intervals: *Verdict*).\n")
            md.append(reporting.markdown_table(["L0", "FVU L1", "FVU KL", "FVU TopK", "FVU PCA (k = L0)"], rows))
            if r["capped"] is not None:
                d = r["capped"]["difference"]
                md.append(f"KL with the sigmoid cap (code scale 1 only) against L1, same definition: KL − L1 = "
                          f"{d.diff:+.4f} FVU [{d.ci_low:+.4f}, {d.ci_high:+.4f}] over the covered range L0 ≈ "
                          + "–".join(map(reporting.l0_text, r["capped"]["covered"])) + " (secondary).\n")

        md.append(report_studies.ablation_section(ablations, params.ablation.seed))
        md.append(report_studies.robustness_section(results, theta, params.robustness.seed,
                                                    {s: params.robustness.factors(s) for s in STUDIES}))

        md.append("## KL on equal terms\n")
        md.append(
            "A sigmoid code times a unit-norm decoder column adds a pattern of norm at most 1, where a ReLU unit's "
            "reaches any norm. The KL code is z = s · sigmoid(u) with a fixed scale s, swept over the values below; "
            "the frontier takes KL's best envelope over s. s is fixed, not learned per unit: a learned gain could trade "
            "places with the bias (g·σ(u) ≈ σ(u + ln g) for small σ) and meet ρ̂ = ρ without changing what the model "
            "computes. Per scale (means over seeds of every KL run with that scale, whatever its path's β and ρ):\n"
        )
        for arch in archs:
            if f"{arch}-kl" not in variants:
                continue
            by_scale: dict[float, list] = {}
            for pt in variants[f"{arch}-kl"]["frontier"]["points"]:
                by_scale.setdefault(pt["setting"]["scale"], []).append(pt["metrics"])
            rows = [[arch, f"{s:g}", f"{np.mean([m['saturated_fraction'] for m in ms]):.4f}",
                     f"{np.mean([m['rho_hat_relative_error'] for m in ms]):.3f}",
                     f"{min(m['fvu'] for m in ms):.4f}", f"{np.mean([m['fvu_untruncated'] for m in ms]):.4f}"]
                    for s, ms in sorted(by_scale.items())]
            md.append(reporting.markdown_table(["arch", "scale s", "saturated (σ > 0.99)", "mean \\|ρ̂ − ρ\\|/ρ", "best FVU",
                              "mean FVU untruncated"], rows))
        if kl_names:
            md.append("At the default setting: " + "; ".join(
                f"{n}: mean |ρ̂ⱼ − ρ| / ρ = {mean_ci(variants[n]['stats']['rho_hat_relative_error'], '.3f')}"
                for n in kl_names) + " (target ≤ 0.1).\n")
            md.append("![rho hat](figures/rho-hat.png)\n")

        md.append("## Every variant at its default setting (test set, mean [95% CI] over seeds)\n")
        md.append("Dead and always-on units: the count on each seed, in seed order.\n")
        rows = [[name] + [_cell(v, k, mean_ci) for k in MAIN_COLUMNS] for name, v in variants.items()]
        md.append(reporting.markdown_table(["variant"] + [METRICS[k][0] for k in MAIN_COLUMNS], rows))
        for arch in archs:
            if f"{arch}-l1" in variants and f"{arch}-kl" in variants:
                comparisons = reporting.compare_seeds(variants[f"{arch}-l1"]["seeds"], variants[f"{arch}-kl"]["seeds"])
                md.append(f"{arch}, KL − L1 at the default settings, paired by seed (secondary; the defaults differ in "
                          "sparsity, so see the frontiers for reconstruction):\n")
                md.append("\n".join(f"- {c['sentence']}" for c in comparisons) + "\n")

        md.append("## Convergence\n")
        rows = []
        for name, v in variants.items():
            pts = v["frontier"]["points"]
            changes = [pt["training"]["convergence"]["relative_change_last_tenth"] for pt in pts]
            n_ok = sum(pt["training"]["convergence"]["converged"] for pt in pts)
            fvu_changes = [pt["training"]["convergence"]["fvu_change_last_tenth"] for pt in pts]
            rows.append([name, f"{n_ok} / {len(pts)}", f"{max(changes):+.4f}", f"{max(fvu_changes):+.5f}"])
        md.append("Every run records the mean training objective over each tenth of its steps. Converged: the last "
                  f"tenth's mean moved by less than {tolerance['relative']:.0%} of itself from the one before, or by "
                  f"less than {tolerance['fvu']:g} in FVU units (the change divided by the training data's variance). "
                  "The second clause is for nearly lossless models (FVU ≈ 0.001–0.01), whose objective heads to 0: "
                  "there 1% is a few 1e-5 of FVU, far below any difference compared here, and no budget reaches it "
                  "(`benchmarks/convergence_budget.json`). Per variant: runs converged (all settings × seeds), the "
                  "largest relative change over the last tenth, and the largest in FVU units: how much reconstruction "
                  "an unconverged run may still have to gain, roughly, at this learning rate.\n")
        md.append(reporting.markdown_table(["variant", "converged", "largest relative change in the last tenth",
                          "largest change in FVU units"], rows))
        for arch in archs:
            md.append(f"![{arch} loss curves](figures/loss-{arch}.png)\n")

        md.append("## Training cost\n")
        md.append("Each train stage trains one stack: every frontier point of one architecture and seed together. Its "
                  "wall time and the images per second each model saw, on the machine named under How to cite. "
                  "Wall-clock numbers depend on what else that machine ran (a stack that shared the CPUs with "
                  "another job runs several times slower), so they are given per stack, not as an interval.\n")
        rows = []
        for arch in archs:
            first = next(v for v in variants.values() if v["arch"] == arch)
            for run in first["seeds"]:
                t = run["training"]
                rows.append([arch, str(run["seed"]), str(t["stack_size"]), f"{t['train_wall_time_s']:.0f}",
                             f"{t['train_samples_per_s']:.0f}"])
        md.append(reporting.markdown_table(["stack", "seed", "models", "wall time (s)", "images/s per model"], rows))

        md.append("## Linear probes\n")
        md.append("Logistic regression on each variant's codes of the training images, test accuracy (definition "
                  "below). At the default settings (mean [95% CI] over seeds):\n")
        rows = [[name, mean_ci(v["stats"]["probe_accuracy"], ".4f"), f"{v['frontier']['probe_C']:g}"]
                for name, v in variants.items()]
        rows += [[f"{rep} (this benchmark)", f"{r['probe_accuracy']:.4f}", f"{r['probe_C']:g}"]
                 for rep, r in baselines["probes"].items()]
        for arch, runs in baselines["random_encoders"].items():
            s = summarize([r["probe_accuracy"] for r in runs], bounds="fraction", resolution=1e-4)
            rows.append([f"untrained {arch} encoder, same width (control)", mean_ci(s, ".4f"), f"{runs[0]['probe_C']:g}"])
        rows.append([f"{baselines['published'][0]['representation']} (published)",
                     f"≈ {baselines['published'][0]['accuracy']:.3f}", "–"])
        md.append(reporting.markdown_table(["representation", "test accuracy", "C"], rows))
        for arch, r in results.items():
            if "probe" not in r:
                continue
            est = r["estimands"][theta]
            rows = [[f"{l0:.3g}", f"{np.nanmean(r['probe']['l1'][:, i]):.4f}", f"{np.nanmean(r['probe']['kl'][:, i]):.4f}",
                     f"{d.diff:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"]
                    for i, (l0, d) in enumerate(zip(est["grid"], r["probe_difference"]))]
            md.append(f"{arch}: probe accuracy along the frontiers at matched L0 (interpolated like FVU; secondary):\n")
            md.append(reporting.markdown_table(["L0", "probe L1", "probe KL", "KL − L1 [95% CI]"], rows))
        unconverged = sorted({pt["name"] for v in variants.values() for pt in v["frontier"]["points"]
                              if pt["metrics"].get("probe_converged", 1.0) != 1.0})
        md.append(f"lbfgs converged on every probe ({len(probes_ok)}).\n" if not unconverged else
                  f"> lbfgs stopped at its iteration limit ({params.probe.max_iter}) for: {', '.join(unconverged)}.\n")
        chosen = {name: v["frontier"]["probe_C"] for name, v in variants.items()}
        chosen |= {rep: r["probe_C"] for rep, r in baselines["probes"].items()}
        chosen |= {f"untrained {arch} encoder": runs[0]["probe_C"] for arch, runs in baselines["random_encoders"].items()}
        chosen |= {f"wide {m['variant']} (seed {w['seed']})": m["metrics"]["probe_C"] for w in wide for m in w["models"]}
        grid = ", ".join(f"{c:g}" for c in params.probe.C)
        at_edge = reporting.probes_at_grid_edge(chosen, params.probe.C)
        md.append(f"Every chosen C lies inside the grid ({grid}).\n" if not at_edge else
                  f"> C is at the edge of the grid ({grid}), where a C beyond it may do better, for: "
                  f"{', '.join(at_edge)}.\n")
        if wide:
            md.append(report_studies.wide_section(wide, baselines["published"][1]))

        md.append("## Features\n")
        md.append("Firing frequency of every code unit (conv: channel active anywhere on the image), log scale; dead "
                  "units are counted in the legend.\n")
        for arch in archs:
            md.append(f"![{arch} firing frequencies](figures/firing-{arch}.png)\n")
        md.append("Decoder weights of the most often active units (linear: decoder columns as 28×28 images; conv: 8×8 "
                  "transposed-convolution filters), red positive, blue negative, first seed.\n")
        for name in variants:
            md.append(f"![features {name}](figures/features-{name}.png)\n")
        md.append("## Reconstructions and activations\n")
        md.append("The first test images (top row) and each variant's reconstruction from its truncated code (first seed).\n")
        md.append("![reconstructions](figures/reconstructions.png)\n")
        for arch in archs:
            md.append(f"![{arch} activations](figures/activations-{arch}.png)\n")

        md.append("## Metric definitions\n")
        md.append(METRIC_DEFINITIONS.format(threshold=theta, thresholds=", ".join(f"{t:g}" for t in thresholds),
                                            always_pct=100 * e.always_on_above, max_iter=params.probe.max_iter,
                                            C=", ".join(f"{c:g}" for c in params.probe.C),
                                            validation_pct=100 * params.probe.validation,
                                            relative_pct=100 * tolerance["relative"], fvu_tol=tolerance["fvu"],
                                            probe_images=(f"the first {params.probe.max_samples:,} training images"
                                                          if params.probe.max_samples else "every training image")))
        md.append("## Appendix: every metric at the default settings (mean; sd; 95% CI)\n")
        md.append("Dead and always-on units: the count on each seed, in seed order.\n")
        keys = [k for k in METRICS if any(k in v["stats"] for v in variants.values())]
        rows = [[METRICS[k][0]] + [_cell(v, k, reporting.full_summary) for v in variants.values()] for k in keys]
        md.append(reporting.markdown_table(["metric"] + list(variants), rows))

        first = next(iter(variants.values()))["seeds"][0]
        env = first["training"]["environment"]
        commits = sorted({pt["training"]["git_commit"] for pt in all_points})
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
            f"- MLflow experiment `{params.tracking.experiment}`: a parent run per stack (architecture and seed) with a "
            "child run per model (run ids in `frontier/<variant>.json`)",
        ]) + "\n")
        md.append("Parameters (`params.yaml`):\n\n```yaml\n" + Path(params_file).read_text().strip() + "\n```\n")
        text = "\n".join(md)
        (out / "report.md").write_text(text)
        (out / "report.html").write_text(reporting.markdown_to_html(text, out, title))

        estimand_json = report_verdict.estimand_json
        write_json(out / "summary.json", {
            "dataset": dataset, "data_digest": manifest["digest"], "params_sha256": params_sha, "git_commits": commits,
            "smoke": params.smoke,
            "variants": {n: {k: s.__dict__ for k, s in v["stats"].items()} for n, v in variants.items()},
            "primary": {a: {"threshold": theta, "holm_p": r["holm_p"], **(estimand_json(r["estimands"][theta]) or {})}
                        for a, r in results.items()},
            "by_threshold": {a: {f"{t:g}": estimand_json(est) for t, est in r["estimands"].items()}
                             for a, r in results.items()},
            "sensitivity": {a: {"threshold": theta, **(estimand_json(r.get("sensitivity")) or {})}
                            for a, r in results.items()},
            "checks": [{"ok": bool(ok), "check": text} for ok, text in checks],
            "verdicts": {a: r["verdict"] for a, r in results.items()},
            "robustness": report_studies.robustness_json(results),
        })
    write_json(headline_file, headline(variants, results, theta))
    log_report(params, Path(out_dir), dataset, manifest["digest"], results, theta)
    print(f"report for {len(variants)} variants on {dataset} -> {Path(out_dir) / 'report.md'} and report.html")


HEADLINE_METRICS = {"fvu": "fvu", "l0": "l0", "dead_fraction": "dead", "probe_accuracy": "probe"}


def headline(variants: dict, results: dict, theta: float) -> dict:
    """The few numbers `dvc exp show` shows: each architecture's primary estimand, each default's key metrics."""
    out = {"primary": {}}
    for arch, r in results.items():
        est = r["estimands"][theta]
        if est is not None:
            d = est["difference"]
            out["primary"][arch] = {"kl_minus_l1_fvu": round(d.diff, 6), "ci_low": round(d.ci_low, 6),
                                    "ci_high": round(d.ci_high, 6), "holm_p": round(r["holm_p"], 6)}
    for name, v in variants.items():
        out[name] = {short: round(v["stats"][key].mean, 6) for key, short in HEADLINE_METRICS.items()}
    return out


def log_report(params, out_dir: Path, dataset: str, digest: str, results: dict, theta: float) -> None:
    """The report as an MLflow run of its own (`report.html` opens from the UI), with the primary estimands."""
    import mlflow

    from .. import tracking
    from ..provenance import git_commit

    tracking.init_store(params.tracking.experiment)
    tags = {"dvc_stage": "report", "dataset": dataset, "data_digest": digest, "git_commit": git_commit(),
            "mlflow.note.content": f"The benchmark's report on {dataset}: open report.html under Artifacts.",
            **tracking.process_tags()}
    with mlflow.start_run(run_name="report", tags=tags):
        mlflow.log_artifact(str(out_dir / "report.html"))
        mlflow.log_artifact(str(out_dir / "summary.json"))
        mlflow.log_metrics({f"{arch}_kl_minus_l1_fvu": r["estimands"][theta]["difference"].diff
                            for arch, r in results.items() if r["estimands"][theta] is not None})
