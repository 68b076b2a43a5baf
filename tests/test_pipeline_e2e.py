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
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from sae_mnist.data import FALLBACK_DATASET, UPGRADE_COMMAND
from tests.conftest import edit_params, subprocess_env

pytestmark = pytest.mark.e2e

PENALTIES = ("none", "l1", "kl", "topk")
VARIANTS = [f"{a}-{p}" for a in ("linear", "conv") for p in PENALTIES]
EPOCHS = {"linear": 2, "conv": 3}  # each architecture its own budget
SEEDS = [0, 1]
BUDGET_FACTORS, LR_FACTORS = [0.5, 2.0], [3.0]  # EPOCHS x 0.5 rounds to 1 and 2 epochs
SELECT_FACTORS = [1.0, 3.0]  # lr_select: two rates per architecture, never extended (max_rates 2)
EXTRA_SEEDS = [2]  # sparse_end@conv: one more seed of conv's sweep lam and its first KL path


def tiny(params: dict) -> None:
    params["seeds"] = SEEDS
    params["download"].update(mirror=None, mirrors=[])
    params["train"].update(epochs=EPOCHS, max_samples=600, threads=1)
    params["model"]["linear"]["hidden"] = 32
    params["model"]["conv"]["channels"] = 4
    params["sweep"]["l0_range"] = {"linear": [1, 100000], "conv": [1, 100000]}  # tiny models: the covered range
    for arch in ("linear", "conv"):  # one extra lam, 4 KL settings on 3 paths, one k: 1 + 2 + 5 + 2 models per stack
        params["sweep"]["l1"][arch] = {"lam": [params["penalty"]["l1"][arch]["lam"] * 4]}
        kl = params["penalty"]["kl"][arch]
        params["sweep"]["kl"][arch] = [{"beta": kl["beta"] * 4, "scale": kl["scale"], "rho": [kl["rho"]]},
                                       {"beta": kl["beta"], "scale": kl["scale"], "rho": [kl["rho"] / 2]},
                                       {"beta": kl["beta"], "scale": 1.0, "rho": [kl["rho"], kl["rho"] / 2]}]
        params["penalty"]["topk"][arch] = {"k": 8}
        params["sweep"]["topk"][arch] = {"k": [4]}
    params["wide"]["hidden"] = 48
    params["wide"]["topk"] = {"k": 6}
    params["probe"].update(C=[0.1, 1.0], max_iter=50, pca_components=10)
    params["robustness"].update(budget_factors=BUDGET_FACTORS, lr_factors=LR_FACTORS)
    params["lr_select"].update(factors={"linear": SELECT_FACTORS, "conv": SELECT_FACTORS}, max_rates=2)
    kl = params["sweep"]["kl"]["conv"][0]
    params["sparse_end"] = {"conv": {"seeds": EXTRA_SEEDS, "l1": params["sweep"]["l1"]["conv"], "kl": [kl]}}


def dvc(repo: Path, *args: str, extra_env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["dvc", *args], cwd=repo, env=subprocess_env(**(extra_env or {})), capture_output=True, text=True, timeout=1200
    )
    if check and result.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def run(tiny_pipeline):
    """The session's tiny-profile run (conftest.tiny_pipeline); the tests below re-run parts of it in place."""
    return tiny_pipeline


def test_every_stage_is_listed(run):
    repo, _ = run
    names = dvc(repo, "stage", "list", "--name-only").stdout.split()
    expected = ["download", "baselines", "report", "ablation@linear", "ablation@conv"]
    expected += [f"evaluate@{v}" for v in VARIANTS if not v.endswith("-topk")] + [f"wide@{seed}" for seed in SEEDS]
    expected += [f"evaluate_topk@{arch}-topk" for arch in ("linear", "conv")]  # the reference, outside the core
    # one stack per arch and seed, and one of the TopK reference
    expected += [f"{stage}@{arch}-{seed}" for stage in ("train", "train_topk") for arch in ("linear", "conv")
                 for seed in SEEDS]
    expected += [f"robustness@{arch}-{study}" for arch in ("linear", "conv") for study in ("budget", "lr")]
    expected += ["lr_select@linear", "lr_select@conv", "sparse_end@conv", "probes@linear", "probes@conv"]
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


