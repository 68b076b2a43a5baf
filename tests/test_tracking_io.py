"""Where the MLflow store lives, and outputs that appear whole or not at all."""

from __future__ import annotations

import pytest

from sae_mnist import tracking
from sae_mnist.io import staged_dir


def test_store_is_under_the_main_repository(tmp_path, monkeypatch):
    main = tmp_path / "main"
    temp_copy = main / ".dvc" / "tmp" / "exps" / "tmpabc"
    temp_copy.joinpath(".dvc").mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(temp_copy)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking.repo_root() == temp_copy  # without DVC's hint: the nearest .dvc/
    monkeypatch.setenv("DVC_ROOT", str(main))  # what DVC sets inside `dvc exp run --temp`
    assert tracking.tracking_uri() == f"sqlite:///{main / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_flatten_nested_params():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": 2}) == {"a.b": 1, "a.c.d": "x", "e": 2}


def test_staged_dir_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "out"
    with staged_dir(target) as staging:
        (staging / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"

    with pytest.raises(RuntimeError):
        with staged_dir(target) as staging:
            (staging / "b.txt").write_text("half")
            raise RuntimeError("crash mid-stage")
    # the failed attempt left no staging directory behind; DVC removes outputs before a re-run,
    # so a stage that crashes after that point leaves no output at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not (target / "b.txt").exists()
