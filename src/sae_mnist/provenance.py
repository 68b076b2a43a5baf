"""What a number depends on besides params and data: code version and environment."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

# The files that define how a number is computed. "-dirty" means one of them differs from the commit;
# params are recorded on their own, and the pipeline's outputs (dvc.lock, metrics, reports) change by design.
CODE_PATHS = ("src", "pipeline", "dvc.yaml", "pyproject.toml", "requirements.lock")

PACKAGES = ("torch", "torchvision", "numpy", "dvc", "mlflow", "pandas", "matplotlib", "seaborn", "pydantic")


def git_commit(cwd: str | None = None) -> str:
    """HEAD's hash, with "-dirty" when tracked code (CODE_PATHS) differs from it; "unknown" outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {cpu_name()} ({torch.get_num_threads()} threads)"


def environment(device) -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name(device),
        "packages": package_versions(),
    }
