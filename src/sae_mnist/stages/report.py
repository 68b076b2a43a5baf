"""`report`: the Markdown and HTML report and its figures, generated from result files (sae_mnist.report).

Reads only files (no torch), and logs the report to an MLflow run of its own: per-seed default-setting metrics
(`eval/`), every frontier point (`frontier/`), each penalty's learning rate (`lr_select/`), the recipe ablation
(`ablation/`), the robustness studies (`robustness/`), any extra seeds (`sparse_end/`), the wide configuration
(`wide/`), loss logs, the baselines and the reference implementation's frontiers. The "How to cite" block names the
code, params, data and environment they came from.
"""

from __future__ import annotations

from pathlib import Path

from ..params import load_params


def run(eval_dir: Path, log_dir: Path, frontier_dir: Path, ablation_dir: Path, robustness_dir: Path, wide_dir: Path,
        baselines_file: Path, reference_files: list[Path], lr_select_dir: Path, data_dir: Path, out_dir: Path,
        headline_file: Path, params_file: Path, sparse_end_dir: Path | None = None,
        probes_dir: Path | None = None) -> None:
    params = load_params(params_file)  # invalid params fail here, before anything is read
    from ..report.build import build
    from ..report.inputs import ReportPaths

    build(ReportPaths(eval=Path(eval_dir), logs=Path(log_dir), frontier=Path(frontier_dir),
                      ablation=Path(ablation_dir), robustness=Path(robustness_dir), wide=Path(wide_dir),
                      baselines=Path(baselines_file), references=tuple(Path(f) for f in reference_files),
                      lr_select=Path(lr_select_dir), data=Path(data_dir), out=Path(out_dir),
                      headline=Path(headline_file), params=Path(params_file),
                      sparse_end=None if sparse_end_dir is None else Path(sparse_end_dir),
                      probes=None if probes_dir is None else Path(probes_dir)), params)
