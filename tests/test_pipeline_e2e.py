"""The real `dvc repro` in a throwaway copy of the repository, on a tiny configuration, offline.

No mirror is configured, so the download stage takes the offline fallback; the
tests check that this is loud everywhere, that DVC sees every stage, metric and
plot, that MLflow holds one run per variant with its per-epoch history, and
that a later download through a (loopback) mirror upgrades to full MNIST.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import mlflow
import pytest
import yaml

from sae_mnist.data import FALLBACK_DATASET, UPGRADE_COMMAND
from tests.conftest import copy_repo, edit_params, subprocess_env

pytestmark = pytest.mark.e2e

VARIANTS = [f"{a}-{p}" for a in ("linear", "conv") for p in ("none", "l1", "kl")]
EPOCHS = 2
SEEDS = [0, 1]


def tiny(params: dict) -> None:
    params["seeds"] = SEEDS
    params["download"].update(mirror=None, mirrors=[])
    params["train"].update(epochs=EPOCHS, max_samples=600, threads=1)
    params["model"]["linear"]["hidden"] = 32
    params["model"]["conv"]["channels"] = 4
    for arch in ("linear", "conv"):  # one extra lam; one extra beta and one extra rho
        params["sweep"]["l1"][arch] = {"lam": [params["penalty"]["l1"][arch]["lam"] * 4]}
        kl = params["penalty"]["kl"][arch]
        params["sweep"]["kl"][arch] = {"beta": [kl["beta"] * 4], "rho": [kl["rho"] / 2]}
    params["probe"].update(max_iter=20, pca_components=10)


def dvc(repo: Path, *args: str, extra_env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["dvc", *args], cwd=repo, env=subprocess_env(**(extra_env or {})), capture_output=True, text=True, timeout=1200
    )
    if check and result.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("e2e"))
    edit_params(repo, tiny)
    result = dvc(repo, "repro")
    return repo, result


def test_every_stage_is_listed(run):
    repo, _ = run
    names = dvc(repo, "stage", "list", "--name-only").stdout.split()
    expected = ["download", "baselines", "report"] + [f"evaluate@{v}" for v in VARIANTS]
    expected += [f"train@{arch}-{seed}" for arch in ("linear", "conv") for seed in SEEDS]  # one stack per arch and seed
    assert sorted(names) == sorted(expected)


def test_fallback_is_named_everywhere(run):
    repo, result = run
    assert "OFFLINE FALLBACK" in result.stderr and UPGRADE_COMMAND in result.stderr
    manifest = json.loads((repo / "data/mnist/manifest.json").read_text())
    assert manifest["dataset"] == FALLBACK_DATASET
    report = (repo / "reports/report.md").read_text()
    assert report.splitlines()[0] == f"# Sparse autoencoders on {FALLBACK_DATASET}: L1 vs KL sparsity"
    assert UPGRADE_COMMAND in report
    for variant in VARIANTS:
        assert json.loads((repo / f"metrics/{variant}.json").read_text())["dataset"] == FALLBACK_DATASET


def test_metrics_and_plots_are_declared(run, tmp_path):
    repo, _ = run
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert sorted(files) == sorted(f"metrics/{v}.json" for v in VARIANTS)
    for path, content in files.items():
        metrics = content["data"]
        assert 0 < metrics["fvu"] < 2 and math.isfinite(metrics["psnr_db"]), path
        assert 0 <= metrics["dead_fraction"] <= 1 and 0 <= metrics["l0"] <= metrics["code_size"]
    assert "rho_hat_abs_error" in files["metrics/linear-kl.json"]["data"]
    dvc(repo, "plots", "show", "-o", str(tmp_path / "plots"))
    html = (tmp_path / "plots" / "index.html").read_text()
    assert all(f"logs/train/{arch}/seed-{seed}/{arch}-{p}.csv" in html
               for arch in ("linear", "conv") for seed in SEEDS for p in ("none", "l1", "kl"))
    assert dvc(repo, "status").stdout.strip() == "Data and pipelines are up to date."


def test_report_has_every_section_and_figure(run):
    repo, _ = run
    report = (repo / "reports/report.md").read_text()
    for heading in ("## Verdict at matched sparsity", "## All variants", "## L1 against KL", "### linear", "### conv",
                    "## Matched sparsity", "## Linear probes", "## Features", "## Reconstructions", "## How to cite"):
        assert heading in report
    links = [line.split("(", 1)[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    for link in links:
        assert (repo / "reports" / link).is_file(), link
    assert {"figures/frontier-linear.png", "figures/frontier-conv.png", "figures/rho-hat.png"} <= set(links)
    assert "git commit" in report and "sha256:" in report and "Welch p" in report
    for arch in ("linear", "conv"):  # a generated verdict line per architecture
        assert any(line.startswith(f"- {arch}: ") for line in report.splitlines())
    html = (repo / "reports/report.html").read_text()
    assert html.count("data:image/png;base64,") == len(links) and 'src="figures/' not in html


def test_mlflow_holds_a_parent_run_per_stack_and_a_child_run_per_model(run):
    repo, _ = run
    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sae-mnist")
    assert experiment.artifact_location == (repo / "mlruns" / "sae-mnist").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.status for r in runs} == {"FINISHED"}
    manifest = json.loads((repo / "data/mnist/manifest.json").read_text())
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(r.info.run_name for r in parents.values()) == sorted(
        f"{arch}-seed{seed}" for arch in ("linear", "conv") for seed in SEEDS)
    for parent in parents.values():
        assert parent.inputs.dataset_inputs[0].dataset.name == FALLBACK_DATASET
        assert parent.data.tags["dvc_stage"] == f"train@{parent.data.tags['arch']}-{parent.data.tags['seed']}"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    assert len(children) == len(runs) - len(parents)
    main = [r for r in children if r.data.tags["default_setting"] == "true"]
    assert sorted(r.info.run_name for r in main) == sorted(f"{v}-seed{s}" for v in VARIANTS for s in SEEDS)
    for r in children:
        parent = parents[r.data.tags["mlflow.parentRunId"]]
        variant = r.data.tags["variant"]
        assert (r.data.tags["arch"], r.data.tags["seed"]) == (parent.data.tags["arch"], parent.data.tags["seed"])
        assert r.data.tags["dataset"] == FALLBACK_DATASET and r.data.tags["data_digest"] == manifest["digest"]
        assert len(r.data.tags["git_commit"]) >= 40
        history = client.get_metric_history(r.info.run_id, "train_recon")
        assert [m.step for m in history] == list(range(1, EPOCHS + 1))
        assert "test_fvu" in r.data.metrics and r.data.params["penalty"] == variant.split("-")[1]
        assert r.data.metrics["stack_size"] == len([c for c in children
                                                    if c.data.tags["mlflow.parentRunId"] == parent.info.run_id])
    for r in main:
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        figures = {"reconstructions.png", "features.png", "activations.png"}
        assert "model" in artifacts and (figures <= artifacts) == (r.data.tags["seed"] == str(SEEDS[0]))
    # Sweep: one run per extra setting, on the first seed, its strength logged as a param.
    sweep = [r for r in children if r not in main]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    expected = []
    for arch in ("linear", "conv"):
        expected.append((f"{arch}-l1", f"lam={params['sweep']['l1'][arch]['lam'][0]:g}"))
        kl = params["penalty"]["kl"][arch]
        expected.append((f"{arch}-kl", f"beta={params['sweep']['kl'][arch]['beta'][0]:g},rho={kl['rho']:g}"))
        expected.append((f"{arch}-kl", f"beta={kl['beta']:g},rho={params['sweep']['kl'][arch]['rho'][0]:g}"))
    assert sorted((r.data.tags["variant"], r.data.tags["setting"]) for r in sweep) == sorted(expected)
    for r in sweep:
        assert r.data.tags["seed"] == str(SEEDS[0])
        assert {"penalty_params.lam"} <= set(r.data.params) or {"penalty_params.beta", "penalty_params.rho"} <= set(r.data.params)


def test_penalty_params_rerun_only_their_stages(run):
    repo, _ = run
    original = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, lambda p: p["penalty"]["kl"]["linear"].update(beta=0.123))
        changed = sorted(json.loads(dvc(repo, "status", "--json").stdout))
        # A stack holds every penalty of its architecture: both linear stacks re-train, conv's do not.
        assert changed == ["evaluate@linear-kl", "report", "train@linear-0", "train@linear-1"]
        (repo / "params.yaml").write_text(original)
        edit_params(repo, lambda p: p["sweep"]["l1"]["conv"].update(lam=[0.5, 2.0]))
        changed = sorted(json.loads(dvc(repo, "status", "--json").stdout))
        assert changed == ["report", "train@conv-0", "train@conv-1"]
    finally:
        (repo / "params.yaml").write_text(original)


def test_rerun_gives_identical_metrics(run):
    repo, _ = run
    subprocess.run(["git", "add", "metrics"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "first run"],
                   cwd=repo, check=True)
    for stage in ("train@linear-0", "evaluate@linear-l1", "train@conv-1", "evaluate@conv-kl"):
        dvc(repo, "repro", "--force", "--single-item", stage)
    assert dvc(repo, "metrics", "diff", "--json").stdout.strip() in ("", "{}")
    assert "train_wall_time_s" not in json.loads((repo / "metrics/linear-l1.json").read_text())


def test_mirror_upgrades_the_fallback(run, mnist_mirror, serve):
    repo, _ = run
    url = serve(mnist_mirror)
    dvc(repo, "repro", "--force", "download", extra_env={"MNIST_MIRROR": url})
    manifest = json.loads((repo / "data/mnist/manifest.json").read_text())
    assert manifest["dataset"] == "mnist" and manifest["counts"] == {"train": 60_000, "test": 10_000}
    assert "train@linear-0" in json.loads(dvc(repo, "status", "--json").stdout)