def test_a_run_prints_no_false_errors(run):
    # Warnings that need no action teach users to ignore the ones that do.
    _, result = run
    output = result.stdout + result.stderr
    for false_alarm in ("Got error", "Failed to validate", "missing from font", "Add type hints"):
        assert false_alarm not in output, false_alarm


def test_metrics_and_plots_are_declared(run, tmp_path):
    from sae_mnist.layout import stack_dir

    repo, _ = run
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert list(files) == ["metrics/headline.json"]  # one small file: what `dvc exp show` has columns for
    headline = files["metrics/headline.json"]["data"]
    assert set(headline) == {"primary", *VARIANTS}
    for variant in VARIANTS:
        assert set(headline[variant]) == {"fvu", "l0", "dead", "probe"} and 0 < headline[variant]["fvu"] < 2
    for arch, primary in headline["primary"].items():
        assert set(primary) == {"kl_minus_l1_fvu", "ci_low", "ci_high", "holm_p"}
    for variant in VARIANTS:  # the full per-variant metrics stay plain JSON
        metrics = json.loads((repo / f"metrics/{variant}.json").read_text())
        assert math.isfinite(metrics["psnr_db"]) and 0 <= metrics["l0"] <= metrics["code_size"]
    assert "rho_hat_relative_error" in json.loads((repo / "metrics/linear-kl.json").read_text())
    dvc(repo, "plots", "show", "-o", str(tmp_path / "plots"))
    html = (tmp_path / "plots" / "index.html").read_text()
    assert all(f"logs/train/{stack_dir(arch, p)}/seed-{seed}/{arch}-{p}.csv" in html
               for arch in ("linear", "conv") for seed in SEEDS for p in PENALTIES)
    assert "frontier-linear" in html and "frontier-conv" in html  # the FVU-L0 frontier as a DVC plot

    assert dvc(repo, "status").stdout.strip() == "Data and pipelines are up to date."


