import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from common.errors import UserInputError
from common.iot_devices import generate
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from tests.helpers import run_entry_point
from tests.reproduce.checks import assert_reproduced_exactly, logged_test_rows, reproduce_in_process
from training.held_out import logged_test_split
from training.per_group.model import ARTIFACT, MANIFEST, UnseenGroupError, group_models_loaded
from training.per_group.train_per_group import TrainPerGroupParams, run

SKIPPED = {
    "dev-0047": "one class: failure is 0 in all 200 labeled rows",
    "dev-0048": "15 labeled rows, fewer than min_rows=50",
    "dev-0049": "15 labeled rows, fewer than min_rows=50",
}


def _group_models(model_uri: str) -> tuple[dict, object]:
    """Each group's own scikit-learn model (and the fallback), read straight from the logged artifact folder."""
    folder = Path(mlflow.artifacts.download_artifacts(f"{model_uri}/artifacts/{ARTIFACT}"))
    manifest = json.loads((folder / MANIFEST).read_text())

    def load(entry):
        return sio.load(folder / entry["file"], trusted=entry["trusted_types"])

    fallback = manifest["fallback"]
    return {key: load(entry) for key, entry in manifest["groups"].items()}, load(fallback) if fallback else None


def test_iot_devices_are_seeded_and_hold_the_three_untrainable_devices():
    fleet = generate()
    pd.testing.assert_frame_equal(fleet, generate())
    assert fleet.shape == (9_630, 8) and fleet["device_id"].nunique() == 50
    sizes = fleet.groupby("device_id").size()
    assert (sizes.drop(["dev-0048", "dev-0049"]) == 200).all() and sizes[["dev-0048", "dev-0049"]].tolist() == [15, 15]
    assert fleet.loc[fleet["device_id"] == "dev-0047", "failure"].sum() == 0
    assert generate(200, 30, edge_cases=False).groupby("device_id").size().eq(30).all()


def test_one_model_per_device_routed_by_one_registered_model_and_scored_by_score_batch(
    spark, settings, client, tmp_path
):
    result = run(
        spark,
        settings,
        TrainPerGroupParams(
            data="iot_devices",
            label="failure",
            group="device_id",
            estimator="logistic_regression",
            model_name="devices",
        ),
    )

    # One run for the whole fleet, with one row per device in one table.
    assert len(client.search_runs([client.get_experiment_by_name("tests").experiment_id])) == 1
    assert len(result.trained) == 47 and result.skipped == SKIPPED
    metrics = client.get_run(result.run_id).data.metrics
    assert {k: metrics[k] for k in ("groups_total", "groups_trained", "groups_skipped", "n_rows")} == {
        "groups_total": 50,
        "groups_trained": 47,
        "groups_skipped": 3,
        "n_rows": 9_630,
    }
    table = mlflow.load_table("per_group_metrics.json", run_ids=[result.run_id])
    assert len(table) == 50 and table["status"].value_counts().to_dict() == {"trained": 47, "skipped": 3}
    trained = table[table["status"] == "trained"]
    assert (trained["n_train"] == 160).all() and (trained["n_test"] == 40).all()
    assert metrics["accuracy_mean"] == pytest.approx(trained["accuracy"].mean())
    assert metrics["accuracy_min"] == pytest.approx(trained["accuracy"].min())
    assert metrics["accuracy_median"] == pytest.approx(trained["accuracy"].median())

    info = mlflow.models.get_model_info("models:/devices/1")
    assert info.signature.inputs.input_names()[0] == "device_id"
    assert info.metadata["per_group"] == {"group_column": "device_id", "groups": 47, "fallback": False}
    assert client.get_model_version("devices", "1").tags["group_column"] == "device_id"

    # The routing model answers each row exactly as that device's own model does.
    fleet = generate()
    known = fleet[~fleet["device_id"].isin(SKIPPED)].drop(columns=["failure"])
    routing = mlflow.pyfunc.load_model("models:/devices/1")
    predicted = routing.predict(known)
    models, fallback = _group_models("models:/devices/1")
    assert fallback is None and sorted(models) == result.trained
    for device, rows in known.groupby("device_id"):
        np.testing.assert_array_equal(predicted[rows.index - known.index[0]], models[device].predict(rows))

    # A device the model was never trained on is an error, never a silent default.
    with pytest.raises(UnseenGroupError, match=r"1 device_id value\(s\) unseen in training: 'dev-0048'.*no fallback"):
        routing.predict(fleet[fleet["device_id"].isin(["dev-0001", "dev-0048"])].drop(columns=["failure"]))

    # score_batch: rows out == rows in, each row scored by its device's model, each model loaded once per worker.
    scoring_input = known.assign(reading_id=np.arange(len(known)))
    scoring_input.to_parquet(tmp_path / "readings.parquet", index=False)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "500")  # many batches per worker
    try:
        scored = score_batch(
            spark,
            settings,
            ScoreBatchParams(
                model_uri="models:/devices/1", input=str(tmp_path / "readings.parquet"), output=str(tmp_path / "scored")
            ),
        )
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert scored.rows_in == scored.rows_out == 9_400
    out = pd.read_parquet(tmp_path / "scored").sort_values("reading_id", ignore_index=True)
    np.testing.assert_array_equal(out["prediction"], predicted)
    assert (out["model_version"] == "1").all()
    # The group column routes the rows and also identifies them in the output.
    assert list(out.columns) == ["device_id", "reading_id", "prediction", "model_name", "model_version", "scored_at"]
    assert (out["device_id"].to_numpy() == known["device_id"].to_numpy()).all()

    # score_batch checks the input's devices on the driver: one clear error, nothing written.
    unseen_input = tmp_path / "unseen.parquet"
    fleet[fleet["device_id"].isin(["dev-0001", "dev-0048"])].drop(columns=["failure"]).to_parquet(unseen_input)
    message = r"model devices v1: 1 device_id value\(s\) unseen in training: 'dev-0048'.*no fallback"
    with pytest.raises(UserInputError, match=message):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(model_uri="models:/devices/1", input=str(unseen_input), output=str(tmp_path / "refused")),
        )
    assert not (tmp_path / "refused").exists()
    loads = (
        spark.range(0, 16, numPartitions=8)
        .mapInPandas(_loads_in_this_worker, "pid long, loaded long")
        .toPandas()
        .drop_duplicates()
    )
    # A worker that scored holds all 47 device models, loaded once however many batches it scored.
    assert set(loads["loaded"]) <= {0, 47} and 47 in set(loads["loaded"])


