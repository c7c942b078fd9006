"""Fixtures shared by the scoring tests."""

import shutil
import sqlite3
from pathlib import Path

import mlflow
import pytest
from sklearn.ensemble import RandomForestClassifier

from tests.conftest import make_settings
from tests.helpers import scoring_frame
from training.sklearn.model import log_sklearn_model


@pytest.fixture
def wine_forest(settings):
    """A bare scikit-learn forest (no pipeline) on the wine data: three classes, so one probability per class."""
    frame = scoring_frame("wine")
    features = frame.drop(columns=["row_id", "target"]).astype("float64")
    model = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(features, frame["target"])
    with mlflow.start_run():
        log_sklearn_model(model, features, registered_model_name="wine_forest")
    return model, frame.assign(**features)


@pytest.fixture(scope="session")
def _production_store(tmp_path_factory, template_db):
    """tests/conftest.py's `production_model` trained once per test run, in a store of its own: its SQLite file and
    ./mlruns, and what training returned."""
    from registry.stages import promote
    from training.sklearn.train_sklearn import TrainSklearnParams
    from training.sklearn.train_sklearn import run as train

    root = tmp_path_factory.mktemp("production-model")
    shutil.copy(template_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    fluent = mlflow.tracking.fluent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)
        mlflow.set_tracking_uri(uri)
        try:
            trained = train(
                make_settings(uri),
                TrainSklearnParams(data="breast_cancer", estimator="logistic_regression", model_name="cancer"),
            )
            promote(mlflow.MlflowClient(), "cancer", trained.model_version, "Production")
        finally:
            fluent._active_experiment_id = None
    return root, trained


@pytest.fixture
def production_model(settings, _production_store):
    """The same as tests/conftest.py's (a logistic regression on breast_cancer, registered as 'cancer' version 1 in
    Production), trained once per test run and copied into this test's store: the database by SQLite's backup, the
    artifacts as files, and every path of the session's store in the database moved to this test's. Each test still
    owns all of it (what it promotes, logs or deletes is seen by no other). Training it per test cost a train_sklearn
    run (fit, evaluation, plots, logging) in each of about 30 scoring tests."""
    root, trained = _production_store
    target = Path.cwd()  # the settings fixture's tmp_path: its store, and ./mlruns for artifacts
    with sqlite3.connect(root / "mlflow.db") as source, sqlite3.connect(target / "mlflow.db") as copy:
        source.backup(copy)
        _move_paths(copy, str(root), str(target))
    shutil.copytree(root / "mlruns", target / "mlruns", dirs_exist_ok=True)
    return trained


def _move_paths(db: sqlite3.Connection, old: str, new: str) -> None:
    """Artifact locations, run artifact URIs, version sources: every text value naming `old` names `new` instead."""
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        columns = [
            c[1]
            for c in db.execute(f'PRAGMA table_info("{table}")')
            if "CHAR" in c[2].upper() or "TEXT" in c[2].upper()
        ]
        for column in columns:
            db.execute(
                f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                (old, new, old),
            )
    db.commit()
