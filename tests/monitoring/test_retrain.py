"""`monitor` with retrain=true on a model trained by train_sklearn: the label's meaning changes (concept A: y = x0 > 0,
then concept B: y = x1 > 0) while x0 shifts, so the scored days 1-2 drift and degrade and the policy (2 of 5) fires.
Retrained on rows whose labels are inverted the challenger loses the gate and the champion keeps serving; a second
monitor run over the same windows does not retrain again. The retraining itself runs the recorded entry point as an
`mlflow run` child of the monitor run. The winning side (the challenger promoted, the stream following it) is
tests/monitoring/test_loop_end_to_end.py, through `mlflow run . -e monitor`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.errors import UserInputError
from monitoring.monitor import MonitorParams, MonitorResult, run
from monitoring.retrain import (
    GATE_TAG,
    MONITOR_RUN_TAG,
    REFUSED,
    RETRAINED_FOR_TAG,
    RETRAINED_FROM_TAG,
    RETRAINING_TAG,
    SKIPPED,
)
from registry.promotion import promote_version
from tests.conftest import make_settings
from tests.monitoring.conftest import MODEL, write_labels

# The module fixture trains two models, promotes them, runs monitor three times and two training processes: on the
# shared 2-core machine under load (load average 20) it took more than the default 600 s.
pytestmark = pytest.mark.timeout(1800)

DAY = pd.Timestamp("2024-03-01", tz="UTC")
ROWS = 600
LOSER = "retrain_loses"
DRIFT_DAYS = [1, 2]
KEYS = [int((DAY + pd.Timedelta(days=d)).timestamp()) for d in range(3)]


def _rows(rng: np.random.Generator, n: int, shift: float, concept: str) -> pd.DataFrame:
    frame = pd.DataFrame({"x0": rng.normal(shift, 1.0, n), "x1": rng.normal(0, 1.0, n), "x2": rng.normal(0, 1.0, n)})
    frame["y"] = ((frame.x0 if concept == "A" else frame.x1) > 0).astype(int)
    return frame


@dataclass(frozen=True)
class Loop:
    root: Path
    uri: str
    results: dict[str, MonitorResult]  # loser, again (the same windows a second time)


@pytest.fixture(scope="module")
def loop(tmp_path_factory, template_db, spark) -> Loop:
    import shutil

    from training.sklearn.train_sklearn import TrainSklearnParams
    from training.sklearn.train_sklearn import run as train

    root = tmp_path_factory.mktemp("retrain")
    shutil.copy(template_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    settings = make_settings(uri)
    rng = np.random.default_rng(11)
    _rows(rng, 2_000, 0.0, "A").to_parquet(root / "concept_a.parquet")
    fresh = _rows(rng, 2_000, 1.0, "B")
    fresh.assign(y=1 - fresh.y).to_parquet(root / "inverted.parquet")
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.create_experiment("tests", artifact_location=str(root / "artifacts"))
        mlflow.set_experiment("tests")
        for name in (LOSER,):
            params = TrainSklearnParams(
                data=str(root / "concept_a.parquet"), label="y", estimator="logistic_regression", model_name=name
            )
            train(settings, params)
            promote_version(settings, name, "Production", "1", "first model", spark=spark)
            model = mlflow.pyfunc.load_model(f"models:/{name}/1")
            days = []
            for day in range(3):
                frame = _rows(rng, ROWS, 1.0 if day in DRIFT_DAYS else 0.0, "B" if day in DRIFT_DAYS else "A")
                frame["prediction"] = np.asarray(model.predict(frame[["x0", "x1", "x2"]])).ravel()
                frame["scored_at"] = DAY + pd.Timedelta(days=day) + pd.to_timedelta(rng.integers(0, 86_400, ROWS), "s")
                days.append(frame)
            scored = pd.concat(days, ignore_index=True)
            scored["row_id"] = np.arange(len(scored))
            scored["model_name"], scored["model_version"] = name, "1"
            (root / name).mkdir()
            scored.drop(columns=["y"]).to_parquet(root / name / "part-0.parquet", coerce_timestamps="us")
            scored[["row_id", "y"]].to_parquet(root / f"{name}_labels.parquet")

        def monitor(name: str, data: str) -> MonitorResult:
            params = MonitorParams(
                model_name=name,
                input=str(root / name),
                output=str(root / f"{name}_monitoring"),
                labels=str(root / f"{name}_labels.parquet"),
                ids=("row_id",),
                retrain=True,
                retrain_data=str(root / data),
            )
            return run(spark, settings, params)

        results["loser"] = monitor(LOSER, "inverted.parquet")
        results["again"] = monitor(LOSER, "inverted.parquet")
    return Loop(root, uri, results)


@pytest.fixture
def client(loop, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", loop.uri)
    mlflow.set_tracking_uri(loop.uri)
    return mlflow.MlflowClient()


def _stage(client, name: str, version: str) -> str:
    return client.get_model_version(name, version).current_stage


def test_a_losing_challenger_leaves_the_champion_serving(loop, client):
    retraining = loop.results["loser"].retraining
    assert retraining.outcome == REFUSED and retraining.judged_version == "1" and retraining.new_version == "2"
    assert retraining.windows == ",".join(str(KEYS[d]) for d in DRIFT_DAYS)
    assert _stage(client, LOSER, "1") == "Production" and _stage(client, LOSER, "2") != "Production"
    assert str(client.get_registered_model(LOSER).aliases["production"]) == "1"
    assert client.get_model_version(LOSER, "2").tags[GATE_TAG].startswith(f"{REFUSED}: ")


def test_the_same_windows_do_not_retrain_twice(loop, client):
    again = loop.results["again"].retraining
    assert again.outcome == SKIPPED and again.new_version == "2" and again.run_id is None
    assert again.windows == loop.results["loser"].retraining.windows
    assert sorted(int(v.version) for v in client.search_model_versions(f"name='{LOSER}'")) == [1, 2]
    assert "already retrained" in client.get_run(loop.results["again"].run_id).data.tags[RETRAINING_TAG]


def test_every_step_is_linked(loop, client):
    result = loop.results["loser"]
    retraining = result.retraining
    trained = client.get_run(retraining.run_id)
    assert trained.data.tags[MONITOR_RUN_TAG] == result.run_id
    assert trained.data.tags[RETRAINED_FROM_TAG] == "1"
    assert trained.data.params["data"] == str(loop.root / "inverted.parquet")
    assert trained.data.params["estimator"] == "logistic_regression"  # the recorded parameters, replayed
    tags = client.get_model_version(LOSER, "2").tags
    assert tags[MONITOR_RUN_TAG] == result.run_id and tags[RETRAINED_FROM_TAG] == "1"
    assert tags[RETRAINED_FOR_TAG] == retraining.windows
    assert tags[GATE_TAG].startswith(retraining.outcome)
    assert client.get_run(result.run_id).data.tags[RETRAINING_TAG] == retraining.describe()
    assert client.get_model_version(LOSER, "2").run_id == retraining.run_id


def test_retrain_without_retrain_data_is_refused_in_one_line(monitored, monitoring_settings, spark, tmp_path):
    params = MonitorParams(model_name=MODEL, input=str(monitored.root / "scored"), output=str(tmp_path), retrain=True)
    with pytest.raises(UserInputError, match="^retrain=true needs retrain_data=") as refused:
        run(spark, monitoring_settings, params)
    assert "\n" not in str(refused.value)


def test_a_version_without_a_training_record_is_refused(monitored, monitoring_settings, spark, tmp_path):
    runs_before = len(mlflow.search_runs(search_all_experiments=True))
    params = MonitorParams(
        model_name=MODEL,
        input=str(monitored.root / "scored"),
        output=str(tmp_path / "out"),
        labels=write_labels(monitored, "labels_retrain", [0]),
        ids=("row_id",),
        retrain=True,
        retrain_data=str(tmp_path / "new.parquet"),
    )
    with pytest.raises(UserInputError, match=f"{MODEL} version 1 cannot be retrained: .* has no training record"):
        run(spark, monitoring_settings, params)
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs_before  # refused before anything is recorded
