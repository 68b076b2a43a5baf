"""The download stage on real files: the local MNIST mirror, crafted bad copies, and loopback HTTP."""

from __future__ import annotations

import gzip
import json
import shutil
import struct

import numpy as np
import pytest
import torchvision

from sae_mnist import data, download
from sae_mnist.data import FALLBACK_DATASET, MNIST_FILES, DataError, load_split, parse_idx
from sae_mnist.download import DownloadError, download_mnist, encode_idx
from sae_mnist.params import DownloadParams, load_params
from tests.conftest import REPO

LABELS = MNIST_FILES[3]  # t10k-labels-idx1-ubyte: the smallest file, the one the bad mirrors spoil
IMAGES = MNIST_FILES[2]


def offline(**overrides) -> DownloadParams:
    return DownloadParams(mirror=None, mirrors=[], timeout_s=5, allow_fallback=False).model_copy(update=overrides)


@pytest.fixture(autouse=True)
def no_env_mirror(monkeypatch):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)


def canonical(mnist_mirror, spec) -> bytes:
    return gzip.decompress((mnist_mirror / f"{spec.name}.gz").read_bytes())


def mirror_with(tmp_path, mnist_mirror, spoiled: dict[str, bytes], name="bad") -> str:
    """A copy of the mirror whose files in `spoiled` are replaced by the given raw bytes."""
    target = tmp_path / name
    shutil.copytree(mnist_mirror, target)
    for filename, blob in spoiled.items():
        (target / filename).write_bytes(blob)
    return str(target)


# ----------------------------------------------------------------------------- IDX parsing


def test_idx_round_trip_and_header_checks():
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    spec = data.FileSpec("x-images", "", 2, "images")
    assert np.array_equal(parse_idx(encode_idx(images), spec), images)
    labels = np.array([7, 1, 9], dtype=np.uint8)
    assert parse_idx(encode_idx(labels), data.FileSpec("x-labels", "", 3, "labels")).tolist() == [7, 1, 9]

    with pytest.raises(DataError, match="wrong IDX magic number 0x00000801"):
        parse_idx(encode_idx(labels), spec)
    small = struct.pack(">IIII", data.IMAGE_MAGIC, 1, 27, 28) + bytes(27 * 28)
    with pytest.raises(DataError, match="images are 27x28, expected 28x28"):
        parse_idx(small, spec)
    with pytest.raises(DataError, match="header declares 2 images .* but the file holds"):
        parse_idx(encode_idx(images)[:-5], spec)


def test_canonical_files_parse_with_published_digests(mnist_mirror):
    for spec in MNIST_FILES[2:]:
        array = data.verify((mnist_mirror / f"{spec.name}.gz").read_bytes(), spec, spec.md5)
        assert len(array) == 10_000
    assert data.verify((mnist_mirror / f"{LABELS.name}.gz").read_bytes(), LABELS, LABELS.md5)[:5].tolist() == [
        7, 2, 1, 0, 4,
    ]


# ----------------------------------------------------------------------------- mirrors that work


def test_default_public_mirrors_are_torchvisions():
    assert load_params(REPO / "params.yaml").download.mirrors == torchvision.datasets.MNIST.mirrors


def test_local_directory_mirror_with_other_gzip_wrapper(tmp_path, mnist_mirror):
    out = tmp_path / "mnist"
    manifest = download_mnist(offline(mirror=str(mnist_mirror)), out)
    assert manifest["dataset"] == "mnist" and not manifest["is_fallback"]
    assert manifest["counts"] == {"train": 60_000, "test": 10_000}
    assert {n: f["md5"] for n, f in manifest["files"].items()} == {s.name: s.md5 for s in MNIST_FILES}
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s.name}.gz" for s in MNIST_FILES] + ["manifest.json"])
    test = load_split(out, "test")
    assert test.images.shape == (10_000, 28, 28) and test.labels.shape == (10_000,)
    assert not (tmp_path / ".mnist.partial").exists()


def test_http_mirror_and_environment_override(tmp_path, mnist_mirror, serve, monkeypatch):
    url = serve(mnist_mirror)
    monkeypatch.setenv(download.MIRROR_ENV, url)
    manifest = download_mnist(offline(mirror=str(tmp_path / "does-not-exist")), tmp_path / "mnist")
    assert manifest["source"] == ["http mirror at 127.0.0.1"]  # a mirror by its host: no port, path or machine name
    assert download.mirror_sources(offline(mirror="b", mirrors=["c"])) == [url, "b", "c"]


