"""Retraining through the gate, for `monitor -P retrain=true`: when the policy fires for a version (at least N of the
last M judged windows drifted or degraded), its training run's entry point is run again with the parameters that
run recorded, on `retrain_data`, and the result is registered as a new version of the same model; the promotion gate
then compares it with the Production version on the most recent labelled window, and only a winner is promoted.

The retraining runs today's code in the current checkout (lifecycle.replay with this project folder, not a worktree
of the old commit): retraining means the code as it is now on new data, not a reproduction. Every step is linked:
the retraining run and the new version carry the monitor run's id, the verdict is tagged on the new version and the
monitor run, and the windows that triggered the retraining are tagged on the new version so that the same monitor
run again does not retrain twice for them.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from common.errors import UserInputError
from common.profile import FEATURE
from common.provenance import DATA_SOURCE_TAG, ENTRY_POINT_TAG, GIT_COMMIT_TAG, TRAINING_ENTRY_POINTS
from common.settings import Settings
from lifecycle.replay import replay
from lifecycle.training_record import TrainingRecord
from monitoring.baselines import Baseline
from monitoring.inputs import LABELLED
from monitoring.judgement import INSUFFICIENT, OK
from monitoring.tables import read_state
from monitoring.windows import WINDOW_KEY
from registry.promotion import promote_version

_logger = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[1]  # the current checkout: retraining runs today's code
MONITOR_RUN_TAG = "lifecycle.monitoring.run_id"  # on the retraining run and the new version: the monitor run
RETRAINED_FROM_TAG = "lifecycle.monitoring.retrained_from"  # on the new version: the version that was judged
RETRAINED_FOR_TAG = "lifecycle.monitoring.retrained_for"  # on the new version: the window ids that triggered it
GATE_TAG = "lifecycle.monitoring.gate"  # on the new version: promoted / refused: ...
RETRAINING_TAG = "lifecycle.monitoring.retraining"  # on the monitor run: what retraining did
PROMOTED, REFUSED, SKIPPED = "promoted", "refused", "skipped"


@dataclass(frozen=True)
class Retraining:
    outcome: str  # promoted, refused, skipped
    judged_version: str
    windows: str  # the ids of the windows that triggered it, comma-separated
    new_version: str | None = None
    run_id: str | None = None  # the retraining run
    detail: str = ""

    def describe(self) -> str:
        if self.outcome == SKIPPED:
            return f"retraining of v{self.judged_version} skipped: {self.detail}"
        return (
            f"v{self.judged_version} retrained as v{self.new_version} (run {self.run_id}) for windows "
            f"{self.windows}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")
        )


def check_request(retrain: bool, retrain_data: str | None, labels: str | None) -> None:
    if not retrain:
        return
    if not retrain_data:
        raise UserInputError("retrain=true needs retrain_data=<recent labelled rows to retrain on: a Parquet/CSV path>")
    if not labels:
        raise UserInputError("retrain=true needs labels=<...>: the gate judges the retrained model on labelled rows")


def training_record(client: mlflow.MlflowClient, model_name: str, version: str) -> TrainingRecord:
    """What the version's training run recorded about how it was made; a run without it cannot be retrained.
    Unlike `reproduce`, the commit, a clean tree and the environment are not required: retraining runs today's code."""
    mv = client.get_model_version(model_name, version)
    run = client.get_run(mv.run_id)
    tags = run.data.tags
    entry_point = tags.get(ENTRY_POINT_TAG)
    if entry_point not in TRAINING_ENTRY_POINTS:
        raise UserInputError(
            f"{model_name} version {version} cannot be retrained: its run {mv.run_id} has no training record "
            f"(no {ENTRY_POINT_TAG} tag naming one of {', '.join(TRAINING_ENTRY_POINTS)}); train it with a training "
            "entry point first"
        )
    commit, source = tags.get(GIT_COMMIT_TAG, ""), tags.get(DATA_SOURCE_TAG, "")
    return TrainingRecord(run, entry_point, commit, source, None, {}, False)


def triggering_windows(state: list[dict], version: str, evaluation_windows: int) -> list[int]:
    """The windows among the version's last `evaluation_windows` judged ones (whole table, not slices) that drifted
    or degraded: what the policy fired on."""
    verdicts = sorted(
        (row["window_key"], row["verdict"])
        for row in state
        if row["slice_value"] is None
        and row["model_version"] == version
        and not row["verdict"].startswith(INSUFFICIENT)
    )
    return [key for key, verdict in verdicts[-evaluation_windows:] if verdict != OK]


