"""The `strategy` parameter through `mlflow run`, as a user passes it."""

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_entry_point, scoring_frame

pytestmark = pytest.mark.e2e


def test_score_batch_entry_point_takes_a_strategy_and_refuses_an_unknown_one(
    settings, client, production_model, tmp_path
):
    source = tmp_path / "input.parquet"
    scoring_frame().to_parquet(source, index=False)
    params = {"model_uri": "models:/cancer/production", "input": source, "output": tmp_path / "out"}
    completed = run_entry_point("score_batch", {**params, "strategy": "pandas"}, tmp_path, settings.tracking_uri)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "569 rows in, 569 rows out with cancer v1" in completed.stdout
    scored = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(
        scored["prediction"], model.predict(scoring_frame().drop(columns=["row_id", "target"]))
    )
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (run,) = [r for r in runs if "strategy" in r.data.params]
    assert (run.data.params["strategy"], run.data.params["scoring_path"]) == ("pandas", "pandas")

    params["output"] = tmp_path / "never"
    completed = run_entry_point("score_batch", {**params, "strategy": "per_row"}, tmp_path, settings.tracking_uri)
    assert completed.returncode != 0
    assert (
        "error: unknown scoring strategy 'per_row'; choose one of: auto, arrow, pandas, grouped, spark_udf"
        in completed.stderr
    )
    assert not (tmp_path / "never").exists()
