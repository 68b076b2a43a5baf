"""What the MLflow additions cost: logged models, system metrics, descriptions and the report run.

    python benchmarks/mlflow_overhead.py [--repeats 3] [--stage-times benchmarks/stage_times.json]
        [--out benchmarks/mlflow_overhead.json]

Times, in a throwaway SQLite store, each piece of MLflow work the pipeline does beyond per-epoch and
test metrics: logging (and registering) one default model in the pt2 format, for linear and conv; a
parent run with system metrics and a description, started and ended (the sampling thread itself wakes
every 10 s to read /proc: nothing beside a training step); the report's run with report.html. Then
multiplies by how often the default pipeline does each (one logged model per variant and seed, one
parent run per training stage) and compares with the pipeline's wall time from stage_times.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sae_mnist.models import ConvSAE, LinearSAE
from sae_mnist.params import load_params
from sae_mnist.penalties import L1Penalty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stage-times", type=Path, default=Path("benchmarks/stage_times.json"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/mlflow_overhead.json"))
    args = parser.parse_args()
    params = load_params()
    torch.set_num_threads(params.train.threads)
    import os

    with tempfile.TemporaryDirectory(prefix="mlflow-overhead-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.environ["DVC_ROOT"] = tmp
        import mlflow

        from sae_mnist import tracking

        tracking.init_store("overhead")
        images = torch.rand(2, 1, 28, 28)
        seconds = {}
        for arch, make in (("linear", lambda: LinearSAE(params.model.linear.hidden, L1Penalty(0.1).activate, True)),
                           ("conv", lambda: ConvSAE(params.model.conv.channels, L1Penalty(0.1).activate, True))):
            runs = []
            for i in range(args.repeats):
                with mlflow.start_run() as run:
                    pass
                started = time.perf_counter()
                tracking.log_model(run.info.run_id, make(), images, registered_name=f"overhead-{arch}")
                runs.append(time.perf_counter() - started)
            seconds[f"log and register a {arch} model"] = statistics.median(runs)
        started = time.perf_counter()
        with mlflow.start_run(log_system_metrics=True, description="a description in words"):
            time.sleep(0.1)
        seconds["a run with system metrics and a description (start and end)"] = time.perf_counter() - started
        report = Path(tmp) / "report.html"
        report.write_bytes(b"x" * 3_000_000)  # about the size of the real one, figures embedded
        started = time.perf_counter()
        with mlflow.start_run(run_name="report"):
            mlflow.log_artifact(str(report))
        seconds["the report's run (3 MB report.html)"] = time.perf_counter() - started

    n_models = 4 * 2 * len(params.seeds)  # a logged model per variant (4 penalties x 2 architectures) and seed
    parent_runs = 2 * len(params.seeds) + 2 + len(params.seeds)  # train@{arch}-{seed}, ablation@{arch}, wide@{seed}
    total = (n_models / 2 * (seconds["log and register a linear model"] + seconds["log and register a conv model"])
             + parent_runs * seconds["a run with system metrics and a description (start and end)"]
             + seconds["the report's run (3 MB report.html)"])
    record = {"seconds": {k: round(v, 3) for k, v in seconds.items()}, "logged_models": n_models, "parent_runs": parent_runs,
              "pipeline_total_s": None, "mlflow_additions_s": round(total, 1)}
    if args.stage_times.is_file():
        pipeline = json.loads(args.stage_times.read_text())["total_s"]
        record |= {"pipeline_total_s": pipeline, "fraction": round(total / pipeline, 4)}
    print(json.dumps(record, indent=2))
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
