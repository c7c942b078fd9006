"""score_batch's `files` strategy: Spark schedules slices of the input's Parquet files, Python tasks read, score and
write them with pyarrow. Same output as the `arrow` strategy, row for row; bad input named, nothing committed."""

import logging

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.errors import UserInputError
from common.model_uri import resolve_model_uri
from common.spark import SparkStarter
from scoring.batch.dataframe import model_info
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.files.executor import part_name, score_slice
from scoring.files.slices import cut_slices, list_parquet_input
from scoring.files.strategy import list_files_input, plan_files, run_files
from tests.helpers import run_module, scoring_frame


def _write_input(frame: pd.DataFrame, folder, row_group_rows=(40, 60, None)) -> str:
    """Three files as different writers make them: small row groups, larger ones, and one row group for the whole
    file (which slices split). `note` is a pass-through string column, `row_id` the id."""
    folder.mkdir()
    thirds = np.array_split(np.arange(len(frame)), 3)
    for index, (rows, group) in enumerate(zip(thirds, row_group_rows, strict=True)):
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{index}.parquet", row_group_size=group or len(rows))
    return str(folder)


def _with_note(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(note=[f"row {i}" if i % 7 else None for i in frame["row_id"]])


def _scored(spark, settings, uri: str, source: str, output, strategy: str, slice_rows: int = 0):
    params = ScoreBatchParams(uri, source, str(output), strategy=strategy, slice_rows=slice_rows)
    return score_batch(spark, settings, params)


@pytest.mark.parametrize("model", ["pipeline, two classes", "bare forest, three classes"])
def test_files_writes_what_arrow_writes_row_by_row(
    spark, settings, client, production_model, wine_forest, model, tmp_path
):
    if model.startswith("pipeline"):
        uri, frame = "models:/cancer/production", scoring_frame()
        frame["mean_area"] = frame["mean_area"].round().astype("int64")  # an integer column the signature widens
    else:
        uri, frame = "models:/wine_forest/1", wine_forest[1]
    source = _write_input(_with_note(frame), tmp_path / "input")

    files = _scored(spark, settings, uri, source, tmp_path / "files", "files", slice_rows=45)
    arrow = _scored(spark, settings, uri, source, tmp_path / "arrow", "arrow")

    ours, theirs = spark.read.parquet(files.output), spark.read.parquet(arrow.output)
    assert ours.schema == theirs.schema
    ours, theirs = (df.toPandas().sort_values("row_id", ignore_index=True) for df in (ours, theirs))
    # Every value the same but the scoring time (one per job); probabilities to the last bits BLAS leaves to the
    # batch sizes (different per strategy).
    left_out = ["probability", "scored_at"]
    pd.testing.assert_frame_equal(ours.drop(columns=left_out), theirs.drop(columns=left_out))
    assert ours["scored_at"].nunique() == 1 and ours["scored_at"].notna().all()  # one time for every slice
    np.testing.assert_allclose(np.stack(ours["probability"]), np.stack(theirs["probability"]), rtol=1e-12, atol=0)
    assert files.rows_in == files.rows_out == arrow.rows_out == len(frame)
    # One part per slice (45 rows each, the whole-file row group split between slices), and Spark's marker.
    written = sorted(p.name for p in (tmp_path / "files").iterdir())
    assert written == ["_SUCCESS", *[part_name(i) for i in range(len(written) - 1)]] and len(written) - 1 >= 4
    runs = {r.data.params["scoring_path"]: r.data for r in (client.get_run(files.run_id), client.get_run(arrow.run_id))}
    assert set(runs) == {"files", "arrow"}
    assert runs["files"].metrics.keys() == runs["arrow"].metrics.keys()
    for name in ("rows_in", "rows_out", "model_size_bytes", "model_memory_per_executor_bytes"):
        assert runs["files"].metrics[name] == runs["arrow"].metrics[name]


def test_auto_scores_parquet_with_files_and_says_why_other_inputs_take_arrow(
    spark, settings, client, production_model, tmp_path, caplog
):
    frame = scoring_frame()
    parquet, csv = tmp_path / "in.parquet", tmp_path / "in.csv"
    frame.to_parquet(parquet, index=False)
    frame.to_csv(csv, index=False)

    with caplog.at_level(logging.INFO, logger="scoring"):  # score_batch says which path, strategies why not files
        from_parquet = _scored(spark, settings, "models:/cancer/production", str(parquet), tmp_path / "a", "auto")
        from_csv = _scored(spark, settings, "models:/cancer/production", str(csv), tmp_path / "b", "auto")
    assert client.get_run(from_parquet.run_id).data.params["scoring_path"] == "files"
    assert client.get_run(from_csv.run_id).data.params["scoring_path"] == "arrow"
    assert "scoring path files: 569 rows of 1 file(s), in the driver" in caplog.text
    assert "scoring path not files: CSV input is parsed by Spark" in caplog.text
    assert_frame = pd.read_parquet(tmp_path / "a").sort_values("row_id", ignore_index=True)
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(assert_frame["prediction"], model.predict(frame.drop(columns=["row_id", "target"])))

    with pytest.raises(UserInputError, match="strategy files does not apply to this job: CSV input is parsed by Spark"):
        _scored(spark, settings, "models:/cancer/production", str(csv), tmp_path / "c", "files")
    assert not (tmp_path / "c").exists()


def test_a_small_input_is_scored_without_starting_spark(settings, production_model, tmp_path):
    source = tmp_path / "in.parquet"
    scoring_frame().to_parquet(source, index=False)
    starter = SparkStarter(settings, app_name="never-started")
    result = score_batch(
        starter, settings, ScoreBatchParams("models:/cancer/production", str(source), str(tmp_path / "o"))
    )
    assert result.rows_out == 569 and not starter.started
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["_SUCCESS", "part-00000.parquet"]


def _assert_nothing_written(tmp_path, output: str) -> None:
    assert not (tmp_path / output).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f"{output}.")]  # no staging folder left