def _loads_in_this_worker(batches):
    import os

    for _ in batches:
        yield pd.DataFrame({"pid": [os.getpid()], "loaded": [group_models_loaded()]})


def _small_fleet(tmp_path: Path, gaps: bool = False) -> Path:
    """8 devices numbered 0..7 (an integer group column), 60 readings each, all trainable. With `gaps`, 5 more
    readings without a device and 3 readings without a label."""
    fleet = generate(devices=8, rows_per_device=60, seed=11, edge_cases=False)
    fleet["device"] = fleet.pop("device_id").str.removeprefix("dev-").astype("int64")
    if gaps:
        fleet["device"] = fleet["device"].astype("Int64")
        fleet["failure"] = fleet["failure"].astype("Int64")
        fleet.loc[[0, 70, 130], "failure"] = pd.NA
        orphans = fleet.head(5).assign(device=pd.array([pd.NA] * 5, dtype="Int64"))
        fleet = pd.concat([fleet, orphans], ignore_index=True)
    path = tmp_path / "fleet.parquet"
    fleet.to_parquet(path, index=False)
    return path


def test_a_declared_fallback_scores_unseen_and_missing_groups_and_the_gate_uses_each_groups_test_split(
    spark, settings, client, tmp_path
):
    from registry.promote import PromoteParams
    from registry.promote import run as promote_job

    result = run(
        spark,
        settings,
        TrainPerGroupParams(
            data=str(_small_fleet(tmp_path, gaps=True)),
            label="failure",
            group="device",
            estimator="logistic_regression",
            min_rows=40,
            fallback="global",
            exclude=["device_type"],
            model_name="fleet",
        ),
    )
    assert result.trained == [str(i) for i in range(8)] and result.skipped == {}
    metrics = client.get_run(result.run_id).data.metrics
    assert "fallback_accuracy" in metrics
    assert (metrics["n_rows"], metrics["n_rows_missing_group"], metrics["n_rows_missing_label"]) == (480, 5, 3)
    models, fallback = _group_models("models:/fleet/1")
    assert fallback is not None and sorted(models) == [str(i) for i in range(8)]

    fleet = pd.read_parquet(tmp_path / "fleet.parquet").dropna().astype({"device": "int64"}).drop(columns="failure")
    new = fleet[fleet["device"] == 3].head(10).copy()
    new["device"] = 99  # a device installed after training
    rows = pd.concat([fleet[fleet["device"] == 3].head(10), new], ignore_index=True)
    predicted = mlflow.pyfunc.load_model("models:/fleet/1").predict(rows)
    features = rows.drop(columns=["device"])
    np.testing.assert_array_equal(predicted[:10], models["3"].predict(features[:10]))
    np.testing.assert_array_equal(predicted[10:], fallback.predict(features[10:]))

    # Every trained group's held-out rows are logged (not the fallback's: its rows are the groups' rows again).
    held_out = logged_test_split(result.run_id).to_pandas()
    table = mlflow.load_table("per_group_metrics.json", run_ids=[result.run_id])
    # Each group's test split, with its group value, in the training table's column order and types.
    assert held_out["device"].value_counts().sort_index().tolist() == table.sort_values("group")["n_test"].tolist()
    inputs = mlflow.models.get_model_info("models:/fleet/1").signature.inputs.input_names()
    assert inputs[0] == "device" and list(held_out.columns) == [*inputs, "failure"]
    assert str(held_out["device"].dtype) == "int64" and held_out["failure"].notna().all()

    promoted = promote_job(spark, settings, PromoteParams(model_name="fleet", stage="Production"))
    assert (promoted.version, promoted.stage) == ("1", "Production")
    assert client.get_model_version("fleet", "1").current_stage == "Production"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group": "site"}, "group column 'site' not found; columns are: device_id, device_type, temperature_c"),
        ({"label": "broken"}, "label column 'broken' not found"),
        ({"group": "failure"}, "the group column and the label are both 'failure'"),
        ({"group": "temperature_c"}, "group column 'temperature_c' has type double; use a string, integer or boolean"),
        ({"exclude": ["serial"]}, r"excluded column\(s\) not found: serial"),
        ({"min_rows": 2}, "min_rows must be at least 5, got 2"),
        ({"fallback": "nearest"}, "fallback must be one of none, global, got 'nearest'"),
        ({"estimator": "svm"}, "unknown estimator 'svm'"),
        ({"test_fraction": 1.5}, "test_fraction must be between 0 and 1"),
    ],
)
def test_bad_input_is_refused_before_any_spark_job(spark, settings, client, kwargs, message):
    # The bundled set becomes a DataFrame without a job; a Parquet path would cost Spark's own schema read.
    params = {"data": "iot_devices", "label": "failure", "group": "device_id", **kwargs}
    spark.sparkContext.setJobGroup("bad-input", "bad input must not start a job")
    try:
        with pytest.raises(UserInputError, match=message):
            run(spark, settings, TrainPerGroupParams(**params))
        assert spark.sparkContext.statusTracker().getJobIdsForGroup("bad-input") == []
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_a_hyperparameter_the_estimator_does_not_accept_is_refused_before_training(spark, settings):
    with pytest.raises(UserInputError, match="LogisticRegression does not accept n_estimators"):
        run(
            spark,
            settings,
            TrainPerGroupParams(
                data="iot_devices",
                label="failure",
                group="device_id",
                estimator="logistic_regression",
                hyperparams={"n_estimators": 5},
            ),
        )


