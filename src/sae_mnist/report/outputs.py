"""What the report stage writes besides report.md and report.html: summary.json (every number the report states,
for `make verify` and other readers), headline.json (what `dvc exp show` shows) and its MLflow run."""

from __future__ import annotations

from pathlib import Path

from ..estimand import Estimand
from ..params import PENALTIES
from .analysis import ArchResult
from .checks import Check
from .inputs import Inputs
from .sections.robustness import robustness_json
from .sections.thresholds import LabelledCurve, curves_json

HEADLINE_METRICS = {"fvu": "fvu", "l0": "l0", "dead_fraction": "dead", "probe_accuracy": "probe"}


def _json(est: Estimand | None) -> dict | None:
    return None if est is None else est.as_json()


def summary(inputs: Inputs, results: dict[str, ArchResult], checks: list[Check], params_sha256: str,
            commits: list[str], curves: dict[str, list[LabelledCurve]] | None = None) -> dict:
    """Every number the report states. `make verify` recomputes "variants", "primary", "by_threshold",
    "sensitivity" and "robustness" (keep their names and meaning); "learning_rates", "equivalence_margin" and
    "labelled" (every threshold's labelled curve and its crossings) came with the validation protocol."""
    theta, manifest = inputs.theta, inputs.manifest
    return {
        "dataset": manifest["dataset"], "data_digest": manifest["digest"], "params_sha256": params_sha256,
        "git_commits": commits, "smoke": inputs.params.smoke,
        "variants": {n: {k: s.__dict__ for k, s in v.stats.items()} for n, v in inputs.variants.items()},
        "primary": {a: {"threshold": theta, "holm_p": r.holm_p, **(_json(r.estimands[theta]) or {})}
                    for a, r in results.items()},
        "by_threshold": {a: {f"{t:g}": _json(est) for t, est in r.estimands.items()} for a, r in results.items()},
        "sensitivity": {a: {"threshold": theta, **(_json(r.sensitivity) or {})} for a, r in results.items()},
        "checks": [{"ok": bool(c.ok), "check": c.text} for c in checks],
        "verdicts": {a: r.verdict for a, r in results.items()},
        "robustness": robustness_json(results),
        "learning_rates": {arch: {p: inputs.lr(arch, p) for p in PENALTIES if f"{arch}-{p}" in inputs.variants}
                           for arch in inputs.archs},
        "equivalence_margin": inputs.params.verdict.margin,
        "labelled": curves_json(curves or {}),
    }


def headline(inputs: Inputs, results: dict[str, ArchResult]) -> dict:
    """The few numbers `dvc exp show` shows: each architecture's primary estimand, each default's key metrics."""
    out = {"primary": {}}
    for arch, r in results.items():
        est = r.estimands[inputs.theta]
        if est is not None:
            d = est.difference
            out["primary"][arch] = {"kl_minus_l1_fvu": round(d.diff, 6), "ci_low": round(d.ci_low, 6),
                                    "ci_high": round(d.ci_high, 6), "holm_p": round(r.holm_p, 6)}
    for name, v in inputs.variants.items():
        out[name] = {short: round(v.stats[key].mean, 6) for key, short in HEADLINE_METRICS.items()}
    return out


def log_report(inputs: Inputs, out_dir: Path, results: dict[str, ArchResult]) -> None:
    """The report as an MLflow run of its own (`report.html` opens from the UI), with the primary estimands."""
    import mlflow

    from .. import tracking
    from ..provenance import git_commit

    dataset, theta = inputs.manifest["dataset"], inputs.theta
    tracking.init_store(inputs.params.tracking.experiment)
    tags = {"dvc_stage": "report", "dataset": dataset, "data_digest": inputs.manifest["digest"],
            "git_commit": git_commit(),
            "mlflow.note.content": f"The benchmark's report on {dataset}: open report.html under Artifacts.",
            **tracking.process_tags()}
    with mlflow.start_run(run_name="report", tags=tags):
        mlflow.log_artifact(str(out_dir / "report.html"))
        mlflow.log_artifact(str(out_dir / "summary.json"))
        mlflow.log_metrics({f"{arch}_kl_minus_l1_fvu": r.estimands[theta].difference.diff
                            for arch, r in results.items() if r.estimands[theta] is not None})
