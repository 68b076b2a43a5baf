"""MLflow tracking: where the store lives, creating it once, and runs named after variants.

By default the store is SQLite at an absolute path under the repository root
(`mlflow.db`, artifacts in `mlruns/`). DVC sets $DVC_ROOT to the main
repository even when a stage runs in a temporary copy (`dvc exp run --temp`,
`--queue`), so those runs log to the same store. $MLFLOW_TRACKING_URI overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

# MLflow's usage telemetry would try to reach the network; this benchmark runs offline.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"


def repo_root() -> Path:
    """The main repository root: $DVC_ROOT if DVC set it, else the nearest parent holding `.dvc/`."""
    if env := os.environ.get("DVC_ROOT"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    return here


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / STORE_FILE}"


def ui_command() -> str:
    return f"mlflow ui --backend-store-uri {tracking_uri()} --host 127.0.0.1 --port 5000"


def init_store(experiment: str) -> str:
    """Create (or open) the store and the experiment; return the experiment id.

    Holds a file lock so that stages started in parallel never run the store's
    schema migrations, or create the experiment, at the same time.
    """
    import mlflow
    from filelock import FileLock

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    root = repo_root()
    with FileLock(str(root / f"{STORE_FILE}.lock"), timeout=600):
        client = mlflow.MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            # An absolute artifact location: runs in DVC's temporary copies must not
            # write artifacts into a directory that is deleted afterwards.
            experiment_id = client.create_experiment(
                experiment, artifact_location=(root / ARTIFACT_DIR / experiment).as_uri()
            )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_dataset(images, labels, manifest: dict, context: str) -> None:
    """Log the data a run used with `mlflow.log_input`, named and digested as in the data manifest."""
    import warnings

    import mlflow
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    source = manifest["source"][0]
    with warnings.catch_warnings():
        # A local path resolves to two equivalent LocalArtifactDatasetSource classes; MLflow warns and picks one.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_numpy(
            images.reshape(len(images), -1),
            targets=labels,
            source=HTTPDatasetSource(source) if source.startswith(("http://", "https://")) else source,
            name=manifest["dataset"],
            digest=manifest["digest"].split(":")[-1][:32],  # MLflow keeps at most 36 characters
        )
    mlflow.log_input(dataset, context=context)


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}, for MLflow params."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
