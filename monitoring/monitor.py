"""Entry point `monitor`: drift and accuracy of a registered model's scored rows, per window x version (x slice).

    python -m monitoring.monitor --model-name titanic --input output/scored --output output/monitoring --window 1d

Reads the inference table (score_batch, score_stream or serve's log), cuts it into windows by the scoring time (or
by micro-batch), profiles every feature and the predictions in one Spark aggregation per run, and compares each
window with the version's baseline (its training run's reference profile) and with the previous window; with
labels, also the training run's held-out metrics. Results: the profile and drift tables under `output`, this run's
metrics, plots and HTML report, and a status tag on each version (ok / drift: <columns> / degraded: <metrics>).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from pyspark.sql import SparkSession

from common.cli import run_cli
from common.datasets import read_spark_table
from common.errors import UserInputError
from common.job import EAGER_SPARK, EntryPoint
from common.params import param
from common.registry_lookup import require_model
from common.settings import Settings
from common.tracking import tracked_run
from monitoring.baselines import version_baselines
from monitoring.column_plan import plan_columns
from monitoring.computation import Setup, compute, pending_windows
from monitoring.inputs import (
    MODEL_NAME,
    VERSION,
    join_labels,
    names_in_table,
    read_inference,
    window_counts,
    with_class_probabilities,
)
from monitoring.label_metrics import MetricSpec
from monitoring.recording import VersionStatus, record_run, version_statuses
from monitoring.retrain import Retraining, check_request, retrain_if_due, training_record
from monitoring.tables import read_state, write_tables
from monitoring.thresholds import parse_thresholds
from monitoring.windows import BATCH_COLUMN, DEFAULT_TIME_COLUMN, parse_window

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorParams:
    model_name: str = param(help="the registered model")
    input: str = param(help="the inference table: Parquet written by score_batch, score_stream or serve's log")
    output: str = param(help="folder of the monitoring tables (profile_metrics, drift_metrics, monitor_state)")
    window: str = param("1d", help="1d, 6h, 15m, ... (tumbling, aligned to the epoch) or batch (micro-batches)")
    time_column: str = param(DEFAULT_TIME_COLUMN, help="the scoring time column windows are cut by")
    labels: str | None = param(None, help="a table of ids and the true label (under the training label's name)")
    ids: tuple[str, ...] = param((), help="comma-separated column(s) identifying a row in both tables")
    slice: str | None = param(None, help="a column whose every value is monitored as well as the whole table")
    thresholds: str | None = param(None, help='JSON overrides, e.g. {"psi": 0.25, "ks_pvalue": 0.01}')
    min_rows: int = param(100, help="windows (or labelled rows) with fewer rows are marked insufficient")
    violation_windows: int = param(2, help="retraining is due when this many ...")
    evaluation_windows: int = param(5, help="... of the last this many judged windows drifted or degraded")
    retrain: bool = param(False, help="when retraining is due, retrain the version and promote it if it wins the gate")
    retrain_data: str | None = param(None, help="the recent labelled rows to retrain on (Parquet/CSV path)")


@dataclass(frozen=True)
class MonitorResult:
    run_id: str
    model_name: str
    computed_windows: list[int]
    unchanged_windows: list[int]
    versions: dict[str, VersionStatus]
    column_problems: dict[str, str]
    rows_without_window: int
    retraining: Retraining | None = None

    def summary(self) -> str:
        lines = [
            f"{self.model_name}: {len(self.computed_windows)} window(s) computed, {len(self.unchanged_windows)} "
            f"unchanged (run {self.run_id})"
        ]
        lines += [f"  v{v}: {s.describe()}" for v, s in self.versions.items()]
        lines += [f"  column {name}: {problem}" for name, problem in sorted(self.column_problems.items())]
        if self.rows_without_window:
            lines.append(f"  {self.rows_without_window} row(s) without a time or version were left out")
        if self.retraining:
            lines.append(f"  {self.retraining.describe()}")
        return "\n".join(lines)


def run(spark: SparkSession, settings: Settings, params: MonitorParams) -> MonitorResult:
    """Every refusal (parameters, tables, versions, baselines) comes before the run records anything."""
    p = params
    thresholds = parse_thresholds(p.thresholds)
    spec = parse_window(p.window)
    if p.min_rows < 1 or not 1 <= p.violation_windows <= p.evaluation_windows:
        raise UserInputError("min_rows must be 1 or more, and 1 <= violation_windows <= evaluation_windows")
    check_request(p.retrain, p.retrain_data, p.labels)
    client = mlflow.MlflowClient()
    require_model(client, p.model_name)
    df = read_inference(spark, p.input, p.model_name, spec, p.time_column, p.slice)
    versions = sorted(r[0] for r in df.select(VERSION).distinct().collect() if r[0] is not None)
    if not versions:
        raw = read_spark_table(spark, p.input)
        found = names_in_table(raw) if MODEL_NAME in raw.columns else []
        raise UserInputError(
            f"inference table {p.input} has no scored rows of model {p.model_name!r}"
            + (f"; models in it: {', '.join(found)}" if found else "")
        )
    if p.retrain:  # the newest version is the one retraining would replay: refuse before anything is recorded
        training_record(client, p.model_name, versions[-1])
    baselines = version_baselines(spark, client, p.model_name, versions)
    newest = baselines[versions[-1]]
    df = with_class_probabilities(df, newest.profile)
    if p.labels:
        if not newest.label:
            raise UserInputError(f"{p.model_name}'s baseline names no label column to join the labels on")
        df = join_labels(spark, df, p.labels, list(p.ids), newest.label)
    counts, unplaced = window_counts(df, list(p.ids), newest.label if p.labels else None)
    ignored = {MODEL_NAME, VERSION, p.time_column, BATCH_COLUMN, *p.ids, *([p.slice] if p.slice else [])}
    columns, columns_seen = plan_columns(df, baselines, ignored, labels_joined=bool(p.labels))
    state = read_state(spark, p.output, p.model_name)
    other = sorted({row["granularity"] for row in state} - {spec.text})
    if other:  # windows of two lengths would share keys (a day starts on an hour) and replace each other's rows
        raise UserInputError(
            f"{p.output} holds windows of {', '.join(other)} for model {p.model_name!r}, not {spec.text}; "
            "give windows of another length an output of their own"
        )
    pending = pending_windows(counts, state, p.slice)
    _logger.info("%d window(s) to compute, %d unchanged", len(pending), len({c.window for c in counts}) - len(pending))

    with tracked_run(settings, run_name=f"monitor-{p.model_name}") as active:
        setup = Setup(
            p.model_name,
            spec,
            p.time_column,
            p.slice,
            baselines,
            columns,
            columns_seen,
            MetricSpec.of(newest.profile) if p.labels and newest.label else None,
            thresholds,
            p.min_rows,
            active.info.run_id,
        )
        computed = compute(spark, df, p.output, setup, pending, counts, state)
        write_tables(spark, p.output, computed.rows)
        statuses = version_statuses(state, computed, spec, p.violation_windows, p.evaluation_windows)
        record_run(spark, client, p, setup, computed, statuses)
        retraining = retrain_if_due(spark, settings, client, p, statuses, df, baselines, active) if p.retrain else None
        return MonitorResult(
            active.info.run_id,
            p.model_name,
            pending,
            sorted({c.window for c in counts} - set(pending)),
            statuses,
            {name: problem for name, problem in columns_seen.items() if problem},
            unplaced,
            retraining,
        )


ENTRY_POINT = EntryPoint(MonitorParams, run, spark=EAGER_SPARK)
main = ENTRY_POINT.main


if __name__ == "__main__":
    run_cli(main)