def test_when_no_group_can_be_trained_nothing_is_logged(spark, settings, client):
    with pytest.raises(UserInputError, match=r"no group could be trained \(50 skipped\): dev-0000: 200 labeled rows"):
        run(spark, settings, TrainPerGroupParams(data="iot_devices", label="failure", group="device_id", min_rows=500))
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
    assert client.search_registered_models() == []


@pytest.mark.e2e
def test_train_per_group_through_mlflow_run_and_its_version_reproduced(
    settings, client, tmp_path, run_in_process, snapshot
):
    data = _small_fleet(tmp_path)
    params = {"data": data, "label": "failure", "group": "device", "estimator": "logistic_regression"}
    done = run_entry_point(
        "train_per_group",
        {**params, "min_rows": 40, "fallback": "global", "exclude": "device_type", "model_name": "fleet"},
        tmp_path,
        settings.tracking_uri,
        project=snapshot,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "groups trained=8 skipped=0" in done.stdout and "registered fleet version 1" in done.stdout
    (tracked,) = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    assert tracked.data.params["group"] == "device" and tracked.data.metrics["groups_trained"] == 8
    version = client.get_model_version("fleet", "1")
    assert version.run_id == tracked.info.run_id

    # Every group's model and the fallback rebuilt from the run's record, the same to the last bit (the reproduce
    # command in-process, its replay through `mlflow run`: reproduce's own process is tests/reproduce's).
    reproduced = reproduce_in_process(run_in_process, "models:/fleet/1", snapshot)
    assert_reproduced_exactly(client, version, reproduced, logged_test_rows(client, version.run_id, tmp_path))

    # The refusal from the same command in-process (a failing job's exit through `mlflow run` is proven in
    # tests/test_entry_points.py): one line, exit 2 (common.cli), nothing tracked.
    args = [f"--{key}={value}" for key, value in {**params, "group": "site"}.items()]
    refused = run_in_process("training.per_group.train_per_group", args)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: group column 'site' not found; columns are: device_type, temperature_c")
    # The training, the reproduction and its replay: the refused job tracked nothing.
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == 3
