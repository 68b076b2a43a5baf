"""Network and disk faults during the download, with a real loopback server and real filesystems.

Each faulty mirror is listed before the good local mirror: the fault must be reported
on stderr and the next mirror used. Alone, it must end in a clear error with nothing
left in the output directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from sae_mnist import download
from sae_mnist.data import MNIST_FILES, DataError
from sae_mnist.download import DownloadError, download_mnist
from sae_mnist.params import DownloadParams

LABELS = MNIST_FILES[3]
FILENAME = f"{LABELS.name}.gz"
TIMEOUT = 0.5


@pytest.fixture(autouse=True)
def no_env_mirror(monkeypatch):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)


def params(mirrors) -> DownloadParams:
    return DownloadParams(mirror=None, mirrors=mirrors, timeout_s=TIMEOUT, allow_fallback=False)


def _headers(request, length=None):
    request.send_response(200)
    request.send_header("Content-Type", "application/octet-stream")
    if length is not None:
        request.send_header("Content-Length", str(length))
    request.end_headers()


def never_answers(request):
    time.sleep(3 * TIMEOUT)


def resets_connection(request):
    request.close_connection = True  # close without a status line


def cut_off_mid_file(request, body=b"\x1f\x8b" + bytes(3000)):
    _headers(request, length=2 * len(body))
    request.wfile.write(body)
    request.close_connection = True


def stalls_mid_file(request):
    _headers(request, length=6000)
    request.wfile.write(b"\x1f\x8b" + bytes(2998))
    request.wfile.flush()
    time.sleep(3 * TIMEOUT)


def trickles(request):
    _headers(request)
    for _ in range(int(download.READ_DEADLINE_FACTOR * TIMEOUT / 0.1) + 10):
        try:
            request.wfile.write(b"\x1f")
            request.wfile.flush()
        except OSError:
            return
        time.sleep(0.1)


def redirects_to_itself(request):
    request.send_response(302)
    request.send_header("Location", request.path)
    request.send_header("Content-Length", "0")
    request.end_headers()


def grows_past_its_size(request):
    _headers(request)  # no Content-Length: the stream just keeps going
    request.wfile.write(b"\x1f\x8b" + bytes(LABELS.size * download.MAX_GZIP_RATIO + 10_000))


def announces_a_huge_file(request):
    _headers(request, length=10**10)


FAULTS = {
    "time-out": (never_answers, "timed out"),
    "connection reset": (resets_connection, "cannot read"),
    "cut off mid-file": (cut_off_mid_file, "cut off mid-file after 3002 of 6004 bytes"),
    "stall mid-file": (stalls_mid_file, "stalled or cut off mid-file"),
    "trickle": (trickles, "too slow"),
    "redirect loop": (redirects_to_itself, "redirects in a loop"),
    "grows past its size": (grows_past_its_size, "far more than the file's size"),
    "announces a huge size": (announces_a_huge_file, "announces 10000000000 bytes"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_reported_and_next_mirror_used(tmp_path, mnist_mirror, serve, capsys, fault):
    handler, reason = FAULTS[fault]
    bad = serve(mnist_mirror, {FILENAME: handler})
    download_mnist(params([bad, str(mnist_mirror)]), tmp_path / "mnist")
    out, err = capsys.readouterr()
    assert f"ok {LABELS.name}.gz from {mnist_mirror}" in out
    assert LABELS.name in err and reason in err, err


@pytest.mark.parametrize("fault", ["time-out", "stall mid-file", "redirect loop", "grows past its size"])
def test_fault_alone_is_a_clear_error_leaving_nothing(tmp_path, mnist_mirror, serve, fault):
    handler, reason = FAULTS[fault]
    bad = serve(mnist_mirror, {FILENAME: handler})
    started = time.monotonic()
    with pytest.raises(DownloadError, match=reason):
        download_mnist(params([bad]), tmp_path / "mnist")
    assert time.monotonic() - started < 30
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_mount(tmp_path):
    """mount(options) -> a fresh tmpfs mounted with `options`, unmounted afterwards (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI and the development machines run as root)")
    mounts = []

    def mount(options: str):
        point = tmp_path / f"mount{len(mounts)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], check=False)


def test_disk_full_is_a_clear_error_leaving_nothing(small_mount, mnist_mirror):
    full = small_mount("size=4m")  # holds the test files but not train-images (9.9 MB compressed)
    with pytest.raises(DataError, match=r"cannot write the MNIST files to .*No space left on device"):
        download_mnist(params([str(mnist_mirror)]), full / "mnist")
    assert list(full.iterdir()) == []


def test_read_only_output_directory_is_a_clear_error(small_mount, mnist_mirror):
    read_only = small_mount("ro,size=1m")
    with pytest.raises(DataError, match=r"cannot write the MNIST files to .*Read-only file system"):
        download_mnist(params([str(mnist_mirror)]), read_only / "mnist")
    assert list(read_only.iterdir()) == []


def test_stale_partial_download_is_replaced(tmp_path, mnist_mirror):
    stale = tmp_path / ".mnist.partial"
    stale.mkdir()
    (stale / "train-images-idx3-ubyte.gz").write_bytes(b"half a file from a killed run")
    download_mnist(params([str(mnist_mirror)]), tmp_path / "mnist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]
    shutil.rmtree(tmp_path / "mnist")
