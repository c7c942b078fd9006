import mlflow
import numpy as np
import pandas as pd
import pytest

from common.errors import UserInputError
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from tests.helpers import scoring_frame

OUTPUT_COLUMNS = ["row_id", "target", "prediction", "probability", "model_name", "model_version", "scored_at"]


@pytest.fixture
def cancer_input(tmp_path):
    path = tmp_path / "input.parquet"
    scoring_frame("breast_cancer").to_parquet(path, index=False)
    return path


def _expected(frame: pd.DataFrame, model_uri: str) -> pd.DataFrame:
    model = mlflow.sklearn.load_model(model_uri)
    features = frame.drop(columns=["row_id", "target"])
    return pd.DataFrame(
        {
            "row_id": frame["row_id"],
            "prediction": model.predict(features),
            "probability": model.predict_proba(features)[:, 1],
        }
    )


def test_scores_every_row_with_the_production_version_and_matches_the_models_own_predictions(
    spark, settings, client, production_model, cancer_input, tmp_path
):
    started = pd.Timestamp.now(tz="UTC")
    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(model_uri="models:/cancer/production", input=str(cancer_input), output=str(tmp_path / "out")),
    )
    ended = pd.Timestamp.now(tz="UTC")
    assert (result.rows_in, result.rows_out) == (569, 569)
    assert (result.model.model_name, result.model.model_version) == ("cancer", "1")

    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert list(out.columns) == OUTPUT_COLUMNS
    # The scoring time: an instant in UTC as serve's inference log writes it, one per job run, within the job.
    assert str(out["scored_at"].dtype) == "datetime64[us, UTC]" and out["scored_at"].nunique() == 1
    assert started <= out["scored_at"].iloc[0] <= ended
    assert out["row_id"].tolist() == list(range(569))
    assert (out["model_name"] == "cancer").all() and (out["model_version"] == "1").all()
    expected = _expected(scoring_frame(), "models:/cancer/1")
    np.testing.assert_array_equal(out["prediction"], expected["prediction"])
    np.testing.assert_allclose(out["probability"], expected["probability"], rtol=1e-12)
    assert out["target"].tolist() == scoring_frame()["target"].tolist()

    tracked = client.get_run(result.run_id)
    assert tracked.data.params["resolved_model_uri"] == "models:/cancer/1"
    assert tracked.data.params["model_uri"] == "models:/cancer/production"
    assert tracked.data.metrics["rows_in"] == tracked.data.metrics["rows_out"] == 569
    assert tracked.data.metrics["rows_per_second"] > 0
    (scored_input,) = tracked.inputs.dataset_inputs
    assert {t.key: t.value for t in scored_input.tags}["mlflow.data.context"] == "scoring"


def test_columns_bind_by_name_not_position_and_integers_widen(spark, settings, production_model, tmp_path):
    frame = scoring_frame()
    shuffled = frame[["target", *reversed(frame.columns.drop(["target", "row_id"])), "row_id"]].copy()
    shuffled["mean_radius"] = shuffled["mean_radius"].round().astype("int64")  # an integer feature column
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    score_batch(
        spark,
        settings,
        ScoreBatchParams(model_uri="models:/cancer@production", input=str(path), output=str(tmp_path / "out")),
    )
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    frame["mean_radius"] = frame["mean_radius"].round()
    expected = _expected(frame, "models:/cancer/1")
    np.testing.assert_array_equal(out["prediction"], expected["prediction"])
    np.testing.assert_allclose(out["probability"], expected["probability"], rtol=1e-9)
    # Pass-through columns keep the input's order.
    assert list(out.columns) == [
        "target",
        "row_id",
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "scored_at",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["worst_area"]), r"column 'worst_area' is missing \(expected double\)"),
        (
            lambda f: f.assign(mean_area=f["mean_area"].astype(str)),
            "column 'mean_area': expected double, found string",
        ),
        (lambda f: f.iloc[:0], "has no rows"),
        (lambda f: f.assign(prediction=1.0), r"input already has column\(s\) prediction"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written_or_tracked(
    spark, settings, client, production_model, tmp_path, change, message
):
    path = tmp_path / "bad.parquet"
    change(scoring_frame()).to_parquet(path, index=False)
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    with pytest.raises(UserInputError, match=message):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "out")),
        )
    assert not (tmp_path / "out").exists()
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs_before


def test_unknown_model_stage_and_input_path_are_named(spark, settings, production_model, cancer_input, tmp_path):
    with pytest.raises(
        UserInputError,
        match=r"no version in stage Staging and no alias 'staging'; versions: 1 \(Production, @production\)",
    ):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(model_uri="models:/cancer/staging", input=str(cancer_input), output=str(tmp_path / "out")),
        )
    with pytest.raises(UserInputError, match="cannot read input .*missing.parquet"):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(
                model_uri="models:/cancer/production",
                input=str(tmp_path / "missing.parquet"),
                output=str(tmp_path / "out"),
            ),
        )


def test_an_existing_output_is_kept_unless_overwrite_and_then_replaced_whole(
    spark, settings, production_model, cancer_input, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier result")
    with pytest.raises(UserInputError, match="already exists; choose another path or pass overwrite=true"):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(model_uri="models:/cancer/production", input=str(cancer_input), output=str(out)),
        )
    assert (out / "keep.txt").read_text() == "earlier result"

    score_batch(
        spark,
        settings,
        ScoreBatchParams(
            model_uri="models:/cancer/production", input=str(cancer_input), output=str(out), overwrite=True
        ),
    )
    assert not (out / "keep.txt").exists() and len(pd.read_parquet(out)) == 569
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out"]


def test_a_pyfunc_only_model_is_scored_through_predict(spark, settings, tmp_path):
    code = tmp_path / "doubler.py"
    code.write_text(
        "import mlflow\n"
        "class Doubler(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input):\n"
        "        return model_input['x'] * 2\n"
        "mlflow.models.set_model(Doubler())\n"
    )
    signature = mlflow.models.infer_signature(pd.DataFrame({"x": [1.0]}), pd.Series([2.0]))
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            signature=signature,
            registered_model_name="doubler",
            pip_requirements=["mlflow"],
        )
    path = tmp_path / "x.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "x": [1.0, 2.5, -4.0]}).to_parquet(path)
    score_batch(
        spark, settings, ScoreBatchParams(model_uri="models:/doubler/1", input=str(path), output=str(tmp_path / "out"))
    )
    out = pd.read_parquet(tmp_path / "out").sort_values("id", ignore_index=True)
    assert list(out.columns) == ["id", "prediction", "model_name", "model_version", "scored_at"]
    assert out["prediction"].tolist() == [2.0, 5.0, -8.0]
