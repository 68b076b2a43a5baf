"""The report's inputs: the result files of the other stages, read into typed records (nothing computed here but
each default setting's mean and interval over seeds)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import stats
from ..io import read_json
from ..layout import stack_dir
from ..params import ARCHITECTURES, PENALTIES, Params

if TYPE_CHECKING:
    import pandas as pd

# Metrics whose interval must respect a bound (stats.summarize): fractions stay in [0, 1], FVU and MSE above 0.
BOUNDED = {"fvu": "positive", "mse": "positive", "fvu_untruncated": "positive", "dead_fraction": "fraction",
           "always_on_fraction": "fraction", "probe_accuracy": "fraction", "saturated_fraction": "fraction",
           "hoyer": "fraction"}


@dataclass(frozen=True)
class ReportPaths:
    """Where the report stage reads (each stage's outputs) and writes; dvc.yaml names them, pipeline/report.py
    passes them on."""

    eval: Path
    logs: Path
    frontier: Path
    ablation: Path
    robustness: Path
    wide: Path
    baselines: Path
    references: tuple[Path, ...]  # the reference implementation's files (benchmarks/reference_sae*.json), one a seed
    lr_select: Path  # the lr_select stages' files: <arch>.json
    data: Path
    out: Path
    headline: Path
    params: Path
    sparse_end: Path | None = None  # the sparse_end stages' files (<arch>.json), where any ran
    probes: Path | None = None  # the probes stages' files (<arch>.json): the compared frontiers' other points


@dataclass
class Variant:
    """One architecture × penalty: its default setting's evaluation per seed, and its frontier file."""

    arch: str
    penalty: str
    seeds: list[dict]  # eval/<name>/seed-<s>.json, in seed order
    stats: dict[str, stats.Summary]  # every numeric metric of the default setting over seeds
    arrays: dict[str, np.ndarray]  # the first seed's eval arrays (features, samples, firing frequencies, ρ̂)
    history: dict[int, pd.DataFrame]  # seed -> the default setting's per-epoch losses
    frontier: dict  # frontier/<name>.json: every setting × seed, and the probe's C

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.penalty}"

    @property
    def points(self) -> list[dict]:
        return self.frontier["points"]


@dataclass
class Inputs:
    """Everything the report reads, with the parameters it ran under."""

    params: Params
    manifest: dict
    variants: dict[str, Variant]
    baselines: dict
    ablations: dict[str, dict]
    robustness: dict[str, dict[str, dict]]  # arch -> study -> robustness file
    wide: list[dict]
    references: dict[str, dict]  # file name -> the reference implementation's file, in the order given
    selections: dict[str, dict]  # arch -> its lr_select file: each penalty's learning rate
    sparse_end: dict[str, dict]  # arch -> its sparse_end file (extra seeds); {} where none ran

    @property
    def theta(self) -> float:
        return self.params.evaluate.active_threshold

    @property
    def thresholds(self) -> list[float]:
        return sorted(self.params.evaluate.thresholds)

    @property
    def archs(self) -> list[str]:
        return [a for a in ARCHITECTURES if any(v.arch == a for v in self.variants.values())]

    @property
    def pca_fvu(self) -> np.ndarray:
        return np.array(self.baselines["pca_fvu"])

    @cached_property
    def all_points(self) -> list[dict]:
        return [pt for v in self.variants.values() for pt in v.points]

    @property
    def splits(self) -> dict:
        """{"fit": {"images", "sha256"}, "validation": {...}} as the frontier files record them."""
        return next(iter(self.variants.values())).frontier["splits"]

    @property
    def n_train(self) -> int:
        """The training images every model saw: the fit split's (at most train.max_samples of them)."""
        return min(self.params.train.max_samples or math.inf, self.splits["fit"]["images"])

    def lr(self, arch: str, penalty: str) -> float:
        """The base learning rate of a penalty's models: lr_select's choice (L1, KL, TopK); train.lr for `none`,
        where no lr_select file chose one."""
        chosen = self.selections.get(arch, {}).get("chosen", {})
        return chosen[penalty]["lr"] if penalty in chosen else self.params.train.lr

    @property
    def tolerance(self) -> dict:
        """The convergence criterion's tolerances (the same for every run)."""
        return self.all_points[0]["training"]["convergence"]["tolerance"]


def seed_summaries(per_seed: list[dict]) -> dict[str, stats.Summary]:
    """Mean, std and 95% interval over seeds of every numeric metric present in all seeds (bounded ones on their
    scale)."""
    keys = [k for k in per_seed[0] if all(isinstance(m.get(k), (int, float)) for m in per_seed)]
    summaries = {}
    for k in keys:
        values = [m[k] for m in per_seed]
        resolution = 1 / per_seed[0]["code_size"] if k.endswith("fraction") and "code_size" in per_seed[0] else 1e-4
        summaries[k] = stats.summarize(values, bounds=BOUNDED.get(k, "none"), resolution=resolution)
    return summaries


