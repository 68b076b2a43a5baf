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


def test_a_dataset_another_stage_inserted_at_the_same_moment_is_linked_not_fatal(tmp_path):
    """The race two Slurm jobs hit on a fresh store: both find the dataset missing, both insert it. Reproduced on a
    real SQLite store: a second connection inserts the same row just before this run's insert runs."""
    import sqlite3

    import mlflow
    import numpy as np
    import sqlalchemy
    from mlflow.tracking._tracking_service.utils import _get_store

    db = tmp_path / "mlflow.db"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    try:
        mlflow.set_experiment("race")
        engine = _get_store().engine
        rival_inserts = []

        def rival(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().startswith("INSERT INTO datasets") and not rival_inserts:
                with sqlite3.connect(db) as other:
                    other.execute(statement, parameters[0] if executemany else parameters)
                rival_inserts.append(statement)

        sqlalchemy.event.listen(engine, "before_cursor_execute", rival)
        manifest = {"source": ["/data/mnist"], "dataset": "mnist", "digest": "sha256:" + "ab" * 32}
        try:
            with mlflow.start_run() as run:
                tracking.log_dataset(np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.int64), manifest, "training")
        finally:
            sqlalchemy.event.remove(engine, "before_cursor_execute", rival)
        assert len(rival_inserts) == 1  # the race happened: this run's own insert was refused
        finished = mlflow.get_run(run.info.run_id)
        assert finished.info.status == "FINISHED"
        assert [i.dataset.name for i in finished.inputs.dataset_inputs] == ["mnist"]
    finally:
        mlflow.set_tracking_uri(previous)
