"""Monitoring fixtures, built once per test session: a tracking store holding one registered model whose training run
logged a reference profile (as training jobs do), and an inference table of its real predictions over five days.

Days 0-1 hold fresh rows like the training rows, day 2 the same with feature x0 shifted by half a standard deviation,
day 3 only 50 rows (too few to judge). Each of days 0-2 holds 20 seeds x 1,000 rows, so `slice=seed` gives 20
independent runs per day in one Spark job. The table carries a column the baseline lacks (`extra`) and lacks one
the baseline has (`x4`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from common.profile import log_reference_profile
from tests.conftest import make_settings

MODEL = "monitored"
STREAMED = "monitored_stream"
DAY = pd.Timestamp("2024-01-01", tz="UTC")
SEEDS, ROWS_PER_SEED, SHIFTED_DAY, SMALL_DAY = 20, 1_000, 2, 3
FEATURES = ["x0", "x1", "x2", "x3", "x4"]


def features(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "x0": rng.normal(shift, 1.0, n),
            "x1": rng.normal(5.0, 2.0, n),
            "x2": rng.exponential(1.0, n),
            "x3": rng.integers(0, 5, n).astype(float),  # few distinct values: ties in every quantile
            "x4": rng.normal(0.0, 1.0, n),
            "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    return frame


def label(rng: np.random.Generator, frame: pd.DataFrame) -> pd.Series:
    return pd.Series((frame.x0 + 0.5 * (frame.x1 - 5) + rng.normal(0, 0.7, len(frame)) > 0).astype(int), name="y")


@dataclass(frozen=True)
class Monitored:
    root: Path
    tracking_uri: str
    train: pd.DataFrame  # the rows the baseline was computed from (features and label y)
    scored: pd.DataFrame  # the whole inference table, with the true label y kept for the tests
    run_id: str
    held_out_metrics: dict[str, float]

    def settings(self):
        return make_settings(self.tracking_uri)


@pytest.fixture(scope="session")
def monitored(tmp_path_factory, template_db) -> Monitored:
    from training.evaluation import classification_metrics
    from training.sklearn.model import log_sklearn_model

    root = tmp_path_factory.mktemp("monitoring")
    shutil.copy(template_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    rng = np.random.default_rng(7)
    train, test = features(rng, 5_000), features(rng, 1_000)
    y_train, y_test = label(rng, train), label(rng, test)
    inputs = FEATURES
    model = LogisticRegression().fit(train[inputs], y_train)
    metrics = classification_metrics(
        y_test, model.predict(test[inputs]), model.predict_proba(test[inputs]), model.classes_
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("tests")
        with mlflow.start_run() as run:
            mlflow.log_metrics(metrics)
            log_reference_profile(
                train,
                y_train,
                model.predict(test[inputs]),
                model.predict_proba(test[inputs]),
                task="classification",
                classes=model.classes_,
            )
            info = log_sklearn_model(model, train[inputs], registered_model_name=MODEL)
        mlflow.register_model(info.model_uri, STREAMED)  # the same model under another name, for tests of its own
        mlflow.end_run()

    days = []
    for day in range(SMALL_DAY + 1):
        n = 50 if day == SMALL_DAY else SEEDS * ROWS_PER_SEED
        frame = features(rng, n, shift=0.5 if day == SHIFTED_DAY else 0.0)
        frame["y"] = label(rng, frame)
        frame["prediction"] = model.predict(frame[inputs])
        frame["probability"] = model.predict_proba(frame[inputs])[:, 1]
        frame["seed"] = np.arange(n) % SEEDS
        frame["scored_at"] = DAY + pd.Timedelta(days=day) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
        days.append(frame)
    scored = pd.concat(days, ignore_index=True)
    scored["row_id"] = np.arange(len(scored))
    scored["extra"] = 1.0
    scored["model_name"], scored["model_version"] = MODEL, "1"
    table = scored.drop(columns=["y", "x4"])
    (root / "scored").mkdir()
    table.to_parquet(root / "scored" / "part-0.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    return Monitored(root, uri, pd.concat([train, y_train], axis=1), scored, run.info.run_id, metrics)


def write_labels(monitored: Monitored, name: str, days: list[int]) -> str:
    """The true labels of the rows scored on `days`, as a labels table arrives: ids and the label."""
    day = (monitored.scored.scored_at - DAY).dt.days
    path = monitored.root / f"{name}.parquet"
    monitored.scored.loc[day.isin(days), ["row_id", "y"]].to_parquet(path)
    return str(path)


@pytest.fixture
def monitoring_settings(monitored, monkeypatch, tmp_path):
    """This test pointed at the session's monitoring store (its runs and version tags are shared by these tests)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", monitored.tracking_uri)
    mlflow.set_tracking_uri(monitored.tracking_uri)
    mlflow.set_experiment("tests")  # runs a test starts itself keep their artifacts beside the store
    return monitored.settings()
