"""`monitor` on a three-class model: its baseline profiles each class's probability, the scored `probability` array
is profiled and compared per class, and the label metrics per window are the metrics training logs for a
multiclass model (accuracy, support-weighted F1, log loss, one-vs-rest ROC AUC) on the labelled rows."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from common.profile import class_probability_column, log_reference_profile
from monitoring.monitor import MonitorParams, run
from tests.conftest import make_settings

MODEL = "three_classes"
CLASSES = ("setosa", "versicolor", "virginica")
DAY = pd.Timestamp("2024-05-01", tz="UTC")
ROWS = 1_500


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame({"a": rng.normal(shift, 1.0, n), "b": rng.normal(0.0, 1.0, n)})
    score = frame.a + 0.5 * frame.b + rng.normal(0, 0.6, n)
    frame["species"] = np.select([score < -0.5, score < 0.5], CLASSES[:2], CLASSES[2])
    return frame


@pytest.fixture(scope="module")
def monitored_three(tmp_path_factory, template_db, spark):
    from training.evaluation import classification_metrics

    root = tmp_path_factory.mktemp("multiclass")
    shutil.copy(template_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    rng = np.random.default_rng(3)
    train, test = _rows(rng, 3_000), _rows(rng, 1_000)
    model = LogisticRegression().fit(train[["a", "b"]], train.species)
    days = []
    for day, shift in enumerate((0.0, 0.8)):  # day 1: feature a shifted, so the class probabilities move too
        frame = _rows(rng, ROWS, shift)
        frame["prediction"] = model.predict(frame[["a", "b"]])
        frame["probability"] = list(model.predict_proba(frame[["a", "b"]]))
        frame["scored_at"] = DAY + pd.Timedelta(days=day) + pd.to_timedelta(rng.integers(0, 86_400, ROWS), "s")
        days.append(frame)
    scored = pd.concat(days, ignore_index=True)
    scored["row_id"] = np.arange(len(scored))
    scored["model_name"], scored["model_version"] = MODEL, "1"
    (root / "scored").mkdir()
    scored.drop(columns=["species"]).to_parquet(root / "scored" / "part-0.parquet", coerce_timestamps="us")
    scored[["row_id", "species"]].to_parquet(root / "labels.parquet")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("tests")
        with mlflow.start_run():
            proba = model.predict_proba(test[["a", "b"]])
            mlflow.log_metrics(classification_metrics(test.species, model.predict(test[["a", "b"]]), proba, CLASSES))
            log_reference_profile(
                train[["a", "b"]],
                train.species,
                model.predict(test[["a", "b"]]),
                proba,
                task="classification",
                classes=model.classes_,
            )
            mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL)
        params = MonitorParams(
            model_name=MODEL,
            input=str(root / "scored"),
            output=str(root / "monitoring"),
            labels=str(root / "labels.parquet"),
            ids=("row_id",),
        )
        result = run(spark, make_settings(uri), params)
    tables = {
        n: spark.read.parquet(str(root / "monitoring" / n)).toPandas() for n in ("profile_metrics", "drift_metrics")
    }
    return scored, result, tables


def test_the_baseline_profiles_each_class_probability():
    proba = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    from common.profile import reference_profile

    profile = reference_profile(pd.DataFrame({"a": [1.0, 2.0]}), None, ["b", "c"], proba, task="classification",
                                classes=["a", "b", "c"])  # fmt: skip
    assert profile["columns"][class_probability_column("c")]["mean"] == pytest.approx(0.55)
    assert "probability" not in profile["columns"]
    # As Spark returns an array column: one array per row.
    rows = pd.Series(list(proba))
    again = reference_profile(pd.DataFrame({"a": [1.0, 2.0]}), None, ["b", "c"], rows, task="classification",
                              classes=["a", "b", "c"])  # fmt: skip
    assert again["columns"] == profile["columns"]


def test_each_class_probability_is_profiled_and_compared(monitored_three):
    scored, result, tables = monitored_three
    names = [class_probability_column(c) for c in CLASSES]
    assert "probability" not in result.column_problems and not set(names) & set(result.column_problems)
    profile = tables["profile_metrics"]
    day1 = scored[(scored.scored_at - DAY).dt.days == 1]
    for i, name in enumerate(names):
        rows = profile[
            (profile.column_name == name) & (profile.window_key == int((DAY + pd.Timedelta(days=1)).timestamp()))
        ]
        stats = rows.set_index("statistic").value
        assert stats["count"] == ROWS
        assert stats["mean"] == pytest.approx(np.mean([p[i] for p in day1.probability]), rel=1e-9)
    drift = tables["drift_metrics"]
    compared = drift[drift.column_name.isin(names) & (drift.comparison == "baseline") & (drift.statistic == "psi")]
    assert len(compared) == 2 * len(names) and compared.value.notna().all()


def test_label_metrics_are_the_multiclass_metrics_training_logs(monitored_three):
    from training.evaluation import classification_metrics

    scored, _, tables = monitored_three
    profile = tables["profile_metrics"]
    for day in (0, 1):
        rows = scored[(scored.scored_at - DAY).dt.days == day]
        expected = classification_metrics(rows.species, rows.prediction, np.stack(rows.probability), CLASSES)
        key = int((DAY + pd.Timedelta(days=day)).timestamp())
        found = profile[(profile.window_key == key) & (profile.column_name == ":table")].set_index("statistic").value
        assert set(expected) <= set(found.index)
        for name, value in expected.items():
            assert found[name] == pytest.approx(value, abs=1e-3 if name == "roc_auc" else 1e-9), (day, name)
