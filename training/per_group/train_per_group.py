"""Entry point `train_per_group`: one scikit-learn model per group, trained in parallel with Spark, packaged as one
routing model, tracked as one run (a table of per-group metrics, summary metrics), optionally registered.

    python -m training.per_group.train_per_group --data iot_devices --label failure --group device_id \\
        --model-name devices
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import mlflow
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from common.cli import run_cli
from common.columns import col
from common.datasets import load_spark_table
from common.errors import UserInputError
from common.job import EAGER_SPARK, EntryPoint
from common.params import logged_params, param
from common.provenance import record_training
from common.settings import Settings
from common.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from training.column_kinds import TIME_HINT, decimals_as_doubles, spark_time_columns
from training.per_group.executor import TRAINED, GroupTrainingPlan
from training.per_group.package import log_per_group_model
from training.per_group.steps import (
    check_columns,
    log_held_out,
    log_routing_profile,
    require_trained,
    resolve_task,
    split_results,
    summary_metrics,
    train_groups,
)
from training.registration import registered_version
from training.sklearn.estimators import ESTIMATORS, build_estimator
from training.tasks import (
    TASK_CHOICES,
    check_test_fraction,
)

_logger = logging.getLogger(__name__)

FALLBACKS = ("none", "global")
MIN_ROWS_FLOOR = 5  # below this a held-out split says nothing about a group's model
_SHOWN_SKIPS = 10
_BLOBS = ["model", "trusted_types", "held_out"]  # per-group result columns that are bytes, not figures


@dataclass(frozen=True)
class PerGroupResult:
    run_id: str
    model_uri: str
    task: str
    groups: pd.DataFrame  # the per-group table that was logged: one row per group, trained or skipped
    metrics: dict[str, float]  # the summary metrics that were logged
    model_name: str | None
    model_version: str | None

    @property
    def trained(self) -> list[str]:
        return self.groups.loc[self.groups["status"] == TRAINED, "group"].tolist()

    @property
    def skipped(self) -> dict[str, str]:
        rows = self.groups[self.groups["status"] != TRAINED]
        return dict(zip(rows["group"], rows["reason"], strict=True))

    def summary(self) -> str:
        """What the CLI prints when the job ends."""
        main = next(k.removesuffix("_mean") for k in self.metrics if k.endswith("_mean"))
        lines = [
            f"run_id={self.run_id} task={self.task} groups trained={len(self.trained)} skipped={len(self.skipped)}",
            f"{main} over groups: mean={self.metrics[main + '_mean']:.4f} median={self.metrics[main + '_median']:.4f}"
            f" min={self.metrics[main + '_min']:.4f}",
        ]
        lines += [f"skipped {group}: {reason}" for group, reason in list(self.skipped.items())[:_SHOWN_SKIPS]]
        if len(self.skipped) > _SHOWN_SKIPS:
            lines.append(f"... and {len(self.skipped) - _SHOWN_SKIPS} more skipped (see per_group_metrics.json)")
        if self.model_version:
            lines.append(f"registered {self.model_name} version {self.model_version}")
        return "\n".join(lines)


@dataclass(frozen=True)
class TrainPerGroupParams:
    data: str = param("iot_devices", help="Parquet/CSV path or a bundled data set name")
    label: str = param("failure")
    group: str = param("device_id", help="the column whose values each get a model")
    estimator: str = param("random_forest", choices=sorted(ESTIMATORS))
    task: str = param("auto", choices=TASK_CHOICES)
    hyperparams: dict = param({}, help='JSON object, e.g. {"n_estimators": 200}')
    min_rows: int = param(50, help="fewer labeled rows: the group is skipped")
    fallback: str = param("none", choices=FALLBACKS, help="global: a model of all rows scores new groups")
    seed: int = param(42)
    test_fraction: float = param(0.2)
    exclude: tuple[str, ...] = param((), help="comma-separated columns that are not features (ids)")
    model_name: str | None = param(None, help="register the model under this name")


def run(spark: SparkSession, settings: Settings, params: TrainPerGroupParams) -> PerGroupResult:
    """Parameters and columns are checked before any Spark job; groups are trained before a run exists, so a job
    that trains nothing leaves no run and no model version behind."""
    p = params
    check_test_fraction(p.test_fraction)
    if p.min_rows < MIN_ROWS_FLOOR:
        raise UserInputError(f"min_rows must be at least {MIN_ROWS_FLOOR}, got {p.min_rows}")
    if p.fallback not in FALLBACKS:
        raise UserInputError(f"fallback must be one of {', '.join(FALLBACKS)}, got {p.fallback!r}")
    if p.estimator not in ESTIMATORS:
        raise UserInputError(f"unknown estimator {p.estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    df, source = load_spark_table(spark, p.data)
    df, left_out = _leave_out_time_columns(df, p)
    features = check_columns(df, p.label, p.group, p.exclude)

    df = decimals_as_doubles(df.select(*[col(c) for c in (p.group, *features, p.label)]), [*features, p.label])
    rows_missing_group = df.filter(col(p.group).isNull()).count()
    resolved_task = resolve_task(df, p.label, p.task)
    build_estimator(p.estimator, resolved_task, p.hyperparams, p.seed)  # refuses bad hyperparameters here, once
    plan = GroupTrainingPlan(
        p.group, p.label, resolved_task, p.estimator, p.seed, p.test_fraction, p.min_rows, (), dict(p.hyperparams)
    )
    results = train_groups(df.filter(col(p.group).isNotNull()), plan, with_fallback=p.fallback == "global")
    table, fallback_row = split_results(results, p.group)
    require_trained(table, fallback_row, p.fallback, rows_missing_group)

    with tracked_run(settings, run_name=f"train_per_group-{p.estimator}") as active:
        if rows_missing_group:
            _logger.warning("left out %d row(s) whose group %r is missing", rows_missing_group, p.group)
        dropped = {"dropped_columns": "; ".join(f"{c} ({why})" for c, why in left_out.items())} if left_out else {}
        log_new_params({**logged_params(p), "resolved_task": resolved_task, "features": ",".join(features), **dropped})
        log_dataset(spark_dataset(df, p.data, source, p.label), context="training")
        record_training(p, spark)
        metrics = summary_metrics(table, resolved_task, rows_missing_group)
        if fallback_row is not None:
            metrics.update({f"fallback_{k}": v for k, v in json.loads(fallback_row["metrics"]).items()})
        mlflow.log_metrics(metrics)
        groups = table.drop(columns=_BLOBS)
        mlflow.log_table(groups, artifact_file="per_group_metrics.json")
        held_out = log_held_out(table["held_out"], to_arrow_schema(df.schema))
        info = log_per_group_model(df, p.group, features, table, fallback_row, p.model_name)
        log_routing_profile(df, p.label, resolved_task, held_out, info.model_uri)
        tags = {"task": resolved_task, "group_column": p.group, "fallback": p.fallback}
        version = registered_version(info, p.model_name, tags)
        _logger.info("run %s: %s", active.info.run_id, metrics)
        return PerGroupResult(active.info.run_id, info.model_uri, resolved_task, groups, metrics, p.model_name, version)


def _leave_out_time_columns(df, p: TrainPerGroupParams):
    """Time columns are not features (training.column_kinds): left out with a warning, unless the user named them
    (excluded, or as the group or label, which check_columns judges)."""
    named = {p.group, p.label, *p.exclude}
    left_out = {c: why for c, why in spark_time_columns(df).items() if c not in named}
    for column, why in left_out.items():
        _logger.warning("left out column %r: %s, not a feature; %s", column, why, TIME_HINT)
    return df.drop(*left_out) if left_out else df, left_out


ENTRY_POINT = EntryPoint(TrainPerGroupParams, run, spark=EAGER_SPARK)  # parameters (JSON too) checked before Spark
main = ENTRY_POINT.main


if __name__ == "__main__":
    run_cli(main)