def test_next_mirror_is_tried_after_a_bad_one(tmp_path, mnist_mirror, capsys):
    bad = mirror_with(tmp_path, mnist_mirror, {f"{LABELS.name}.gz": b"not gzip at all"})
    manifest = download_mnist(offline(mirrors=[bad, str(mnist_mirror)]), tmp_path / "mnist")
    out, err = capsys.readouterr()
    assert f"ok {LABELS.name}.gz from {mnist_mirror}" in out and f"ok {IMAGES.name}.gz from {bad}" in out
    assert "not a gzip file" in err
    # Results name a local mirror without its path on this machine.
    assert {f["source"] for f in manifest["files"].values()} == {"local directory mirror"}
    assert str(tmp_path) not in json.dumps(manifest)


def test_sources_are_named_without_machine_paths():
    public = ["https://ossci-datasets.s3.amazonaws.com/mnist/"]
    assert download.describe_source("https://ossci-datasets.s3.amazonaws.com/mnist", public) == public[0]
    assert download.describe_source("http://10.1.2.3:8080/mirror/", public) == "http mirror at 10.1.2.3"
    assert download.describe_source("/home/someone/mnist", public) == "local directory mirror"


# ----------------------------------------------------------------------------- rejections


def _labels(mnist_mirror, mutate) -> bytes:
    content = bytearray(canonical(mnist_mirror, LABELS))
    return gzip.compress(bytes(mutate(content)))


BAD_LABEL_FILES = {
    "content digest mismatch": lambda c: c[:8] + bytes([(c[8] + 1) % 10]) + c[9:],
    "wrong IDX magic number": lambda c: struct.pack(">I", data.IMAGE_MAGIC) + c[4:],
    "image/label count mismatch": lambda c: struct.pack(">II", data.LABEL_MAGIC, 9_999) + c[8:-1],
    "header declares 10000 labels": lambda c: c[:-100],
}


