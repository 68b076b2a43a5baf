"""`make check-results` (sae_mnist.staleness) on a tiny real DVC pipeline in tmp_path: no mocks.

Two stages: `double` copies data.txt to out.txt and depends on the params key `scale`; `copy` copies out.txt
(double's output) to final.txt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sae_mnist import staleness
from tests.conftest import subprocess_env

DVC_YAML = {"stages": {
    "double": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"], "params": ["scale"], "outs": ["out.txt"]},
    "copy": {"cmd": "cp out.txt final.txt", "deps": ["out.txt"], "outs": ["final.txt"]},
}}


def _run(repo: Path, *command: str) -> None:
    subprocess.run(command, cwd=repo, env=subprocess_env(), check=True, capture_output=True, text=True)


@pytest.fixture
def pipeline(tmp_path) -> Path:
    """The two-stage pipeline, reproduced: every stage up to date."""
    _run(tmp_path, "git", "init", "-q")
    _run(tmp_path, sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "data.txt").write_text("1 2 3\n")
    (tmp_path / "params.yaml").write_text("scale: 2\nunused: 1\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    _run(tmp_path, sys.executable, "-m", "dvc", "repro", "-q")
    return tmp_path


def test_a_reproduced_pipeline_is_current(pipeline, capsys):
    assert staleness.stale_stages(staleness.dvc_status(pipeline)) == {}
    assert staleness.main(["--repo", str(pipeline)]) == 0
    assert "every stage is up to date" in capsys.readouterr().out


def test_outputs_only_missing_from_the_workspace_and_cache_are_not_stale(pipeline, capsys):
    # A fresh clone before `dvc pull`: no outputs, no cache. copy's dependency out.txt is then "deleted", but only
    # because it is double's output, which is "not in cache".
    for path in ("out.txt", "final.txt"):
        (pipeline / path).unlink()
    shutil.rmtree(pipeline / ".dvc" / "cache")
    status = staleness.dvc_status(pipeline)
    assert status["copy"] and staleness.missing_outputs(status) == {"out.txt", "final.txt"}
    assert staleness.main(["--repo", str(pipeline)]) == 0
    assert "only miss outputs" in capsys.readouterr().out


def test_a_changed_dependency_makes_its_stage_and_what_follows_stale(pipeline, capsys):
    (pipeline / "data.txt").write_text("1 2 3 4\n")
    assert staleness.stale_stages(staleness.dvc_status(pipeline)) == {
        "double": {"changed deps": ["data.txt (modified)"]}}  # copy's dep out.txt is unchanged until double re-runs
    assert staleness.main(["--repo", str(pipeline)]) == 1
    assert "  double:\n    changed deps: data.txt (modified)" in capsys.readouterr().err


def test_a_changed_parameter_is_named(pipeline, capsys):
    (pipeline / "params.yaml").write_text("scale: 3\nunused: 1\n")
    assert staleness.stale_stages(staleness.dvc_status(pipeline)) == {
        "double": {"changed params": ["params.yaml: scale (modified)"]}}
    assert staleness.changed_params(staleness.dvc_status(pipeline)) == ["scale"]
    assert staleness.main(["--repo", str(pipeline)]) == 1
    assert "changed params: params.yaml: scale (modified)" in capsys.readouterr().err
    (pipeline / "params.yaml").write_text("scale: 3\nunused: 2\n")  # a key no stage reads is no change
    assert list(staleness.stale_stages(staleness.dvc_status(pipeline))) == ["double"]


def test_an_output_edited_by_hand_is_stale(pipeline):
    (pipeline / "final.txt").write_text("edited\n")
    assert staleness.stale_stages(staleness.dvc_status(pipeline)) == {"copy": {"changed outs": ["final.txt (modified)"]}}
