"""The result files follow from training: frontier points retrained from scratch, each alone, and compared.

A point is named `NAME@SEED`, NAME as in its frontier file (`conv-l1-lam=1.2`, `linear-kl`), e.g. `conv-l1@0`.
It is retrained as a stack of one (`stages.robustness.train_points`: what the train stage runs, in memory, with no
files and no MLflow) from the committed `params.yaml`, on MNIST whose digest matches the frontier file's, and
evaluated as the evaluate stage does; its test FVU and L0 at every activity threshold are then set beside the
committed ones. A stack of one gives what the point's own stack gave, up to float rounding
(tests/test_stacked.py), and docs/verify.md measures how far float rounding moves these numbers.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..io import read_json

COMPARED = ("l1", "kl")


class VerifyError(Exception):
    """Verification cannot proceed: the message says why and what to do."""


@dataclass(frozen=True)
class Point:
    """A committed frontier point: its frontier file, its name and seed, and its committed metrics."""

    variant: str
    name: str
    seed: int
    file: Path
    setting: dict
    metrics: dict
    epochs: int
    lr: float | None = None  # the base learning rate it trained at (its penalty's chosen rate); None: train.lr

    @property
    def arch(self) -> str:
        return self.variant.split("-")[0]

    @property
    def penalty(self) -> str:
        return self.variant.split("-")[1]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.seed}"


def committed_points(root: Path) -> list[Point]:
    """Every point of every committed frontier file, in file order."""
    points = []
    for path in sorted((Path(root) / "frontier").glob("*.json")):
        data = read_json(path)
        for p in data["points"]:
            points.append(Point(data["variant"], p["name"], p["seed"], path.relative_to(root), p["setting"],
                                p["metrics"], p["training"]["epochs"], p["training"].get("lr")))
    return points


def parse_points(names: list[str], points: list[Point]) -> list[Point]:
    """The points named NAME@SEED, in the order given; VerifyError naming any unknown one and what exists."""
    by_label = {p.label: p for p in points}
    unknown = [n for n in names if n not in by_label]
    if unknown:
        variants = sorted({p.variant for p in points})
        raise VerifyError(f"no committed frontier point {', '.join(unknown)}; name one as NAME@SEED, NAME as in "
                          f"frontier/<variant>.json ('name'), e.g. {points[0].label} (variants: {', '.join(variants)})")
    return [by_label[n] for n in names]


def sample_points(points: list[Point], n: int, sample_seed: int) -> list[Point]:
    """`n` points drawn with `sample_seed`: the first two cover both architectures and both compared penalties
    (an L1 point of one architecture, a KL point of the other), the rest from every point left."""
    rng = random.Random(sample_seed)
    compared = [p for p in points if p.penalty in COMPARED]
    first = rng.choice(compared)
    chosen = [first]
    if n >= 2:
        second = [p for p in compared if p.arch != first.arch and p.penalty != first.penalty]
        chosen.append(rng.choice(second))
    rest = [p for p in points if p not in chosen]
    chosen += rng.sample(rest, min(len(rest), max(0, n - len(chosen))))
    return chosen[:n]


def prepare_data(params, scratch: Path, data_dir: Path | None, expected_digest: str,
                 workspace: Path | None = None) -> Path:
    """MNIST for retraining: `data_dir` if given; else the download stage's output in `workspace` (data/mnist) if it
    holds the committed digest; else downloaded into `scratch` as the download stage would ($MNIST_MIRROR first,
    then the public mirrors; never the offline fallback). Its content digest must be the committed one."""
    from ..data import read_manifest
    from ..download import download_mnist

    staged = None if workspace is None else workspace / "data" / "mnist"
    if data_dir is None and staged is not None and (staged / "manifest.json").is_file() \
            and read_manifest(staged)["digest"] == expected_digest:
        data_dir = staged
    if data_dir is None:
        data_dir = scratch / "mnist"
        if not (data_dir / "manifest.json").is_file():
            print(f"downloading MNIST into {data_dir} ...", flush=True)
            download_mnist(params.download.model_copy(update={"allow_fallback": False}), data_dir)
    digest = read_manifest(data_dir)["digest"]
    if digest != expected_digest:
        raise VerifyError(f"the MNIST files in {data_dir} have digest {digest}, but the committed results were "
                          f"computed on {expected_digest}: retraining on other data cannot verify them. Use the "
                          "canonical files (a mirror named by $MNIST_MIRROR, or no --data to download them)")
    return data_dir


@dataclass(frozen=True)
class Data:
    """MNIST as training reads it, loaded once for every point: the fit split's images (uint8; the validation split
    held out, as the train stage holds it out) and the test images (float, on the CPU)."""

    images: object
    x_test: object


def load_data(data_dir: Path, validation: int) -> Data:
    """`validation`: params split.validation, the images the fit split leaves out."""
    import torch

    from ..data import load_split
    from ..training import to_float_images

    fit, test = (torch.from_numpy(load_split(data_dir, split, validation).images.copy()) for split in ("fit", "test"))
    return Data(fit, to_float_images(test, torch.device("cpu")))


def train_in_memory(params, arch: str, seed: int, members: list, data: Data, threads: int | None = None,
                    desc: str = "stack") -> tuple[list[dict], float]:
    """`members` trained as one stack on `seed` as the committed params say, on the CPU, and evaluated on the test
    split (stages.robustness.train_points): (their frontier points, seconds). `threads`: CPU threads (default
    train.threads, the count the results were made with)."""
    import torch

    from ..heldout import train_points
    from ..training import select_device

    # On the CPU, where the committed results were trained and the tolerance was measured, even where a GPU is here.
    training = params.train.of(arch)
    training = training.model_copy(update={"device": "cpu", "threads": threads or training.threads})
    torch.set_num_threads(training.threads)
    started = time.perf_counter()
    evaluated, _ = train_points(params, arch, seed, members, training, data.images[: training.max_samples],
                                data.x_test, select_device(training.device), desc=desc)
    return evaluated, time.perf_counter() - started


def retrain(params, point: Point, data: Data, threads: int | None = None) -> tuple[dict, float]:
    """`point` trained alone from scratch (train_in_memory, a stack of one): (its test metrics, seconds)."""
    from ..members import frontier_members

    members = [replace(m, lr=point.lr) for m in frontier_members(params, point.arch) if m.name == point.name]
    if not members or members[0].settings.model_dump() != point.setting \
            or params.train.of(point.arch).epochs != point.epochs:
        raise VerifyError(f"{point.label}: params.yaml does not describe this point as it was trained "
                          f"(setting {point.setting}, {point.epochs} epochs in {point.file}): the committed results "
                          "are stale for this params.yaml (make check-results names what changed)")
    evaluated, seconds = train_in_memory(params, point.arch, point.seed, members, data, threads, desc=point.label)
    return evaluated[0]["metrics"], seconds
