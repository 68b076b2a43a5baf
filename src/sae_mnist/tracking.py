"""MLflow tracking: where the store lives, creating it once, and runs named after variants.

By default the store is SQLite at an absolute path under the repository root
(`mlflow.db`, artifacts in `mlruns/`). DVC sets $DVC_ROOT to the main
repository even when a stage runs in a temporary copy (`dvc exp run --temp`,
`--queue`), so those runs log to the same store. $MLFLOW_TRACKING_URI overrides it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import BenchmarkError

# MLflow's usage telemetry would try to reach the network; this benchmark runs offline.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A tracking server that does not answer must fail the stage in seconds, not after minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# Logging a model downloads it again to check its input example: a progress bar per model in every stage's log.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

STORE_FILE = "mlflow.db"
DATASET_ATTEMPTS = 3  # logging a dataset another stage inserted at the same moment: see log_dataset
ARTIFACT_DIR = "mlruns"


class TrackingUnavailable(BenchmarkError):
    """The MLflow tracking store does not answer."""


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


def store_kind(uri: str | None = None) -> str:
    """The tracking store by kind, for result files: never its path or address on this machine."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:"):
        return "local SQLite store (mlflow.db)"
    if uri.startswith(("http://", "https://")):
        return "MLflow tracking server"
    return f"{uri.split(':', 1)[0]} store"


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
        try:
            found = client.get_experiment_by_name(experiment)
        except Exception as e:  # MLflow raises several types for an unreachable or broken store
            raise TrackingUnavailable(
                f"the MLflow tracking store {uri} does not answer ({type(e).__name__}: {str(e)[:300]}). "
                "Start that server, or unset MLFLOW_TRACKING_URI to use the local store "
                f"sqlite:///{root / STORE_FILE}."
            ) from None
        if found is not None:
            experiment_id = found.experiment_id
        else:
            # A tracking server keeps artifacts where it was told to (--artifacts-destination), never on
            # the client's disk. A local store: an absolute artifact location, so runs in DVC's temporary
            # copies do not write artifacts into a directory that is deleted afterwards.
            server = uri.startswith(("http://", "https://"))
            experiment_id = client.create_experiment(
                experiment, artifact_location=None if server else (root / ARTIFACT_DIR / experiment).as_uri()
            )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def process_tags() -> dict[str, str]:
    """Which process owns a run, so a later stage can tell a live run from one whose process was killed,
    and, inside `dvc exp run --queue/--temp`, which DVC experiment it belongs to (DVC sets these variables)."""
    tags = {"host": socket.gethostname(), "pid": str(os.getpid())}
    for tag, variable in (("dvc_experiment", "DVC_EXP_NAME"), ("dvc_exp_baseline_rev", "DVC_EXP_BASELINE_REV")):
        if os.environ.get(variable):
            tags[tag] = os.environ[variable]
    return tags


def fail_abandoned_runs(experiment_id: str, dvc_stage: str) -> list[str]:
    """Mark FAILED the RUNNING runs of `dvc_stage` whose process on this host is gone (killed, e.g. SIGKILL).

    Runs that end by an exception are marked FAILED by MLflow itself; a killed process cannot
    do that, so the next run of the same stage does it. Returns the run ids it marked.
    """
    import mlflow

    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.dvc_stage = '{dvc_stage}'"
    )
    marked = []
    for run in runs:
        tags = run.data.tags
        if tags.get("host") == socket.gethostname() and not _alive(int(tags.get("pid", "0"))):
            client.set_terminated(run.info.run_id, status="FAILED")
            marked.append(run.info.run_id)
            print(f"marked abandoned MLflow run {run.info.run_id} ({run.info.run_name}) FAILED", flush=True)
    return marked


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


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
    # Stages that start together (Slurm jobs, queued experiments) may each find this dataset missing from the
    # store and each insert it; the store's primary key refuses all but the first. Then the row exists, and
    # logging again links it to this run.
    for attempt in range(DATASET_ATTEMPTS):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except mlflow.MlflowException:
            if attempt == DATASET_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


@contextlib.contextmanager
def child_runs(parent_run_id: str, children: list[tuple[str, dict, dict]]) -> Iterator[list[str]]:
    """Open one child run of `parent_run_id` per (run name, tags, params); yield their ids.

    They stay RUNNING while the block runs (a stack trains them all at once), and end FINISHED,
    or FAILED if the block raises (including SIGTERM, see cli.py).
    """
    import mlflow
    from mlflow.entities import Param
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = mlflow.MlflowClient()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    run_ids = []
    try:
        for name, tags, params in children:
            run = client.create_run(experiment_id, run_name=name, tags={**tags, MLFLOW_PARENT_RUN_ID: parent_run_id})
            run_ids.append(run.info.run_id)
            client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        yield run_ids
    except BaseException:
        for run_id in run_ids:
            client.set_terminated(run_id, status="FAILED")
        raise
    for run_id in run_ids:
        client.set_terminated(run_id, status="FINISHED")


def log_model(run_id: str, model, example_images, registered_name: str | None = None) -> None:
    """Log `model` to run `run_id` as an MLflow pyfunc model: mlflow.pyfunc.load_model(f"runs:/{run_id}/model").

    Its predict takes images (n, 1, 28, 28) and returns {"reconstruction", "code"} (pyfunc_model.py, logged as
    code, not pickled); the network itself is a torch.export program (pt2: a traced graph and its weights, no
    pickle to execute on load) for any batch size. A signature of images in and both arrays out;
    `example_images` (at least two) as the input example, which MLflow validates by running the model; pip
    requirements given, so MLflow does not spend seconds inferring them. With `registered_name`, the model is
    also registered under it in the model registry.
    """
    import tempfile

    import mlflow
    import numpy as np
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    model = model.eval()
    with torch.no_grad():
        _, code = model(example_images)
    program = torch.export.export(model, (example_images,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    f32 = np.dtype(np.float32)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(f32, (-1, 1, 28, 28))]),
        outputs=Schema([TensorSpec(f32, (-1, 1, 28, 28), "reconstruction"), TensorSpec(f32, (-1, *code.shape[1:]), "code")]),
    )
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id, nested=True):
        program_file = Path(tmp) / "model.pt2"
        torch.export.save(program, program_file)
        mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                                artifacts={"program": str(program_file)}, signature=signature,
                                input_example=example_images.numpy(), pip_requirements=requirements,
                                registered_model_name=registered_name)


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    """Log metrics to a run that need not be the active one, in one request."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])


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
