"""A throwaway team tracking server: a PostgreSQL cluster and `mlflow server` on 127.0.0.1, as docs/usage.md
("A shared tracking server") sets one up.

Used by the tracking-server and cluster tests and by benchmarks/cluster_speedup.py. Needs PostgreSQL's server
binaries (Debian: apt-get install postgresql) and psycopg2 (pip install -e '.[server]').
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOW_TO_ENABLE = ("PostgreSQL is not available: install it (Debian: apt-get install postgresql, which puts initdb and "
                 "pg_ctl in /usr/lib/postgresql/<version>/bin) and psycopg2-binary (pip install -e '.[server]')")


def postgres_bin() -> Path | None:
    """PostgreSQL's server binaries, or None where they (or psycopg2) are missing."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return None
    for candidate in [*sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
                      *(str(Path(p).parent) for p in [shutil.which("initdb")] if p)]:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until `url` answers 200; RuntimeError, with the server's log, if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    state = f"exited with {process.returncode}" if process.poll() is not None else f"did not answer within {timeout} s"
    raise RuntimeError(f"{url} {state}; the server's log ends:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def postgres_tracking_server(binaries: Path, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """Yield the server's URI and its artifacts directory; stop both servers and remove everything on exit."""
    # Not under pytest's basetemp: that is private to its owner (0700), and as root the cluster runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="sae-mnist-server-"))
    data, sockets = root / "pgdata", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    try:
        subprocess.run(as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                    "-E", "UTF8"]), check=True, capture_output=True)
        pg_port = free_port()
        subprocess.run(as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w",
                                    "-o", f"-p {pg_port} -k {sockets} -c listen_addresses=127.0.0.1", "start"]),
                       check=True, capture_output=True)
        try:
            subprocess.run(as_postgres([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U",
                                        "postgres", "mlflow"]), check=True, capture_output=True)
            port = free_port()
            artifacts = root / "artifacts"
            log_file = root / "mlflow-server.log"
            with open(log_file, "w") as log:
                process = subprocess.Popen(
                    [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                     "--backend-store-uri", f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/mlflow",
                     "--artifacts-destination", artifacts.as_uri(), "--workers", "2"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    # Its first start creates MLflow's schema in PostgreSQL (every migration): slow on a busy machine.
                    wait_for(f"http://127.0.0.1:{port}/health", process, log_file, timeout=600)
                    yield f"http://127.0.0.1:{port}", artifacts
                finally:
                    process.terminate()
                    process.wait(timeout=30)
        finally:
            subprocess.run(as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
