"""Shared fixtures: full MNIST for the tests that need it, loopback HTTP servers, and a throwaway copy of the repository.

Tests that need the full MNIST files (the `mnist_mirror` fixture) take them, in this order, from
  1. $MNIST_MIRROR, the project's own mirror override (a local directory or an http(s) URL);
  2. a local directory given by `pytest --mnist-mirror DIR` or $SAE_MNIST_TEST_MIRROR (CI: ../shared/data/mnist);
  3. the public mirrors in params.yaml, downloaded once (verified) into ~/.cache/sae-mnist/mnist.
Where none answers they are skipped, with a reason that says how to enable them; with
`pytest --require-mnist` or SAE_MNIST_REQUIRE_DATA=1 (as CI runs) they fail instead, so a run can
never pass by skipping them. No test writes into a local mirror.
"""

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

# The tracking server, the Slurm cluster and the runs on them: session fixtures too.
pytest_plugins = ["tests.team"]

REPO = Path(__file__).resolve().parents[1]
MNIST_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sae-mnist" / "mnist"
HOW_TO_ENABLE = (
    "full MNIST is not available to the tests: set MNIST_MIRROR to a directory or http(s) URL holding the four "
    "MNIST .gz files, or run `pytest --mnist-mirror DIR` (or set SAE_MNIST_TEST_MIRROR=DIR), or let the tests "
    f"reach the public mirrors once (they cache the files in {MNIST_CACHE})"
)


def pytest_addoption(parser):
    group = parser.getgroup("sae-mnist")
    group.addoption("--mnist-mirror", metavar="DIR",
                    help="local directory holding the four MNIST .gz files (default: $SAE_MNIST_TEST_MIRROR)")
    group.addoption("--require-postgres", action="store_true",
                    help="fail, instead of skip, the tracking-server test when PostgreSQL is missing "
                         "(default: $SAE_MNIST_REQUIRE_POSTGRES=1)")
    group.addoption("--require-slurm", action="store_true",
                    help="fail, instead of skip, the Slurm cluster test when Slurm is missing "
                         "(default: $SAE_MNIST_REQUIRE_SLURM=1)")
    group.addoption("--require-mnist", action="store_true",
                    help="fail, instead of skip, the tests that need full MNIST when it is not available "
                         "(default: $SAE_MNIST_REQUIRE_DATA=1)")


def _has_mnist_files(directory: Path) -> bool:
    from sae_mnist.data import MNIST_FILES

    return all((directory / f"{spec.name}.gz").is_file() for spec in MNIST_FILES)


def _download_to_cache(download_params) -> Path | None:
    """Full MNIST, verified, in the cache (downloaded on first use); None when no mirror delivers."""
    from sae_mnist.download import download_mnist
    from sae_mnist.errors import BenchmarkError

    if (MNIST_CACHE / "manifest.json").is_file() and _has_mnist_files(MNIST_CACHE):
        return MNIST_CACHE
    try:
        manifest = download_mnist(download_params, MNIST_CACHE)
    except BenchmarkError as e:
        print(f"full MNIST for the tests: {e}")
        return None
    return MNIST_CACHE if manifest["dataset"] == "mnist" else None


@pytest.fixture(scope="session")
def mnist_mirror(request) -> Path:
    """A local directory holding the canonical MNIST files (read only: never written to)."""
    from sae_mnist.params import load_params

    download = load_params(REPO / "params.yaml").download.model_copy(update={"allow_fallback": False, "timeout_s": 10})
    given = os.environ.get("MNIST_MIRROR")
    local = request.config.getoption("--mnist-mirror") or os.environ.get("SAE_MNIST_TEST_MIRROR")
    if given and Path(given).is_dir():
        found = Path(given).resolve() if _has_mnist_files(Path(given)) else None
    elif given:  # a URL: download it into the cache
        found = _download_to_cache(download.model_copy(update={"mirror": given, "mirrors": []}))
    elif local:
        found = Path(local).resolve() if _has_mnist_files(Path(local)) else None
        if found is None:
            print(f"full MNIST for the tests: {local} does not hold the four MNIST .gz files")
    else:
        found = _download_to_cache(download.model_copy(update={"mirror": None}))
    if found is not None:
        return found
    if required(request, "--require-mnist", "SAE_MNIST_REQUIRE_DATA"):
        pytest.fail(f"required, but {HOW_TO_ENABLE}")
    pytest.skip(HOW_TO_ENABLE)


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
    """A git repository holding this checkout's tracked and untracked-but-not-ignored files, without results."""
    from sae_mnist.quick import copy_repo as copy

    copy(REPO, dest)
    for generated in ("dvc.lock", "metrics", "logs", "reports", "frontier", "plots", "baselines", "ablation", "wide"):
        target = dest / generated
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    commit(dest, "no results")
    return dest


def commit(repo: Path, message: str) -> None:
    """Commit everything in `repo` (a test's copy) as a throwaway author."""
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", message],
                   cwd=repo, check=True)


def required(request, option: str, variable: str) -> bool:
    """Whether a test's external dependency is required (`option` given or `variable`=1): then it fails, not skips."""
    return bool(request.config.getoption(option)) or os.environ.get(variable) == "1"


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


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One `dvc repro` of the tiny profile (tests/test_pipeline_e2e.py: every stage, offline, in minutes) in a
    committed copy of this checkout, with its local MLflow store: the run the end-to-end tests inspect and the
    Slurm test compares its cluster run with. Shared by the whole session, so each pipeline runs once."""
    from tests.test_pipeline_e2e import tiny

    repo = copy_repo(tmp_path_factory.mktemp("tiny"))
    edit_params(repo, tiny)
    commit(repo, "tiny profile")
    # The tiny stacks train in seconds: sample system metrics often enough to see some.
    result = subprocess.run(["dvc", "repro"], cwd=repo, capture_output=True, text=True, timeout=1800,
                            env=subprocess_env(MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="0.5"))
    if result.returncode != 0:
        pytest.fail(f"dvc repro of the tiny profile failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-3000:]}")
    return repo, result
