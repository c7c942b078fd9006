"""Entry point `reproduce`: rebuild a model from its training run's record and say whether it is the same model.

    python -m lifecycle.reproduce --model-uri models:/titanic/3

The version's training run is read back (entry point, parameters, commit, data hash, environment); anything that
cannot be replayed here is refused before anything runs. The commit is checked out into a temporary worktree, the
same entry point runs there as a child run with the same parameters, data and Spark settings, and the two runs are
compared: every metric, what each derived from the data, and both models' predictions on the logged test split.
The verdict is tagged on this run and on the model version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pyarrow as pa
from pyspark.sql import SparkSession

from common.cli import run_cli
from common.errors import UserInputError
from common.job import LAZY_SPARK, EntryPoint, spark_starter
from common.model_uri import ResolvedModel, resolve_model_uri
from common.params import param
from common.provenance import EXACT_TAG, REPRODUCTION_RUN_TAG, REPRODUCTION_VERDICT_TAG
from common.settings import Settings
from common.spark import SparkStarter
from common.spark_compat import CONNECT
from common.tracking import PROJECT_ROOT, tracked_run
from lifecycle.comparison import NOT_REPRODUCED, Comparison, compare_predictions, compare_runs
from lifecycle.replay import replay, worktree
from lifecycle.training_record import (
    TrainingRecord,
    check_commit,
    check_connection,
    check_data,
    check_environment,
    check_server_version,
    read_record,
)
from training.held_out import TEST_SPLIT, logged_test_split

_logger = logging.getLogger(__name__)
ORIGINAL_RUN_TAG = "lifecycle.reproduction.of_run_id"
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class ReproduceParams:
    model_uri: str = param(help="models:/<name>/<version|stage>, models:/<name>@<alias> or runs:/<run_id>/model")
    tolerance: float = param(0.0, help="largest metric or prediction difference still called reproduced")


@dataclass(frozen=True)
class ReproductionResult:
    run_id: str
    record: TrainingRecord
    replay_run_id: str
    model: ResolvedModel
    comparison: Comparison
    verdict: str

    def summary(self) -> str:
        c = self.comparison
        through = ", through Spark Connect" if self.record.connection == CONNECT else ""
        lines = [
            f"{self.model.label} (run {self.record.run_id}, {self.record.entry_point} at {self.record.commit[:12]}"
            f"{through}): {self.verdict}",
            f"replay run {self.replay_run_id}: {len(c.metrics)} metrics compared (largest difference "
            f"{c.max_metric_difference:g}), {c.rows} test rows predicted (largest difference "
            f"{c.max_prediction_difference:g})",
        ]
        return "\n".join(lines + [f"  {line}" for line in c.differences()])

    @property
    def exit_code(self) -> int:
        """1 when the model was not reproduced: a script or CI step can stop on it."""
        return 1 if self.verdict == NOT_REPRODUCED else 0


def run(spark: SparkSession | SparkStarter, settings: Settings, params: ReproduceParams) -> ReproductionResult:
    """Every refusal comes before the reproduction run exists. Spark (a starter: its JVM starts while the replay
    trains) scores both models on the test split."""
    if params.tolerance < 0:
        raise UserInputError(f"tolerance must be 0 or more, got {params.tolerance}")
    client = mlflow.MlflowClient()
    model = resolve_model_uri(client, params.model_uri)
    record = read_record(client, _training_run_id(model))
    check_data(record)
    check_environment(record)
    check_commit(PROJECT_ROOT, record)
    check_connection(record, settings.spark_remote)
    test_rows = _test_split(record.run_id)
    if not record.exact:
        _logger.warning("run %s recorded that a rerun differs (%s)", record.run_id, record.run.data.tags[EXACT_TAG])
    spark = spark_starter(spark)
    if record.connection == CONNECT:  # a Connect session starts no JVM here: asking the server costs a round trip
        check_server_version(record, spark.get())

    with tracked_run(settings, run_name=f"reproduce-{record.entry_point}") as active:
        mlflow.set_tags(_link_tags(record, model, active.info.experiment_id))
        spark.start_in_background()  # for scoring both models; its JVM starts while the replay trains
        with worktree(PROJECT_ROOT, record.commit) as project:
            replay_run_id, replayed = replay(project, record, active.info.experiment_id)
        metrics, differences = compare_runs(record.run, client.get_run(replay_run_id), set(replayed))
        replayed_model = _logged_model(active.info.experiment_id, replay_run_id)
        # A runs:/ URI of an MLflow 3 model names the run, not the model's own artifacts: load it by its id.
        original_model = model if model.model_name else _logged_model(record.run.info.experiment_id, record.run_id)
        predictions, mismatched = compare_predictions(spark.get(), original_model, replayed_model, test_rows)
        comparison = Comparison(metrics, differences, test_rows.num_rows, predictions, mismatched)
        verdict = comparison.verdict(params.tolerance)
        _log_verdict(client, active.info.run_id, model, record, replay_run_id, comparison, verdict, params)
        return ReproductionResult(active.info.run_id, record, replay_run_id, model, comparison, verdict)


def _training_run_id(model: ResolvedModel) -> str:
    if model.run_id:
        return model.run_id
    if model.load_uri.startswith("runs:/"):
        return model.load_uri.removeprefix("runs:/").split("/", 1)[0]
    raise UserInputError(
        f"cannot tell which run trained {model.requested_uri}: use a registered version (models:/<name>/<version>) "
        "or runs:/<run_id>/model"
    )


def _logged_model(experiment_id: str, run_id: str) -> ResolvedModel:
    """The model a run logged: an MLflow 3 logged model found by its source run, or (Spark models are still saved
    into the run's own artifacts) the run's `model` folder."""
    found = mlflow.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'",
        output_format="list",
    )
    if len(found) == 1:
        uri = f"models:/{found[0].model_id}"
    elif not found and any(a.path == MODEL_ARTIFACT for a in mlflow.MlflowClient().list_artifacts(run_id)):
        uri = f"runs:/{run_id}/{MODEL_ARTIFACT}"
    else:
        raise UserInputError(f"run {run_id} logged {len(found)} models named {MODEL_ARTIFACT!r}, not one")
    return ResolvedModel(uri, uri, None, None, run_id)


def _test_split(run_id: str) -> pa.Table:
    try:
        return logged_test_split(run_id)
    except Exception as exc:
        raise UserInputError(f"run {run_id} logged no test split ({TEST_SPLIT}) to compare predictions on") from exc


def _link_tags(record: TrainingRecord, model: ResolvedModel, experiment_id: str) -> dict[str, str]:
    """The original run's id, and the run page's description linking to it (the UI renders it as Markdown)."""
    original = record.run.info
    return {
        ORIGINAL_RUN_TAG: original.run_id,
        "lifecycle.reproduction.model": model.label,
        "mlflow.note.content": (
            f"Reproduction of [{record.entry_point} run {original.run_id}]"
            f"(#/experiments/{original.experiment_id}/runs/{original.run_id}) ({model.label}) at commit "
            f"{record.commit}; the replay is this run's child."
        ),
    }


def _log_verdict(client, run_id, model, record, replay_run_id, comparison: Comparison, verdict, params) -> None:
    mlflow.set_tags({REPRODUCTION_VERDICT_TAG: verdict, "lifecycle.reproduction.replay_run_id": replay_run_id})
    mlflow.log_metrics(
        {
            "max_metric_difference": comparison.max_metric_difference,
            "max_prediction_difference": comparison.max_prediction_difference,
            "test_rows_compared": comparison.rows,
            "test_rows_predicted_differently": comparison.mismatched_rows,
        }
    )
    report = {
        "model": model.label,
        "original_run_id": record.run_id,
        "replay_run_id": replay_run_id,
        "commit": record.commit,
        "entry_point": record.entry_point,
        "tolerance": params.tolerance,
        "verdict": verdict,
        "metrics": {name: list(pair) for name, pair in sorted(comparison.metrics.items())},
        "differences": comparison.differences(),
    }
    mlflow.log_dict(report, "reproduction/report.json")
    if model.model_name:
        for key, value in {REPRODUCTION_VERDICT_TAG: verdict, REPRODUCTION_RUN_TAG: run_id}.items():
            client.set_model_version_tag(model.model_name, model.model_version, key, value)


ENTRY_POINT = EntryPoint(ReproduceParams, run, spark=LAZY_SPARK)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
