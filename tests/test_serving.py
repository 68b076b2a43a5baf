"""A registered model through MLflow's generic interface: pyfunc in process, and `mlflow models serve` over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from sae_mnist import tracking
from sae_mnist.params import load_params
from sae_mnist.members import frontier_members, initial_stack
from tests.conftest import REPO, subprocess_env

NAME = "sae-mnist-test-conv-kl"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A small conv KL model (not trained: its weights are what matters here), logged and registered in a fresh
    SQLite store; yields the store's URI, the model and the text MLflow printed while logging it."""
    import mlflow

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={"model": params.model.model_copy(update={
        "conv": params.model.conv.model_copy(update={"channels": 4})})})
    member = next(m for m in frontier_members(params, "conv") if m.penalty == "kl" and m.default)
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
    _, (model,), _ = initial_stack("conv", params.model, [member], seed=0, images=images)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.MlflowClient(uri).create_experiment("serving", artifact_location=(root / "mlruns").as_uri())
    run = mlflow.MlflowClient(uri).create_run(experiment)
    log = root / "log.txt"
    code = ("import sys, torch; from sae_mnist import tracking; "
            "model = torch.load(sys.argv[1], weights_only=False); "
            "tracking.log_model(sys.argv[2], model, torch.rand(2, 1, 28, 28), sys.argv[3])")
    torch.save(model, root / "model.pt")
    # A separate process, as a stage logs it: everything MLflow prints goes to its output, which the test reads.
    with log.open("w") as out:
        subprocess.run([sys.executable, "-c", code, str(root / "model.pt"), run.info.run_id, NAME], check=True,
                       env=subprocess_env(MLFLOW_TRACKING_URI=uri), stdout=out, stderr=subprocess.STDOUT)
    yield uri, model.eval(), log.read_text()
    mlflow.set_tracking_uri(None)


def images(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 28, 28), dtype=np.float32)


def test_logging_prints_no_false_errors(registered):
    _, _, printed = registered
    assert "Got error" not in printed and "Failed to validate" not in printed, printed


def test_pyfunc_predicts_what_the_model_computes(registered):
    import mlflow

    uri, model, _ = registered
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    for n in (1, 4):  # any batch size, one included
        x = images(n)
        out = loaded.predict(x)
        reconstruction, code = model(torch.from_numpy(x))
        assert np.array_equal(out["reconstruction"], reconstruction.detach().numpy())
        assert np.array_equal(out["code"], code.detach().numpy()) and out["code"].shape == (n, 4, 7, 7)
    # the torch module itself, for users of the former mlflow.pytorch.load_model
    module = loaded.unwrap_python_model().module
    assert torch.equal(module(torch.from_numpy(images(3)))[1], model(torch.from_numpy(images(3)))[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_with_the_same_numbers(registered, tmp_path):
    uri, model, _ = registered
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", f"models:/{NAME}/1", "--env-manager", "local", "--host", "127.0.0.1",
         "--port", str(port)], env=subprocess_env(MLFLOW_TRACKING_URI=uri), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, Path(log.name).read_text()
                assert time.monotonic() < deadline, f"no answer in 120 s:\n{Path(log.name).read_text()}"
                time.sleep(0.5)
        x = images(3)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         data=json.dumps({"inputs": x.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"]
        reconstruction, code = model(torch.from_numpy(x))
        # JSON carries float32 values exactly (as shortest round-trip decimals)
        assert np.array_equal(np.asarray(answer["reconstruction"], dtype=np.float32), reconstruction.detach().numpy())
        assert np.array_equal(np.asarray(answer["code"], dtype=np.float32), code.detach().numpy())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
