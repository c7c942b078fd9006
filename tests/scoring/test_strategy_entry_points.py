"""The `strategy` parameter as `mlflow run -P strategy=...` passes it: the command MLflow builds from MLproject, run
in-process. score_batch's own process under `mlflow run` is tests/test_entry_points.py's (the CSV chain and the
refused input); a process here cost a JVM start (20-30 s) and proved nothing more than the command line it runs."""

import shlex

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.projects._project_spec import load_project

from tests.helpers import REPO, scoring_frame

pytestmark = pytest.mark.e2e


def test_score_batch_entry_point_takes_a_strategy_and_refuses_an_unknown_one(
    settings, client, production_model, tmp_path, run_in_process
):
    source = tmp_path / "input.parquet"
    scoring_frame().to_parquet(source, index=False)
    params = {"model_uri": "models:/cancer/production", "input": str(source), "output": str(tmp_path / "out")}
    # MLflow's own expansion of the entry point's command (defaults filled in, as `mlflow run` does).
    command = (
        load_project(str(REPO))
        .get_entry_point("score_batch")
        .compute_command({**params, "strategy": "pandas"}, str(tmp_path / "storage"))
    )
    python, dash_m, module, *args = shlex.split(command)
    assert (python, dash_m, module) == ("python", "-m", "scoring.batch.score_batch") and "--strategy" in args
    completed = run_in_process(module, args)
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


def test_an_unknown_strategy_exits_2_with_one_line_and_writes_nothing(settings, production_model, tmp_path, capsys):
    """The command as `python -m scoring.batch.score_batch` runs it, in-process: refused before anything is written."""
    from common.cli import run_cli
    from scoring.batch.score_batch import main

    args = ["--model-uri", "models:/cancer/production", "--input", str(tmp_path / "in.parquet")]
    with pytest.raises(SystemExit) as exited:
        run_cli(main, [*args, "--output", str(tmp_path / "never"), "--strategy", "per_row"])

    assert exited.value.code == 2
    assert "error: unknown scoring strategy 'per_row'; choose one of: auto, arrow, pandas, grouped, spark_udf" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "never").exists()