@pytest.mark.parametrize(
    "damage, message",
    [
        ("not parquet", r"input file .*part-1\.parquet is not a Parquet file"),
        ("string feature", r"input file .*part-1\.parquet: column 'mean_radius' is string, which does not convert"),
        ("missing feature", r"input file .*part-2\.parquet: column 'worst_area' is missing"),
    ],
)
def test_bad_files_fail_the_job_naming_file_and_column_and_nothing_is_committed(
    spark, settings, production_model, damage, message, tmp_path
):
    source = _write_input(scoring_frame(), tmp_path / "input")
    if damage == "not parquet":
        (tmp_path / "input" / "part-1.parquet").write_text("row_id,mean_radius\n1,2.0\n")
    elif damage == "string feature":
        table = pq.read_table(tmp_path / "input" / "part-1.parquet")
        index = table.schema.get_field_index("mean_radius")
        table = table.set_column(index, "mean_radius", table.column(index).cast(pa.string()))
        pq.write_table(table, tmp_path / "input" / "part-1.parquet")
    else:
        pq.write_table(
            pq.read_table(tmp_path / "input" / "part-2.parquet").drop(["worst_area"]),
            tmp_path / "input" / "part-2.parquet",
        )
    with pytest.raises(UserInputError, match=message):
        _scored(spark, settings, "models:/cancer/production", source, tmp_path / "out", "files", slice_rows=100)
    _assert_nothing_written(tmp_path, "out")


def test_a_file_that_vanishes_after_listing_is_named(spark, settings, production_model, tmp_path):
    source = _write_input(scoring_frame(), tmp_path / "input")
    files, _ = list_files_input("files", source, "auto", None)
    resolved = resolve_model_uri(mlflow.MlflowClient(), "models:/cancer/1")
    planned = plan_files(
        spark,
        files,
        resolved,
        model_info(settings.tracking_uri, resolved.load_uri),
        str(tmp_path / "staging"),
        slice_rows=100,
    )
    (tmp_path / "input" / "part-2.parquet").unlink()
    with pytest.raises(UserInputError, match=r"input file .*part-2\.parquet vanished after the input was listed"):
        run_files(spark, planned)


