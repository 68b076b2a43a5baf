"""The git commit recorded with every result, and when it is marked dirty."""

from __future__ import annotations

import subprocess

from sae_mnist.provenance import git_commit


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=repo, check=True,
                   capture_output=True)


def test_dirty_only_when_code_differs(tmp_path):
    assert git_commit(str(tmp_path)) == "unknown"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("x = 1\n")
    (tmp_path / "dvc.lock").write_text("a\n")
    (tmp_path / "params.yaml").write_text("lr: 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "c")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "dvc.lock").write_text("b\n")  # pipeline outputs and params change without the code changing
    (tmp_path / "params.yaml").write_text("lr: 2\n")
    assert git_commit(str(tmp_path)) == head
    (tmp_path / "src" / "model.py").write_text("x = 2\n")
    assert git_commit(str(tmp_path)) == head + "-dirty"