def test_every_frontier_point_is_evaluated_on_every_seed(run):
    repo, _ = run
    params = yaml.safe_load((repo / "params.yaml").read_text())
    rates = {arch: {p: c["lr"] for p, c in json.loads((repo / f"lr_select/{arch}.json").read_text())["chosen"].items()}
             for arch in ("linear", "conv")}
    for variant in VARIANTS:
        arch, penalty = variant.split("-")
        frontier = json.loads((repo / f"frontier/{variant}.json").read_text())
        n_train = json.loads((repo / "data/mnist/manifest.json").read_text())["counts"]["train"]
        assert frontier["splits"]["validation"]["images"] == n_train // 6  # the fallback's: a sixth held out
        assert frontier["splits"]["fit"]["images"] + n_train // 6 == n_train
        settings = {json.dumps(pt["setting"], sort_keys=True) for pt in frontier["points"]}
        expected = {"none": 1, "l1": 2, "kl": 5, "topk": 2}[penalty]  # tiny(): default + the extra settings
        assert len(settings) == expected, variant
        assert len(frontier["points"]) == expected * len(SEEDS)
        assert {pt["seed"] for pt in frontier["points"]} == set(SEEDS)
        for pt in frontier["points"]:
            m = pt["metrics"]
            assert {f"fvu_at_{t:g}" for t in params["evaluate"]["thresholds"]} <= set(m)
            assert {f"l0_at_{t:g}" for t in params["evaluate"]["thresholds"]} <= set(pt["validation"])  # placement
            assert "convergence" in pt["training"]
            assert pt["training"]["lr"] == rates[arch].get(penalty, params["train"]["lr"])  # lr_select's choice
            # the evaluate stage probes the defaults; probes@<arch> every other point of the compared frontiers
            assert ("probe_accuracy" in m) == pt["default"]
            if penalty in ("l1", "kl") and not pt["default"]:
                probed = json.loads((repo / f"probes/{arch}.json").read_text())["variants"][variant]
                assert probed["probe_C"] == frontier["probe_C"]
                m = next(p["metrics"] for p in probed["points"] if (p["name"], p["seed"]) == (pt["name"], pt["seed"]))
            if penalty in ("l1", "kl") or pt["default"]:
                assert 0 <= m["probe_accuracy"] <= 1
    for arch in ("linear", "conv"):
        ablation = json.loads((repo / f"ablation/{arch}.json").read_text())
        assert ablation["split"] == "validation"
        assert len(ablation["models"]) == 4 * 7  # each variant x (full, without each of 5 parts, without all)
    for seed in SEEDS:
        wide = json.loads((repo / f"wide/seed-{seed}.json").read_text())
        assert [m["variant"] for m in wide["models"]] == ["linear-l1", "linear-kl", "linear-topk"]
        assert all(m["hidden"] == params["wide"]["hidden"] and "probe_accuracy" in m["metrics"] for m in wide["models"])
    budgets = {"linear": [1, 4], "conv": [2, 6]}  # EPOCHS x BUDGET_FACTORS, rounded (3 x 0.5 -> 2)
    for arch in ("linear", "conv"):  # every L1 and KL frontier setting at each factor, on one seed
        settings = {p: len({json.dumps(pt["setting"]) for pt in json.loads(
            (repo / f"frontier/{arch}-{p}.json").read_text())["points"]}) for p in ("l1", "kl")}
        for study, factors in (("budget", BUDGET_FACTORS), ("lr", LR_FACTORS)):
            robust = json.loads((repo / f"robustness/{arch}-{study}.json").read_text())
            assert (robust["arch"], robust["study"], robust["seed"], robust["split"]) == (arch, study, 0, "validation")
            assert [v["factor"] for v in robust["variations"]] == factors
            assert [v["epochs"] for v in robust["variations"]] == (
                budgets[arch] if study == "budget" else [EPOCHS[arch]] * len(factors))
            for v in robust["variations"]:
                assert [pt["penalty"] for pt in v["points"]] == ["l1"] * settings["l1"] + ["kl"] * settings["kl"]
                scale = v["factor"] if study == "lr" else 1.0  # the lr study: each penalty's own rate times it
                assert v["rates"] == pytest.approx({p: rates[arch][p] * scale for p in ("l1", "kl")})
                assert {(pt["training"]["epochs"], pt["training"]["lr"]) for pt in v["points"]} == {
                    (v["epochs"], v["rates"][p]) for p in ("l1", "kl")}


def test_extra_seeds_train_only_the_settings_params_name_at_the_chosen_rates(run):
    repo, _ = run
    extra = json.loads((repo / "sparse_end/conv.json").read_text())
    rates = json.loads((repo / "lr_select/conv.json").read_text())["chosen"]
    assert extra["seeds"] == EXTRA_SEEDS and extra["rates"] == {p: rates[p]["lr"] for p in ("l1", "kl")}
    assert sorted((pt["penalty"], pt["seed"]) for pt in extra["points"]) == [("kl", 2), ("l1", 2)]
    for pt in extra["points"]:
        assert pt["training"]["lr"] == rates[pt["penalty"]]["lr"] and "fvu_at_0.1" in pt["metrics"]
    assert "Extra seeds 2 (`sparse_end@conv`" in (repo / "reports/report.md").read_text()


