"""The report, read top to bottom: inputs -> analysis -> checks -> figures and sections -> files and MLflow."""

from __future__ import annotations

from pathlib import Path

from ..io import staged_dir, write_json
from ..params import STUDIES, Params
from . import outputs
from .analysis import ArchResult, analyse, placements
from .checks import Check, all_checks
from .html import markdown_to_html
from .inputs import Inputs, ReportPaths, load_inputs
from .sections import (cite, dead_units, decisions, defaults, features, frontiers, kl_terms, learning_rates, overview,
                       probes, reference, robustness, studies, thresholds, trained, training, verdict)
from .sections.thresholds import LabelledCurve
from .text import check_mark


def save_figures(inputs: Inputs, results: dict[str, ArchResult], curves: dict[str, list[LabelledCurve]],
                 figures: Path) -> None:
    figures.mkdir()
    frontiers.save_figures(inputs, results, figures)
    verdict.save_figures(results, inputs.theta, figures)
    thresholds.save_figures(curves, inputs.theta, inputs.params.verdict.margin, figures)
    robustness.save_figures(results, inputs.theta, figures)
    features.save_reconstructions_and_features(inputs, figures)
    for arch in inputs.archs:
        training.save_loss_figure(inputs, arch, figures)
        features.save_arch_figures(inputs, arch, figures)
    kl_terms.save_figures(inputs, figures)


def markdown(inputs: Inputs, results: dict[str, ArchResult], curves: dict[str, list[LabelledCurve]], placed: dict,
             checks: list[Check], reference_md: str, params_file: Path, report_commit: str) -> str:
    """report.md, section by section (sae_mnist.report.sections): the verdict and every threshold's labelled
    curve first, then what was trained, on which split each choice was made and at which rates, the frontiers."""
    params = inputs.params
    return "\n".join([
        overview.section(inputs),
        verdict.section(results, inputs.thresholds, inputs.theta),
        thresholds.section(curves, inputs.theta, params.verdict.margin, inputs.sparse_end),
        "## Checks\n", "\n".join(f"- {check_mark(c.ok)} {c.text}" for c in checks) + "\n",
        trained.section(inputs, placed),
        decisions.section(inputs, placed),
        learning_rates.section(inputs.selections, inputs.theta,
                               {arch: params.sweep.l0_range.of(arch) for arch in inputs.selections}),
        frontiers.section(inputs, results, reference_md),
        studies.ablation_section(inputs.ablations, params.ablation.seed),
        robustness.section(results, inputs.theta, params.robustness.seed,
                           {s: params.robustness.factors(s) for s in STUDIES}),
        kl_terms.section(inputs),
        defaults.section(inputs),
        training.convergence_section(inputs),
        dead_units.section(inputs, results),
        training.cost_section(inputs),
        probes.section(inputs, results),
        features.section(inputs),
        cite.definitions_section(inputs),
        defaults.appendix(inputs),
        cite.section(inputs, params_file, report_commit),
    ])


def build(paths: ReportPaths, params: Params) -> None:
    """The report stage: report.md, report.html and figures, summary.json (all under paths.out, written whole or
    not at all), headline.json, and an MLflow run holding the report."""
    from ..provenance import git_commit

    inputs = load_inputs(paths, params)
    results = analyse(inputs)
    robustness.add_robustness(results, inputs.robustness, inputs.theta, params.robustness.seed,
                              params.sweep.l0_range)
    curves = thresholds.all_curves(results, inputs.theta, params.verdict.margin,
                                   {arch: params.sweep.l0_range.of(arch) for arch in results}, inputs.sparse_end)
    placed = placements(inputs)
    reference_md, reference_check = reference.for_inputs(inputs)
    checks = all_checks(inputs, results, placed, reference_check)
    with staged_dir(paths.out) as out:
        save_figures(inputs, results, curves, out / "figures")
        text = markdown(inputs, results, curves, placed, checks, reference_md, paths.params, git_commit())
        (out / "report.md").write_text(text)
        (out / "report.html").write_text(markdown_to_html(text, out, overview.title(inputs)))
        write_json(out / "summary.json", outputs.summary(inputs, results, checks, cite.params_sha256(paths.params),
                                                         cite.training_commits(inputs), curves))
    write_json(paths.headline, outputs.headline(inputs, results))
    outputs.log_report(inputs, Path(paths.out), results)
    print(f"report for {len(inputs.variants)} variants on {inputs.manifest['dataset']} -> "
          f"{Path(paths.out) / 'report.md'} and report.html")