def load_variants(eval_dir: Path, frontier_dir: Path, log_dir: Path) -> dict[str, Variant]:
    """Every variant with a frontier file, in ARCHITECTURES × PENALTIES order."""
    import pandas as pd

    variants = {}
    for arch in ARCHITECTURES:
        for penalty in PENALTIES:
            name = f"{arch}-{penalty}"
            if not (frontier_dir / f"{name}.json").is_file():
                continue
            seeds = sorted(eval_dir.joinpath(name).glob("seed-*.json"), key=lambda p: int(p.stem.split("-")[1]))
            per_seed = [json.loads(p.read_text()) for p in seeds]
            variants[name] = Variant(
                arch=arch, penalty=penalty, seeds=per_seed,
                stats=seed_summaries([s["metrics"] for s in per_seed]),
                arrays=dict(np.load(eval_dir / name / f"{seeds[0].stem}.npz")),
                history={s["seed"]: pd.read_csv(log_dir / stack_dir(arch, penalty) / f"seed-{s['seed']}"
                                                / f"{name}.csv") for s in per_seed},
                frontier=read_json(frontier_dir / f"{name}.json"))
    if not variants:
        raise FileNotFoundError(f"no frontier files found in {frontier_dir}: run the evaluate stages first")
    return variants


def load_robustness(robustness_dir: Path) -> dict[str, dict[str, dict]]:
    """The robustness stages' files: architecture -> study -> file."""
    found: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(robustness_dir).glob("*.json")):
        data = read_json(path)
        found.setdefault(data["arch"], {})[data["study"]] = data
    return found


def load_selections(lr_select_dir: Path, archs: list[str]) -> dict[str, dict]:
    """Each architecture's lr_select file; a missing one is an error (its models trained at the rates it holds)."""
    from ..rates import read_rates

    for arch in archs:
        read_rates(Path(lr_select_dir) / f"{arch}.json", arch)  # a missing file or another arch's fails here
    return {arch: read_json(Path(lr_select_dir) / f"{arch}.json") for arch in archs}


def load_sparse_end(sparse_end_dir: Path | None) -> dict[str, dict]:
    """The sparse_end stages' files by architecture: {} where the directory is not given, missing or empty."""
    if sparse_end_dir is None or not Path(sparse_end_dir).is_dir():
        return {}
    return {data["arch"]: data for data in map(read_json, sorted(Path(sparse_end_dir).glob("*.json")))}


def split_of(data: dict) -> str:
    """The split a robustness or ablation file's metrics come from, as the file records it."""
    return data["split"]


def predating_the_split(inputs: Inputs) -> list[str]:
    """The result files written before the validation split (docs/design/verdict-protocol.md): frontier files
    without "splits" or with points without validation metrics, ablation and robustness files without "split".
    The report reads none of them: their choices were made on the test set."""
    old = [f"frontier/{name}.json" for name, v in inputs.variants.items()
           if "splits" not in v.frontier or any("validation" not in pt for pt in v.points)]
    old += [f"ablation/{arch}.json" for arch, data in inputs.ablations.items() if "split" not in data]
    old += [f"robustness/{arch}-{study}.json" for arch, studies in inputs.robustness.items()
            for study, data in studies.items() if "split" not in data]
    return old


def merge_probes(variants: dict[str, Variant], probes_dir: Path | None) -> None:
    """Each frontier point probed by a probes stage (probes/<arch>.json) gets its probe metrics, as the evaluate
    stage gives the defaults theirs; points of an architecture with no such file keep none."""
    for path in sorted(probes_dir.glob("*.json")) if probes_dir is not None and probes_dir.is_dir() else []:
        for name, probed in read_json(path)["variants"].items():
            if name not in variants:
                continue
            by_point = {(p["name"], p["seed"]): p["metrics"] for p in probed["points"]}
            for point in variants[name].points:
                point["metrics"] |= by_point.get((point["name"], point["seed"]), {})


def load_inputs(paths: ReportPaths, params: Params) -> Inputs:
    from ..data import read_manifest

    variants = load_variants(Path(paths.eval), Path(paths.frontier), Path(paths.logs))
    merge_probes(variants, paths.probes)
    archs = [a for a in ARCHITECTURES if any(v.arch == a for v in variants.values())]
    inputs = Inputs(
        params=params, manifest=read_manifest(paths.data), variants=variants,
        baselines=read_json(paths.baselines),
        ablations={p.stem: read_json(p) for p in sorted(Path(paths.ablation).glob("*.json"))},
        robustness=load_robustness(paths.robustness),
        wide=[read_json(Path(paths.wide) / f"seed-{seed}.json") for seed in params.seeds],  # not stale seeds' files
        references={Path(p).as_posix(): read_json(p) for p in paths.references},
        selections=load_selections(Path(paths.lr_select), archs), sparse_end=load_sparse_end(paths.sparse_end))
    if old := predating_the_split(inputs):
        raise ValueError(f"{', '.join(old)} predate the validation split (docs/design/verdict-protocol.md): their "
                         "choices were made on the test set, and the report reads no such file. Re-run their stages "
                         "(`dvc repro`; `dvc status` names them).")
    return inputs
