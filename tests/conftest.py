"""Shared fixtures: the local MNIST mirror, loopback HTTP servers, and a throwaway copy of the repository."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_MIRROR = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_mirror() -> Path:
    """The read-only local copy of the canonical MNIST files (never written to)."""
    if not (SHARED_MIRROR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"local MNIST mirror missing at {SHARED_MIRROR}; see ../shared/data/README.md")
    return SHARED_MIRROR


class _Handler(http.server.SimpleHTTPRequestHandler):
    overrides: dict[str, Callable] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in self.overrides:
            return self.overrides[name](self)
        return super().do_GET()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """serve(directory, overrides={filename: handler(request)}) -> base URL on 127.0.0.1."""
    servers = []

    def start(directory: Path, overrides: dict[str, Callable] | None = None) -> str:
        handler = type("Handler", (_Handler,), {"overrides": overrides or {}})

        def factory(*args, **kwargs):
            return handler(*args, directory=str(directory), **kwargs)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def copy_repo(dest: Path) -> Path:
    """A git repository holding this checkout's tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for generated in ("dvc.lock", "metrics", "logs", "reports", "sweep", "baselines"):
        target = dest / generated
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "copy"],
                   cwd=dest, check=True)
    return dest


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for stage and DVC processes: this interpreter's tools first, no user overrides."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MNIST_MIRROR", "MLFLOW_TRACKING_URI", "DVC_ROOT")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["PYTHONUNBUFFERED"] = "1"
    return {**environment, **extra}


def edit_params(repo: Path, edit: Callable[[dict], None]) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
