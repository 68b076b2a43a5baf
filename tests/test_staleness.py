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


def test_relock_code_records_changed_code_without_data_or_outputs_and_refuses_anything_else(tmp_path):
    # A committed one-stage pipeline, then a clone of it that has no outputs and no cache (no `dvc pull`)
    repo = tmp_path / "repo"
    repo.mkdir()
    _run(repo, "git", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    (repo / "step.py").write_text("import shutil\nshutil.copy('data.txt', 'out.txt')\n")
    (repo / "data.txt").write_text("1 2 3\n")
    (repo / "params.yaml").write_text("scale: 2\n")
    (repo / "last.py").write_text("import shutil\nshutil.copy('out.txt', 'final.txt')\n")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "step": {"cmd": "python step.py", "deps": ["step.py", "data.txt"], "params": ["scale"], "outs": ["out.txt"]},
        "last": {"cmd": "python last.py", "deps": ["last.py", "out.txt"], "outs": ["final.txt"]}}}))
    _run(repo, sys.executable, "-m", "dvc", "repro", "-q")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "results")
    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    lock = (clone / "dvc.lock").read_text()
    # Code moved without changing what it computes: stale, and re-locked without the data; `last` depends on
    # out.txt, an output missing from the clone, whose recorded hash stays
    (clone / "step.py").write_text("import shutil  # the copy\nshutil.copy('data.txt', 'out.txt')\n")
    (clone / "last.py").write_text("import shutil  # the copy\nshutil.copy('out.txt', 'final.txt')\n")
    assert staleness.stale_stages(staleness.dvc_status(clone)) == {"step": {"changed deps": ["step.py (modified)"]},
                                                                   "last": {"changed deps": ["last.py (modified)"]}}
    assert staleness.main(["--repo", str(clone), "--relock-code"]) == 0
    assert staleness.stale_stages(staleness.dvc_status(clone)) == {}
    changed = [line for line in (clone / "dvc.lock").read_text().splitlines() if line not in lock.splitlines()]
    assert len(changed) == 4 and all(line.strip().startswith(("md5:", "size:")) for line in changed)  # the .py's
    # A parameter or the data changed: the stage must re-run, and nothing is re-locked
    (clone / "params.yaml").write_text("scale: 3\n")
    (clone / "step.py").write_text("import shutil\nshutil.copy('data.txt', 'out.txt')\n")
    before = (clone / "dvc.lock").read_text()
    with pytest.raises(RuntimeError, match=r"not only code changed.*step: .*changed params params.yaml: scale \(modified\)"):
        staleness.relock_code(clone)
    # Restricted to the stages that changed only in code, the rest left stale (a regeneration under way)
    (clone / "last.py").write_text("import shutil  # copy it\nshutil.copy('out.txt', 'final.txt')\n")
    assert staleness.main(["--repo", str(clone), "--relock-code", "--stages", "la*"]) == 0
    assert list(staleness.stale_stages(staleness.dvc_status(clone))) == ["step"]
    before = (clone / "dvc.lock").read_text()
    (clone / "params.yaml").write_text("scale: 2\n")
    (clone / "data.txt").write_text("4\n")
    with pytest.raises(RuntimeError, match=r"step: changed deps .*data.txt \(modified\)"):
        staleness.relock_code(clone)
    assert (clone / "dvc.lock").read_text() == before


def test_a_committed_output_made_by_uncommitted_code_is_named(tmp_path, capsys):
    """An output kept in git (cache: false) whose git_commit ends in -dirty fails the check, naming the file; the
    same output made from a commit passes."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    stages = {"stamp": {"cmd": f"echo '{{\"git_commit\": \"{commit}-dirty\"}}' > stamp.json",
                        "outs": [{"stamp.json": {"cache": False}}]}}
    _run(tmp_path, "git", "init", "-q")
    _run(tmp_path, sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    _run(tmp_path, sys.executable, "-m", "dvc", "repro", "-q")
    _run(tmp_path, "git", "add", "-A")
    assert staleness.main(["--repo", str(tmp_path)]) == 1
    assert "stamp.json" in capsys.readouterr().err
    stages["stamp"]["cmd"] = f"echo '{{\"git_commit\": \"{commit}\"}}' > stamp.json"
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    _run(tmp_path, sys.executable, "-m", "dvc", "repro", "-q")
    _run(tmp_path, "git", "add", "-A")
    assert staleness.main(["--repo", str(tmp_path)]) == 0
