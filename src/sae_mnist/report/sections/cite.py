"""Metric definitions, and How to cite: the code, parameters, data and environment every number came from, and
params.yaml in full."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..inputs import Inputs

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
| probe acc. | test accuracy of a multinomial logistic regression (scikit-learn, lbfgs, standardised features, at most {max_iter} iterations) trained on the codes of {probe_images}; its inverse regularisation C is chosen from {C} by accuracy on {C_split}, once per variant on its default setting's first seed, and kept for all its probes. Every variant's default setting is probed by its evaluate stage, every other point of the L1 and KL frontiers by the probes study (the report reads probe accuracy along them) |
| converged | the training objective's mean over the last 10% of steps moved by less than {relative_pct:g}% of itself from its mean over the 10% before, or by less than {fvu_tol:g} in FVU units (see *Convergence*) |

Statistics: "mean [lo, hi]" is the mean over seeds and the 95% interval of the mean from Student's t with n − 1
degrees of freedom, computed where the metric's bounds are respected: on logits for fractions (probe accuracy),
on logs for FVU and MSE, then mapped back (a value on a bound is moved half a unit of resolution inside first).
Dead and always-on units are counts per seed, without an interval: a conv code has 32 channels, one of them 3.1%. With 3 seeds a t interval has 2 degrees of freedom (t = 4.30): intervals are wide, and a
difference can be real yet not significant. Differences KL − L1 are **paired** by seed (the same seed gives L1
and KL the same initial weights and batches), with the paired t interval and test.
"""


def definitions_section(inputs: Inputs) -> str:
    params, tolerance = inputs.params, inputs.tolerance
    probe = params.probe  # C and max_iter; its images and split: probe_words
    return "## Metric definitions\n\n" + METRIC_DEFINITIONS.format(
        threshold=inputs.theta, thresholds=", ".join(f"{t:g}" for t in inputs.thresholds),
        always_pct=100 * params.evaluate.always_on_above, max_iter=probe.max_iter,
        C=", ".join(f"{c:g}" for c in probe.C), relative_pct=100 * tolerance["relative"], fvu_tol=tolerance["fvu"],
        **probe_words(inputs))


def probe_words(inputs: Inputs) -> dict[str, str]:
    """The probe's training images and where its C is chosen: the fit and validation splits."""
    first = f"the first {inputs.params.probe.max_samples:,} fit-split images" if inputs.params.probe.max_samples \
        else "every fit-split image"
    return {"probe_images": first, "C_split": "the validation split (a probe fitted on the fit split at each C)"}


def params_sha256(params_file: Path) -> str:
    return hashlib.sha256(Path(params_file).read_bytes()).hexdigest()


def training_commits(inputs: Inputs) -> list[str]:
    return sorted({pt["training"]["git_commit"] for pt in inputs.all_points})


def section(inputs: Inputs, params_file: Path, report_commit: str) -> str:
    manifest = inputs.manifest
    env = next(iter(inputs.variants.values())).seeds[0]["training"]["environment"]
    md = ["## How to cite\n",
          "Cite the benchmark with the metadata in `CITATION.cff` at the repository root, and name the exact "
          "results you quote by the identifiers below: together they pin the code, the parameters and the data, "
          "and `dvc repro` at that commit reproduces every number (bit for bit on the same CPU and thread count).\n"]
    md.append("\n".join([
        f"- code: git commit of training {', '.join(f'`{c}`' for c in training_commits(inputs))}; report generated "
        f"at `{report_commit}`",
        f"- parameters: `params.yaml` SHA-256 `{params_sha256(params_file)}` (in full below)",
        f"- data: **{manifest['dataset']}**, digest `{manifest['digest']}`, from {', '.join(manifest['source'])}",
        "- data files (MD5 of uncompressed content): " + ", ".join(
            f"`{name}` {f['md5']}" for name, f in manifest["files"].items()),
        f"- device: {env['device']}; Python {env['python']} on {env['platform']}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()),
        f"- MLflow experiment `{inputs.params.tracking.experiment}`: a parent run per stack (architecture and seed) "
        "with a child run per model (run ids in `frontier/<variant>.json`)",
    ]) + "\n")
    md.append("Parameters (`params.yaml`):\n\n```yaml\n" + Path(params_file).read_text().strip() + "\n```\n")
    return "\n".join(md)