def test_report_has_every_section_and_figure(run):
    repo, _ = run
    report = (repo / "reports/report.md").read_text()
    for heading in ("## Verdict", "## Checks", "## What was trained", "## Matched sparsity", "### linear", "### conv",
                    "## Recipe ablation", "## Robustness", "## KL on equal terms", "## Every variant", "## Convergence",
                    "## Training cost", "## Linear probes", "### A wide code", "## Features", "## Reconstructions",
                    "## How to cite"):
        assert heading in report, heading
    cost = report.split("## Training cost")[1].split("\n## ")[0]  # a row per stack, no interval of wall times
    assert [row.split(" | ")[:2] for row in cost.splitlines() if row.startswith(("| linear ", "| conv "))] == [
        [f"| {arch}", str(seed)] for arch in ("linear", "conv") for seed in SEEDS]
    assert "train s |" not in report  # the old per-variant column
    links = [line.split("(", 1)[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    for link in links:
        assert (repo / "reports" / link).is_file(), link
    assert {"figures/frontier-linear.png", "figures/frontier-conv.png", "figures/rho-hat.png"} <= set(links)
    assert "git commit" in report and "sha256:" in report and "paired p" in report and "Holm p" in report
    summary = json.loads((repo / "reports/summary.json").read_text())
    verdict = report.split("## Verdict")[1].split("\n## ")[0]
    compared = [arch for arch in ("linear", "conv") if "grid" in summary["primary"][arch]]
    assert compared  # the tiny sweeps overlap in L0 on at least one architecture
    for arch in ("linear", "conv"):  # a generated verdict line each; where the frontiers overlap, the curve too
        assert any(line.startswith(f"- {arch}: ") for line in verdict.splitlines())
        assert (f"### {arch}: KL − L1 along L0" in verdict) == (arch in compared)
        assert (f"](figures/verdict-{arch}.png)" in verdict) == (arch in compared)
    for arch in compared:  # the sensitivity line, and the covered range holding the grid, each point with its interval
        assert any(line.startswith(f"- {arch}, sensitivity: with FVU interpolated") for line in verdict.splitlines())
        primary = summary["primary"][arch]
        lo, hi = primary["l0_range"]
        assert len(primary["grid"]) == len(primary["at_grid"]) == 9
        assert lo < min(primary["grid"]) < max(primary["grid"]) < hi
        assert primary["interpolation"] == "log FVU interpolated linearly in log L0"
        assert {"l0", "fvu_l1", "fvu_kl", "diff", "ci_low", "ci_high", "p"} <= set(primary["at_grid"][0])
        assert summary["sensitivity"][arch]["interpolation"] == "FVU interpolated linearly in log L0"
    assert "| L0 grid point | FVU L1 | FVU KL | KL − L1 | 95% CI | paired p |" in verdict
    html = (repo / "reports/report.html").read_text()
    assert html.count("data:image/png;base64,") == len(links) and 'src="figures/' not in html
    assert set(summary["verdicts"]) == {"linear", "conv"} and summary["checks"] and summary["smoke"] is False
    # conv's dead and always-on units are channels, counted per seed (tiny(): 4 channels, 32 linear units)
    table = report.split("## Every variant")[1].split("\n## ")[0]
    assert all("of 4 channels" in row for row in table.splitlines() if row.startswith("| conv-"))
    assert all("of 32 units" in row for row in table.splitlines() if row.startswith("| linear-"))
    assert any("conv-none: at most 1 dead channel of 4 on every seed" in c["check"] for c in summary["checks"])


def test_mlflow_holds_a_parent_run_per_stack_and_a_child_run_per_model(run):
    repo, _ = run
    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sae-mnist")
    assert experiment.artifact_location == (repo / "mlruns" / "sae-mnist").as_uri()
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert {r.info.status for r in runs} == {"FINISHED"}
    manifest = json.loads((repo / "data/mnist/manifest.json").read_text())
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.run_name != "report"}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    hidden = params["wide"]["hidden"]
    assert sorted(r.info.run_name for r in parents.values()) == sorted(
        [f"{arch}{topk}-seed{seed}" for arch in ("linear", "conv") for seed in SEEDS for topk in ("", "-topk")]
        + [f"{arch}-ablation-seed0" for arch in ("linear", "conv")] + [f"linear{hidden}-seed{seed}" for seed in SEEDS]
        + [f"{arch}-robustness-{study}-x{f:g}-seed0" for arch in ("linear", "conv")
           for study, factors in (("budget", BUDGET_FACTORS), ("lr", LR_FACTORS)) for f in factors]
        + [f"{arch}-lr_select-lr-x{f:g}-seed0" for arch in ("linear", "conv") for f in SELECT_FACTORS]
        + [f"conv-sparse_end-seed{seed}" for seed in EXTRA_SEEDS])
    for parent in parents.values():
        assert parent.inputs.dataset_inputs[0].dataset.name == FALLBACK_DATASET
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    assert len(children) == len(runs) - len(parents) - 1  # and the report's run
    frontier = [r for r in children if r.data.tags["dvc_stage"].startswith(("train@", "train_topk@"))]
    per_stack = {"none": 1, "l1": 2, "kl": 5, "topk": 2}
    assert len(frontier) == 2 * len(SEEDS) * sum(per_stack.values())
    main = [r for r in frontier if r.data.tags["default_setting"] == "true"]
    assert sorted(r.info.run_name for r in main) == sorted(f"{v}-seed{s}" for v in VARIANTS for s in SEEDS)
    for r in frontier:
        parent = parents[r.data.tags["mlflow.parentRunId"]]
        variant = r.data.tags["variant"]
        assert (r.data.tags["arch"], r.data.tags["seed"]) == (parent.data.tags["arch"], parent.data.tags["seed"])
        stage = "train_topk" if variant.endswith("-topk") else "train"
        address = f"{stage}@{r.data.tags['arch']}-{r.data.tags['seed']}"
        assert parent.data.tags["dvc_stage"] == r.data.tags["dvc_stage"] == address
        assert r.data.tags["dataset"] == FALLBACK_DATASET and r.data.tags["data_digest"] == manifest["digest"]
        assert len(r.data.tags["git_commit"]) >= 40
        history = client.get_metric_history(r.info.run_id, "train_recon")
        assert [m.step for m in history] == list(range(1, EPOCHS[r.data.tags["arch"]] + 1))
        assert {"test_fvu", "validation_fvu", "train_relative_change_last_tenth"} <= set(r.data.metrics)
        probed = variant.split("-")[1] in ("l1", "kl") or r.data.tags["default_setting"] == "true"
        assert ("test_probe_accuracy" in r.data.metrics) == probed
        assert r.data.params["penalty"] == variant.split("-")[1]
        topk = variant.endswith("-topk")  # the reference's own stack; the others share one
        assert r.data.metrics["stack_size"] == sum(n for p, n in per_stack.items() if (p == "topk") == topk)
    for r in main:
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        figures = {"reconstructions.png", "features.png", "activations.png"}
        assert (figures <= artifacts) == (r.data.tags["seed"] == str(SEEDS[0]))
        assert r.data.tags["mlflow.note.content"].startswith(r.data.tags["variant"])  # a description in words
    registered = {m.name for m in client.search_registered_models()}
    assert registered == {f"sae-mnist-{v}" for v in VARIANTS}
    report_runs = [r for r in runs if r.info.run_name == "report"]
    assert len(report_runs) == 1 and "report.html" in {a.path for a in client.list_artifacts(report_runs[0].info.run_id)}
    assert any("system/cpu_utilization_percentage" in p.data.metrics for p in parents.values())  # system metrics
    ablations = [r for r in children if r.data.tags["dvc_stage"].startswith("ablation@")]
    # the recipe is a choice: its models are scored on the validation split
    assert len(ablations) == 2 * 28 and all("validation_fvu" in r.data.metrics for r in ablations)


def test_a_logged_model_loads_back_and_reconstructs_like_its_weights(run):
    import mlflow.pyfunc
    import numpy as np
    import torch

    from sae_mnist.heldout import load_model
    from sae_mnist.layout import stack_dir

    repo, _ = run
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    for name in ("linear-kl", "conv-topk"):
        arch, penalty = name.split("-")
        models = repo / "models" / stack_dir(arch, penalty) / "seed-0"
        info = json.loads((models / f"{name}.json").read_text())
        loaded = mlflow.pyfunc.load_model(f"runs:/{info['mlflow_run_id']}/model")
        reference, _ = load_model(info, models / f"{name}.pt")
        x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # any batch size
        with torch.no_grad():
            got, want = loaded.predict(x.numpy()), reference(x)
        assert np.allclose(got["reconstruction"], want[0], atol=1e-5) and np.allclose(got["code"], want[1], atol=1e-5)


def test_penalty_params_rerun_only_their_stages(run):
    repo, _ = run
    original = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, lambda p: p["penalty"]["kl"]["linear"].update(beta=0.123))
        changed = sorted(json.loads(dvc(repo, "status", "--json").stdout))
        # A stack holds every compared penalty of its architecture: the linear stacks re-train (and the linear
        # ablation, whose KL default changed), conv's and the TopK reference's do not.
        assert changed == ["ablation@linear", "lr_select@linear", "report", "robustness@linear-budget",
                           "robustness@linear-lr", "train@linear-0", "train@linear-1"]
        (repo / "params.yaml").write_text(original)
        edit_params(repo, lambda p: p["sweep"]["l1"]["conv"].update(lam=[0.5, 2.0]))
        changed = sorted(json.loads(dvc(repo, "status", "--json").stdout))
        assert changed == ["lr_select@conv", "report", "robustness@conv-budget", "robustness@conv-lr",
                           "sparse_end@conv", "train@conv-0", "train@conv-1"]
    finally:
        (repo / "params.yaml").write_text(original)