def test_a_retried_slice_replaces_its_own_part_and_leftovers_of_killed_attempts_go(
    spark, settings, production_model, tmp_path
):
    source = _write_input(scoring_frame(), tmp_path / "input")
    files = list_parquet_input(source)
    resolved = resolve_model_uri(mlflow.MlflowClient(), "models:/cancer/1")
    staging = tmp_path / "staging"
    planned = plan_files(
        spark, files, resolved, model_info(settings.tracking_uri, resolved.load_uri), str(staging), slice_rows=200
    )
    staging.mkdir()
    (staging / ".part-00001.parquet.0badc0de.tmp").write_bytes(b"half a part from a killed attempt")
    assert run_files(spark, planned) == 569
    first = pd.read_parquet(staging / part_name(0))

    model = mlflow.sklearn.load_model("models:/cancer/1")
    again = score_slice(planned.task, planned.slices[0], model)  # the same slice run again, as a retry runs it
    assert again.rows_out == planned.slices[0].rows
    assert sorted(p.name for p in staging.iterdir()) == [
        "_SUCCESS",
        *[part_name(i) for i in range(len(planned.slices))],
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(staging / part_name(0)), first)


_FAILS_ONCE = '''
import os

import mlflow


class FailsOnce(mlflow.pyfunc.PythonModel):
    """Its first predict anywhere fails (the marker file is created once, atomically); every other call answers."""

    def predict(self, context, model_input):
        try:
            os.close(os.open(os.environ["FAIL_ONCE_MARKER"], os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return model_input["mean_radius"] * 2.0
        raise RuntimeError("this attempt fails on purpose")


mlflow.models.set_model(FailsOnce())
'''


def test_a_task_that_fails_once_is_retried_by_spark_and_writes_its_part_once(settings, tmp_path):
    """A real retry: local[2,2] lets Spark run a failed task a second time, in a job of its own process."""
    from mlflow.models import infer_signature

    frame = scoring_frame()
    features = frame.drop(columns=["row_id", "target"])
    code = tmp_path / "fails_once.py"
    code.write_text(_FAILS_ONCE)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            signature=infer_signature(features, features["mean_radius"] * 2.0),
            registered_model_name="fails_once",
        )
    source = _write_input(frame, tmp_path / "input")
    marker = tmp_path / "failed-once"
    args = ["--model-uri", "models:/fails_once/1", "--input", source, "--output", str(tmp_path / "out")]
    env = {"SPARK_MASTER": "local[2,2]", "FAIL_ONCE_MARKER": str(marker)}
    completed = run_module("scoring.batch.score_batch", [*args, "--slice-rows", "100"], settings.tracking_uri, env)

    assert completed.returncode == 0, completed.stderr[-4000:]
    assert marker.exists() and "this attempt fails on purpose" in completed.stderr  # one attempt did fail
    assert "569 rows in, 569 rows out" in completed.stdout
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    slices = cut_slices(list_parquet_input(source), parallelism=2, slice_rows=100)
    assert written == ["_SUCCESS", *[part_name(s.index) for s in slices]]  # no second part, no temporary left
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(569))
    np.testing.assert_array_equal(out["prediction"], frame["mean_radius"] * 2.0)


@pytest.mark.parametrize(
    ("rows", "columns", "slices"),
    [
        (20_000, 20, 1),  # 400k values: not worth a second task, one slice (scored in the driver)
        (20_000, 300, 2),  # 6M values: one slice per core
        (200_000, 20, 2),
        (1_000, 1_000, 1),  # a million values exactly: still one slice
    ],
)
def test_slices_by_default_are_one_per_core_unless_the_input_is_smaller_than_a_million_values(
    rows, columns, slices, tmp_path
):
    table = pa.table({f"c{i}": np.zeros(rows) for i in range(columns)})
    pq.write_table(table, tmp_path / "input.parquet", row_group_size=rows // 4)
    cut = cut_slices(list_parquet_input(str(tmp_path / "input.parquet")), parallelism=2)
    assert [s.rows for s in cut] == [rows // slices] * slices


@pytest.mark.parametrize("strategy", ["files", "arrow"])
def test_keep_features_writes_the_model_inputs_beside_each_prediction(
    spark, settings, production_model, strategy, tmp_path
):
    """The inference table monitor profiles: every feature the model took, with the row's own values."""
    frame = scoring_frame()
    source = _write_input(frame, tmp_path / "input")
    params = ScoreBatchParams("models:/cancer/1", source, str(tmp_path / "out"), strategy=strategy, keep_features=True)
    result = score_batch(spark, settings, params)

    scored = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    features = frame.drop(columns=["row_id", "target"])
    assert result.rows_out == len(frame) and set(features.columns) <= set(scored.columns)
    np.testing.assert_allclose(scored[features.columns].to_numpy(float), features.to_numpy(float))
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(scored["prediction"], model.predict(features))