@pytest.mark.parametrize("reason", list(BAD_LABEL_FILES))
def test_bad_content_is_rejected_and_leaves_nothing(tmp_path, mnist_mirror, reason):
    bad = mirror_with(tmp_path, mnist_mirror, {f"{LABELS.name}.gz": _labels(mnist_mirror, BAD_LABEL_FILES[reason])})
    out = tmp_path / "mnist"
    with pytest.raises(DownloadError, match=f"{LABELS.name}.*{reason}"):
        download_mnist(offline(mirrors=[bad]), out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_wrong_image_dimensions_are_rejected(tmp_path, mnist_mirror):
    content = bytearray(canonical(mnist_mirror, IMAGES))
    content[8:12] = struct.pack(">I", 27)  # rows
    bad = mirror_with(tmp_path, mnist_mirror, {f"{IMAGES.name}.gz": gzip.compress(bytes(content))})
    with pytest.raises(DownloadError, match=f"{IMAGES.name}: images are 27x28"):
        download_mnist(offline(mirrors=[bad]), tmp_path / "mnist")
    assert not (tmp_path / "mnist").exists()


@pytest.mark.parametrize(
    "blob, reason",
    [
        (lambda gz: gz[: len(gz) // 2], "truncated gzip file"),
        (lambda gz: gzip.decompress(gz), "not a gzip file"),
        (lambda gz: b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
    ],
    ids=["truncated", "not-gzip", "html-body"],
)
def test_corrupt_files_are_rejected(tmp_path, mnist_mirror, blob, reason):
    gz = (mnist_mirror / f"{LABELS.name}.gz").read_bytes()
    bad = mirror_with(tmp_path, mnist_mirror, {f"{LABELS.name}.gz": blob(gz)})
    with pytest.raises(DownloadError, match=f"{LABELS.name}.*{reason}"):
        download_mnist(offline(mirrors=[bad]), tmp_path / "mnist")
    assert not (tmp_path / "mnist").exists()


def _html_page(request):
    body = b"<html><body>Please log in</body></html>"
    request.send_response(200)
    request.send_header("Content-Type", "text/html; charset=utf-8")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _server_error(request):
    request.send_error(503, "Service Unavailable")


@pytest.mark.parametrize(
    "override, reason",
    [(None, "HTTP 404"), (_server_error, "HTTP 503"), (_html_page, "answered an HTML page")],
    ids=["404", "503", "html-content-type"],
)
def test_http_errors_are_rejected(tmp_path, mnist_mirror, serve, override, reason):
    directory = tmp_path / "served"
    shutil.copytree(mnist_mirror, directory)
    if override is None:
        (directory / f"{LABELS.name}.gz").unlink()
    url = serve(directory, {f"{LABELS.name}.gz": override} if override else None)
    with pytest.raises(DownloadError, match=f"{LABELS.name}.*{reason}"):
        download_mnist(offline(mirrors=[url]), tmp_path / "mnist")
    assert not (tmp_path / "mnist").exists()


def test_unreachable_mirror_is_reported(tmp_path):
    with pytest.raises(DownloadError, match="cannot read http://127.0.0.1:9/"):
        download_mnist(offline(mirrors=["http://127.0.0.1:9/"]), tmp_path / "mnist")


# ----------------------------------------------------------------------------- offline fallback


def test_offline_fallback_is_loud_and_named(tmp_path, capsys):
    out = tmp_path / "mnist"
    manifest = download_mnist(offline(mirrors=["http://127.0.0.1:9/"], allow_fallback=True), out)
    err = capsys.readouterr().err
    assert "OFFLINE FALLBACK" in err and FALLBACK_DATASET in err and data.UPGRADE_COMMAND in err
    assert manifest["dataset"] == FALLBACK_DATASET and manifest["is_fallback"]
    assert manifest["counts"] == {"train": 4_000, "test": 1_000}
    assert manifest["upgrade_command"] == data.UPGRADE_COMMAND
    train, test = load_split(out, "train"), load_split(out, "test")
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    # the first 500 training images of MNIST per digit: the subset's first image is MNIST's first "5"
    assert train.images.shape == (4_000, 28, 28) and train.images.max() == 255
    again = download_mnist(offline(allow_fallback=True), tmp_path / "again")
    assert again["digest"] == manifest["digest"], "the fallback split must be deterministic"


def test_fallback_matches_real_mnist(tmp_path, mnist_mirror):
    download_mnist(offline(allow_fallback=True), tmp_path / "fallback")
    fallback = load_split(tmp_path / "fallback", "train")
    full = data.verify((mnist_mirror / "train-images-idx3-ubyte.gz").read_bytes(), MNIST_FILES[0], MNIST_FILES[0].md5)
    labels = data.verify((mnist_mirror / "train-labels-idx1-ubyte.gz").read_bytes(), MNIST_FILES[1], MNIST_FILES[1].md5)
    first_five = full[np.flatnonzero(labels == 5)[0]]
    assert any(np.array_equal(first_five, image) for image in fallback.images[fallback.labels == 5][:50])


def test_strict_setting_turns_fallback_into_an_error(tmp_path):
    with pytest.raises(DownloadError, match="allow_fallback is false"):
        download_mnist(offline(), tmp_path / "mnist")
    assert not (tmp_path / "mnist").exists()


# ----------------------------------------------------------------------------- fit and validation splits


def test_validation_count_by_hand():
    assert data.validation_count(60_000, 10_000) == 10_000
    assert data.validation_count(4_000, 10_000) == 666  # the offline fallback: a sixth, rounded down
    assert data.validation_count(600, 50) == 50
    assert data.validation_count(5, 10_000) == 1  # never empty
    with pytest.raises(DataError, match="cannot be split"):
        data.validation_count(1, 10)
    with pytest.raises(ValueError, match="at least 1 image"):
        data.validation_count(100, 0)


def test_fit_and_validation_divide_the_training_images(tmp_path):
    out = tmp_path / "mnist"
    download_mnist(offline(mirrors=["http://127.0.0.1:9/"], allow_fallback=True), out)
    train = load_split(out, "train")
    fit, validation = load_split(out, "fit", validation=10_000), load_split(out, "validation", validation=10_000)
    assert (len(fit.images), len(validation.images)) == (3_334, 666)
    assert np.array_equal(np.concatenate([fit.images, validation.images]), train.images)
    assert np.array_equal(validation.labels, train.labels[-666:])
    assert data.split_digest(validation) != data.split_digest(fit)
    with pytest.raises(ValueError, match="needs the validation size"):
        load_split(out, "fit")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_split(out, "valid", validation=10)


def test_split_digest_is_sha256_of_images_then_labels():
    import hashlib

    split = data.Split(images=np.arange(2 * 28 * 28).astype(np.uint8).reshape(2, 28, 28),
                       labels=np.array([3, 9], dtype=np.uint8))
    expected = hashlib.sha256(bytes(range(256)) * 6 + bytes(range(32)) + bytes([3, 9])).hexdigest()
    assert data.split_digest(split) == expected


def test_mnist_validation_split_is_the_last_10000(mnist_mirror, tmp_path):
    download_mnist(offline(mirror=str(mnist_mirror)), tmp_path / "mnist")
    fit = load_split(tmp_path / "mnist", "fit", validation=10_000)
    validation = load_split(tmp_path / "mnist", "validation", validation=10_000)
    assert (len(fit.labels), len(validation.labels)) == (50_000, 10_000)
    # every digit is in the validation split, in MNIST's proportions (within 1 percentage point; 0.72 seen)
    share = np.bincount(validation.labels, minlength=10) / 10_000
    assert np.abs(share - np.bincount(fit.labels, minlength=10) / 50_000).max() < 0.01
