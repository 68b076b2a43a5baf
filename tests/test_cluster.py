"""The cluster submitter without a cluster: DVC's run-cache behaviour it relies on, its plan, config and checks.

The Slurm runs themselves are in test_cluster_slurm.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sae_mnist import cli
from sae_mnist.cluster.config import ClusterConfig, ClusterError, Resources
from sae_mnist.cluster.plan import Stage, stage_graph, with_descendants
from sae_mnist.cluster.store import require_shared_store
from tests.conftest import REPO, copy_repo, edit_params, subprocess_env
from tests.test_pipeline_e2e import tiny


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=subprocess_env(**env), capture_output=True, text=True)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _dvc_repo(root: Path) -> Path:
    """One stage whose result is a `cache: false` output, as the pipeline's committed JSON results are. Its
    command refuses to run where $FORBID is set, so a restore that silently ran it instead would fail."""
    root.mkdir()
    _run(["git", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "init", "-q"], root)
    (root / "input.txt").write_text("2\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"double": {
        "cmd": "test -z \"$FORBID\" && echo $(( $(cat input.txt) * 2 )) > result.txt",
        "deps": ["input.txt"], "outs": [{"result.txt": {"cache": False}}]}}}))
    _run(["git", "add", "-A"], root)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "stage"], root)
    return root


def _run_cache_entries(cache: Path) -> list[Path]:
    return [p for p in (cache / "runs").rglob("*") if p.is_file()] if (cache / "runs").is_dir() else []


def test_dvc_saves_a_run_cache_entry_for_cache_false_outputs_only_when_committed_by_force(tmp_path):
    """Pins the DVC behaviour the submitter is built on (dvc 3.67, PR #8738): `dvc repro` skips the run-cache
    for a stage with a `cache: false` output, `dvc commit --force` writes it, and another clone sharing the
    cache restores the stage without running it; `dvc unprotect` leaves git a plain file."""
    workspace = _dvc_repo(tmp_path / "workspace")
    cache = workspace / ".dvc" / "cache"
    _run([sys.executable, "-m", "dvc", "repro"], workspace)
    assert (workspace / "result.txt").read_text() == "4\n"
    assert _run_cache_entries(cache) == []
    _run([sys.executable, "-m", "dvc", "commit", "--force", "--quiet", "double"], workspace)
    assert len(_run_cache_entries(cache)) == 1

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", "--shared", str(workspace), str(clone)], tmp_path)
    _run([sys.executable, "-m", "dvc", "cache", "dir", "--local", str(cache)], clone)
    _run([sys.executable, "-m", "dvc", "config", "--local", "cache.type", "hardlink,symlink"], clone)
    restored = _run([sys.executable, "-m", "dvc", "repro"], clone, FORBID="1")
    assert "is cached - skipping run" in restored.stdout
    assert (clone / "result.txt").read_text() == "4\n"
    assert os.stat(clone / "result.txt").st_nlink > 1  # a link into the shared cache ...
    _run([sys.executable, "-m", "dvc", "unprotect", "result.txt"], clone)
    assert os.stat(clone / "result.txt").st_nlink == 1 and not (clone / "result.txt").is_symlink()  # ... then a file
    assert (clone / "result.txt").read_text() == "4\n"


def test_the_guard_refuses_every_stage_in_a_restore_and_other_stages_in_a_job(monkeypatch, capsys):
    ran = []
    monkeypatch.setenv("DVC_STAGE", "evaluate@linear-l1")
    monkeypatch.setenv("SAE_MNIST_RESTORE_ONLY", "1")
    with pytest.raises(SystemExit) as refused:
        cli.run_stage(lambda: ran.append(1))
    assert "evaluate@linear-l1 has no run-cache entry" in str(refused.value) and ran == []
    monkeypatch.delenv("SAE_MNIST_RESTORE_ONLY")
    monkeypatch.setenv("SAE_MNIST_ONLY_STAGE", "report")
    with pytest.raises(SystemExit) as refused:
        cli.run_stage(lambda: ran.append(1))
    assert "the cluster job for report would run evaluate@linear-l1" in str(refused.value) and ran == []
    monkeypatch.setenv("SAE_MNIST_ONLY_STAGE", "evaluate@linear-l1")
    cli.run_stage(lambda: ran.append(1))
    assert ran == [1]


def test_a_stage_and_everything_downstream_of_it_is_planned_upstream_first():
    stages = [Stage("download", ()), Stage("train@a", ("download",)), Stage("train@b", ("download",)),
              Stage("evaluate@a", ("download", "train@a")), Stage("report", ("evaluate@a", "train@b"))]
    assert with_descendants(stages, {"train@a"}) == ["train@a", "evaluate@a", "report"]
    assert with_descendants(stages, {"download"}) == [s.address for s in stages]
    assert with_descendants(stages, {"report"}) == ["report"]
    assert with_descendants(stages, set()) == []


def test_the_stage_graph_is_dvcs_own():
    stages = stage_graph(REPO)
    order = [s.address for s in stages]
    dag = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert set(order) == {line.split('"')[1] for line in dag.splitlines() if line.strip().startswith('"')
                          and "->" not in line}
    for stage in stages:  # every parent comes first: a topological order
        assert all(order.index(p) < order.index(stage.address) for p in stage.parents)
    by_address = {s.address: s for s in stages}
    assert by_address["download"].parents == ()
    assert by_address["train@linear-0"].parents == ("download", "lr_select@linear")  # the rates it trains at
    assert "train@conv-2" in by_address["evaluate@conv-l1"].parents
    assert "evaluate@conv-l1" in by_address["report"].parents and not any("report" in s.parents for s in stages)


def test_resources_come_from_default_then_the_stage_name_then_its_address():
    config = ClusterConfig(default=Resources(cpus=2, time="01:00:00"),
                           stages={"train": Resources(cpus=4, gres="gpu:1"),
                                   "train@conv-0": Resources(time="03:00:00")})
    assert config.resources("report") == Resources(cpus=2, time="01:00:00")
    assert config.resources("train@linear-0") == Resources(cpus=4, time="01:00:00", gres="gpu:1")
    assert config.resources("train@conv-0") == Resources(cpus=4, time="03:00:00", gres="gpu:1")
    config.check_stages(["report", "train@linear-0", "train@conv-0"], threads=2)


@pytest.mark.parametrize(("section", "message"), [
    ({"default": {"cpus": 0, "time": "01:00:00"}}, "cluster.default.cpus"),
    ({"default": {"cpus": 1, "time": "1 hour"}}, "cluster.default.time"),
    ({"default": {"cpus": 1}}, "default must set cpus and time"),
    ({"sbatch_extra": ["--dependency=afterany:1"]}, "the submitter sets this itself"),
    ({"sbatch_extra": ["-c4"]}, "the submitter sets this itself"),
    ({"link_types": ["softlink"]}, "cluster.link_types.0"),
    ({"partitions": "gpu"}, "cluster.partitions"),
])
def test_an_invalid_cluster_section_is_refused_naming_the_key(tmp_path, section, message):
    from sae_mnist.cluster.config import load_cluster_config

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["cluster"] = section
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ClusterError, match=message.replace(".", r"\.")):
        load_cluster_config(tmp_path / "params.yaml")


def test_stage_keys_and_cpu_counts_are_checked_against_the_pipeline():
    stages = ["download", "train@linear-0", "report"]
    with pytest.raises(ClusterError, match="trian is no stage"):
        ClusterConfig(stages={"trian": Resources(cpus=4)}).check_stages(stages, threads=2)
    with pytest.raises(ClusterError, match="train@linear-0 would get fewer CPUs than train.threads"):
        ClusterConfig(stages={"train": Resources(cpus=1)}).check_stages(stages, threads=2)


@pytest.mark.parametrize("uri", [None, "", "sqlite:///mlflow.db", "file:///tmp/mlruns", "./mlruns", "/abs/mlruns"])
def test_a_local_tracking_store_is_refused_saying_what_to_set(uri):
    with pytest.raises(ClusterError, match="set MLFLOW_TRACKING_URI to the team's tracking server"):
        require_shared_store(uri)


def test_a_database_store_is_accepted_and_a_silent_server_refused():
    assert require_shared_store("postgresql+psycopg2://mlflow@db/mlflow") == "postgresql+psycopg2://mlflow@db/mlflow"
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=f"the tracking server http://127.0.0.1:{port} does not answer"):
        require_shared_store(f"http://127.0.0.1:{port}")


def test_a_dry_run_plans_every_stage_with_its_parents_and_submits_nothing(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    edit_params(repo, tiny)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qam", "tiny"], repo)
    result = subprocess.run([sys.executable, "-m", "sae_mnist.cluster", "submit", "--dry-run", "--partition", "cpu"],
                            cwd=repo, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("sbatch ")]
    names = [line.split("--job-name=sae-mnist:")[1].split()[0] for line in lines]
    stages = stage_graph(repo)
    assert names == [s.address for s in stages] + ["collect"]  # nothing has run: everything, upstream first
    for line, stage in zip(lines, stages):
        assert "--partition=cpu" in line and "--kill-on-invalid-dep=yes" in line and "--cpus-per-task=2" in line
        if stage.parents:
            assert f"--dependency=afterok:{':'.join(f'<{p}>' for p in stage.parents)}" in line.replace("'", "")
        else:
            assert "--dependency" not in line
    run_dir = next((repo / ".cluster" / "runs").iterdir())
    script = (run_dir / "jobs" / "train@linear-0.sh").read_text()
    assert "dvc repro train@linear-0\n" in script and "dvc commit --force --quiet train@linear-0\n" in script
    assert "SAE_MNIST_ONLY_STAGE=train@linear-0" in script
    assert not (run_dir / "run.json").exists()  # nothing submitted


def test_submitting_needs_committed_changes(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "\n# edited\n")
    result = subprocess.run([sys.executable, "-m", "sae_mnist.cluster", "submit", "--dry-run"], cwd=repo,
                            env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2
    assert "uncommitted changes in params.yaml" in result.stderr and "commit them" in result.stderr
    assert not (repo / ".cluster").exists()


def test_params_yaml_s_cluster_section_is_valid_and_no_stage_reads_it():
    from sae_mnist.cluster.config import load_cluster_config

    config, params = load_cluster_config(REPO / "params.yaml")
    config.check_stages([s.address for s in stage_graph(REPO)], params.train.threads)
    dvc_yaml = (REPO / "dvc.yaml").read_text()
    assert "cluster" not in json.dumps(yaml.safe_load(dvc_yaml))