def already_retrained(client: mlflow.MlflowClient, model_name: str, version: str, windows: str) -> ModelVersion | None:
    for mv in client.search_model_versions(f"name='{model_name}'"):
        if mv.tags.get(RETRAINED_FROM_TAG) == version and mv.tags.get(RETRAINED_FOR_TAG) == windows:
            return mv
    return None


def gate_rows(df: DataFrame, baseline: Baseline, folder: Path) -> tuple[str, int, int]:
    """The most recent labelled window's labelled rows, as the models take them (the baseline's features and the
    label), written as Parquet for the gate: (path, window id, rows)."""
    labelled = df.where(F.col(LABELLED))
    latest = labelled.agg(F.max(WINDOW_KEY)).first()[0]
    if latest is None:
        raise UserInputError("retrain=true: no scored row has a label yet, so the gate has nothing to judge on")
    features = [n for n, c in baseline.profile["columns"].items() if c.get("role") == FEATURE and n in df.columns]
    rows = labelled.where(F.col(WINDOW_KEY) == latest).select(*features, baseline.label).toPandas()
    path = folder / "gate_rows.parquet"
    rows.to_parquet(path, index=False)
    return str(path), int(latest), len(rows)


def retrain_if_due(
    spark: SparkSession,
    settings: Settings,
    client: mlflow.MlflowClient,
    params,
    statuses: dict,
    df: DataFrame,
    baselines: dict[str, Baseline],
    monitor_run: mlflow.ActiveRun,
) -> Retraining | None:
    """The newest version the policy fired for is retrained (an older one still in the table is not serving)."""
    due = [v for v, status in statuses.items() if status.retraining.due]
    if not due:
        mlflow.set_tag(RETRAINING_TAG, "not due")
        return None
    version = max(due, key=lambda v: (len(v), v))
    state = read_state(spark, params.output, params.model_name)  # this run's verdicts included
    windows = triggering_windows(state, version, params.evaluation_windows)
    return retrain_through_gate(
        spark, settings, client, params.model_name, version, windows, df, baselines[version], params.retrain_data,
        monitor_run,
    )  # fmt: skip


def retrain_through_gate(
    spark: SparkSession,
    settings: Settings,
    client: mlflow.MlflowClient,
    model_name: str,
    version: str,
    windows: list[int],
    df: DataFrame,
    baseline: Baseline,
    retrain_data: str,
    monitor_run: mlflow.ActiveRun,
) -> Retraining:
    """Called inside the monitor run once the policy fired for `version`."""
    ids = ",".join(str(w) for w in windows)
    earlier = already_retrained(client, model_name, version, ids)
    if earlier is not None:
        detail = f"already retrained for windows {ids} as v{earlier.version} ({earlier.tags.get(GATE_TAG, '')})"
        return _recorded(Retraining(SKIPPED, version, ids, str(earlier.version), detail=detail))
    record = training_record(client, model_name, version)
    data = str(Path(retrain_data).resolve()) if Path(retrain_data).exists() else retrain_data
    run_id, _ = replay(PROJECT, record, monitor_run.info.experiment_id, {"data": data, "model_name": model_name})
    client.set_tag(run_id, MONITOR_RUN_TAG, monitor_run.info.run_id)
    client.set_tag(run_id, RETRAINED_FROM_TAG, version)
    made = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    if not made:
        raise UserInputError(f"retraining run {run_id} ({record.entry_point}) registered no version of {model_name}")
    new = str(max(int(mv.version) for mv in made))
    links = {MONITOR_RUN_TAG: monitor_run.info.run_id, RETRAINED_FROM_TAG: version, RETRAINED_FOR_TAG: ids}
    for key, value in links.items():
        client.set_model_version_tag(model_name, new, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        rows, window, count = gate_rows(df, baseline, Path(tmp))
        mlflow.log_artifact(rows, "monitoring/retraining")
        reason = f"retrained by monitor run {monitor_run.info.run_id}: v{version} violated windows {ids}"
        try:
            promote_version(settings, model_name, "Production", new, reason, data=rows, spark=spark)
            outcome, detail = PROMOTED, f"won the gate on window {window} ({count} labelled rows)"
        except UserInputError as exc:  # the gate said no (PromotionRefused), or the inputs changed, or a conflict
            outcome, detail = REFUSED, f"not promoted on window {window}: {str(exc).splitlines()[0]}"
    client.set_model_version_tag(model_name, new, GATE_TAG, f"{outcome}: {detail}")
    return _recorded(Retraining(outcome, version, ids, new, run_id, detail))


def _recorded(result: Retraining) -> Retraining:
    _logger.info("%s", result.describe())
    mlflow.set_tag(RETRAINING_TAG, result.describe())
    return result