def test_rerun_gives_identical_metrics(run):
    repo, _ = run
    subprocess.run(["git", "add", "metrics", "frontier"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "first run",
                    "--allow-empty"], cwd=repo, check=True)  # the Slurm test may have committed them already
    for stage in ("train@linear-0", "evaluate@linear-l1", "train@conv-1", "evaluate@conv-kl", "report"):
        dvc(repo, "repro", "--force", "--single-item", stage)
    assert dvc(repo, "metrics", "diff", "--json").stdout.strip() in ("", "{}")
    changed = subprocess.run(["git", "status", "--porcelain", "metrics"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout
    assert changed == ""  # every metrics file bit for bit (the frontier files hold wall times, so they do differ)
    assert "train_wall_time_s" not in json.loads((repo / "metrics/linear-l1.json").read_text())


def test_results_pushed_to_a_remote_pull_into_a_fresh_clone(run, tmp_path):
    """A reader's path: `dvc pull` in a fresh clone restores every output, and nothing needs re-training."""
    repo, _ = run
    dvc(repo, "repro")  # what a publisher has: every stage up to date (earlier tests re-ran some)
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "-d", "shared", str(remote))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "results",
                    "--allow-empty"], cwd=repo, check=True)
    dvc(repo, "push", "--run-cache")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    dvc(clone, "pull")
    assert dvc(clone, "status").stdout.strip() == "Data and pipelines are up to date."
    assert (clone / "models/linear/seed-0/linear-l1.pt").is_file()
    result = dvc(clone, "repro")
    assert "Running stage" not in result.stdout  # no stage re-runs, training least of all
    assert dvc(clone, "metrics", "diff", "--json").stdout.strip() in ("", "{}")
    # One model, by its artifact name and registered version, without cloning: what a reader citing a model does.
    subprocess.run([str(Path(sys.executable).parent / "gto"), "register", "sae-mnist-linear-l1", "--version", "v1.0.0"],
                   cwd=repo, env=subprocess_env(), check=True, capture_output=True)
    out = tmp_path / "fetched.pt"
    dvc(tmp_path, "artifacts", "get", str(repo), "sae-mnist-linear-l1", "--out", str(out))
    assert out.read_bytes() == (repo / "models/linear/seed-0/linear-l1.pt").read_bytes()


def test_mirror_upgrades_the_fallback(run, mnist_mirror, serve):
    repo, _ = run
    url = serve(mnist_mirror)
    dvc(repo, "repro", "--force", "download", extra_env={"MNIST_MIRROR": url})
    manifest = json.loads((repo / "data/mnist/manifest.json").read_text())
    assert manifest["dataset"] == "mnist" and manifest["counts"] == {"train": 60_000, "test": 10_000}
    assert "train@linear-0" in json.loads(dvc(repo, "status", "--json").stdout)
