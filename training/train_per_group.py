"""Entry point `train_per_group`: one scikit-learn model per group, trained in parallel with Spark, packaged as one
routing model, tracked as one run (a table of per-group metrics, summary metrics), optionally registered.

    python -m training.train_per_group --data iot_devices --label failure --group device_id --model-name devices
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from common.cli import run_cli
from common.columns import col
from common.datasets import load_spark_table
from common.errors import UserInputError
from common.job import run_spark_job
from common.params import logged_params, param, parse_params
from common.settings import Settings
from common.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from training._per_group_executor import FALLBACK_FLAG, RESULT_SCHEMA, TRAINED, GroupTrainingPlan, group_trainer
from training.estimators import ESTIMATORS, build_estimator
from training.per_group_package import log_per_group_model
from training.registration import registered_version
from training.tasks import (
    CLASSIFICATION,
    MAX_CLASSES_FOR_INTEGER_LABEL,
    REGRESSION,
    TASK_CHOICES,
    check_test_fraction,
    infer_task,
)

_logger = logging.getLogger(__name__)

FALLBACKS = ("none", "global")
MIN_ROWS_FLOOR = 5  # below this a held-out split says nothing about a group's model
# The summary metric per task; both improve upwards, so the minimum is the worst group.
MAIN_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "r2"}
_GROUP_TYPES = (T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.BooleanType)
_FEATURE_TYPES = (T.NumericType, T.BooleanType, T.StringType)
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
    features = check_columns(df, p.label, p.group, p.exclude)

    df = df.select(*[col(c) for c in (p.group, *features, p.label)])
    rows_missing_group = df.filter(col(p.group).isNull()).count()
    resolved_task = _resolve_task(df, p.label, p.task)
    build_estimator(p.estimator, resolved_task, p.hyperparams, p.seed)  # refuses bad hyperparameters here, once
    plan = GroupTrainingPlan(
        p.group, p.label, resolved_task, p.estimator, p.seed, p.test_fraction, p.min_rows, (), dict(p.hyperparams)
    )
    results = train_groups(df.filter(col(p.group).isNotNull()), plan, with_fallback=p.fallback == "global")
    table, fallback_row = _split_results(results, p.group)
    _require_trained(table, fallback_row, p.fallback, rows_missing_group)

    with tracked_run(settings, run_name=f"train_per_group-{p.estimator}") as active:
        if rows_missing_group:
            _logger.warning("left out %d row(s) whose group %r is missing", rows_missing_group, p.group)
        log_new_params({**logged_params(p), "resolved_task": resolved_task, "features": ",".join(features)})
        log_dataset(spark_dataset(df, p.data, source, p.label), context="training")
        metrics = summary_metrics(table, resolved_task, rows_missing_group)
        if fallback_row is not None:
            metrics.update({f"fallback_{k}": v for k, v in json.loads(fallback_row["metrics"]).items()})
        mlflow.log_metrics(metrics)
        groups = table.drop(columns=_BLOBS)
        mlflow.log_table(groups, artifact_file="per_group_metrics.json")
        log_held_out(table["held_out"], to_arrow_schema(df.schema))
        info = log_per_group_model(df, p.group, features, table, fallback_row, p.model_name)
        tags = {"task": resolved_task, "group_column": p.group, "fallback": p.fallback}
        version = registered_version(info, p.model_name, tags)
        _logger.info("run %s: %s", active.info.run_id, metrics)
        return PerGroupResult(active.info.run_id, info.model_uri, resolved_task, groups, metrics, p.model_name, version)


def check_columns(df: DataFrame, label: str, group: str, exclude: Sequence[str]) -> list[str]:
    """The feature columns; every problem with the named columns is refused here, from the schema alone."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    listed = ", ".join(fields)
    for role, name in (("group", group), ("label", label)):
        if name not in fields:
            raise UserInputError(f"{role} column {name!r} not found; columns are: {listed}")
    if group == label:
        raise UserInputError(f"the group column and the label are both {group!r}; they must differ")
    if not isinstance(fields[group], _GROUP_TYPES):
        raise UserInputError(
            f"group column {group!r} has type {fields[group].simpleString()}; use a string, integer or boolean column"
        )
    if not isinstance(fields[label], _FEATURE_TYPES):
        raise UserInputError(
            f"label column {label!r} has type {fields[label].simpleString()}; use a numeric, boolean or string column"
        )
    missing = [c for c in exclude if c not in fields]
    if missing:
        raise UserInputError(f"excluded column(s) not found: {', '.join(missing)}; columns are: {listed}")
    features = [c for c in fields if c not in {group, label, *exclude}]
    if not features:
        raise UserInputError(f"no feature columns left besides the group {group!r} and the label {label!r}")
    unsupported = [f"{c} ({fields[c].simpleString()})" for c in features if not isinstance(fields[c], _FEATURE_TYPES)]
    if unsupported:
        raise UserInputError(
            f"feature column(s) of unsupported type: {', '.join(unsupported)}; supported: numeric, boolean, string "
            "(exclude them with exclude=...)"
        )
    return features


def train_groups(df: DataFrame, plan: GroupTrainingPlan, with_fallback: bool) -> pd.DataFrame:
    """One applyInPandas job: every group (and, with a fallback, one more group holding all rows) trained on an
    executor. Returns the result rows (models as skops bytes) on the driver."""
    routed = df.withColumn(FALLBACK_FLAG, F.lit(False))
    if with_fallback:
        # A copy of every row under its own key, so the fallback trains in the same job, beside the groups.
        everything = df.withColumn(plan.group, F.lit(None).cast(df.schema[plan.group].dataType))
        routed = routed.unionByName(everything.withColumn(FALLBACK_FLAG, F.lit(True)))
    spark = df.sparkSession
    # An explicit partition count: adaptive execution would otherwise coalesce a small input's shuffle into one
    # task, training every group on one core. Several tasks per core even out groups of different sizes.
    partitions = spark.sparkContext.defaultParallelism * 4
    trained = (
        routed.repartition(partitions, FALLBACK_FLAG, plan.group)
        .groupBy(F.col(FALLBACK_FLAG), col(plan.group))
        .applyInPandas(group_trainer(plan), RESULT_SCHEMA)
    )
    return trained.toPandas()


def log_held_out(held_out: pd.Series, schema: pa.Schema) -> None:
    """Every trained group's held-out rows (group column, features, label) as `data/test.parquet`, as the other
    training jobs log theirs, so the promotion gate can score the model again with no data of the user's.
    Written in the training table's types: a group's pandas rows may have widened an integer column with gaps."""
    tables = [
        pa.Table.from_pandas(pd.read_parquet(io.BytesIO(blob)), schema=schema, preserve_index=False)
        for blob in held_out.dropna()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(pa.concat_tables(tables), Path(tmp) / "test.parquet")
        mlflow.log_artifacts(tmp, artifact_path="data")


def summary_metrics(table: pd.DataFrame, task: str, rows_missing_group: int) -> dict[str, float]:
    """Counts, and the main metric's mean / median / min over trained groups (min: the worst group)."""
    trained = table[table["status"] == TRAINED]
    main = MAIN_METRIC[task]
    values = trained[main].astype("float64")
    return {
        "groups_total": len(table),
        "groups_trained": len(trained),
        "groups_skipped": len(table) - len(trained),
        "n_rows": int(table["n_rows"].sum()),
        "n_rows_trained_groups": int(trained["n_rows"].sum()),
        "n_rows_missing_label": int(table["n_rows_missing_label"].sum()),
        "n_rows_missing_group": rows_missing_group,
        f"{main}_mean": float(values.mean()),
        f"{main}_median": float(values.median()),
        f"{main}_min": float(values.min()),
    }


def _split_results(results: pd.DataFrame, group: str) -> tuple[pd.DataFrame, pd.Series | None]:
    """The per-group table (metrics as columns, sorted by group) and the fallback's row."""
    fallback = results[results["fallback"]]
    table = results[~results["fallback"]].drop(columns=["fallback"]).rename(columns={"group_key": "group"})
    metrics = pd.DataFrame([json.loads(m) if m else {} for m in table["metrics"]], index=table.index)
    table = pd.concat([table.drop(columns=["metrics"]), metrics], axis=1)
    table = table.sort_values("group", ignore_index=True)
    return table, (fallback.iloc[0] if len(fallback) else None)


def _require_trained(table: pd.DataFrame, fallback_row, fallback: str, rows_missing_group: int) -> None:
    if table.empty:
        detail = f" ({rows_missing_group} row(s) have no group value)" if rows_missing_group else ""
        raise UserInputError(f"the training data has no rows with a group{detail}")
    if not (table["status"] == TRAINED).any():
        reasons = "; ".join(f"{g}: {r}" for g, r in zip(table["group"][:5], table["reason"][:5], strict=True))
        raise UserInputError(f"no group could be trained ({len(table)} skipped): {reasons}")
    if fallback == "global" and (fallback_row is None or fallback_row["status"] != TRAINED):
        reason = fallback_row["reason"] if fallback_row is not None else "no rows"
        raise UserInputError(f"the fallback model (all groups) could not be trained: {reason}")


def _resolve_task(df: DataFrame, label: str, task: str) -> str:
    """'auto' decides as train_sklearn does, from at most 21 distinct label values (one small Spark job)."""
    if task != "auto":
        if task not in (CLASSIFICATION, REGRESSION):
            raise UserInputError(f"unknown task {task!r}; choose auto, {CLASSIFICATION} or {REGRESSION}")
        return task
    rows = df.select(col(label)).where(col(label).isNotNull()).distinct().limit(MAX_CLASSES_FOR_INTEGER_LABEL + 1)
    values = pd.Series([r[0] for r in rows.collect()])
    if values.empty:
        raise UserInputError(f"label column {label!r} has no values")
    return infer_task(values)


def main(argv: Sequence[str] | None = None) -> PerGroupResult:
    params = parse_params(TrainPerGroupParams, argv)  # a JSON mistake is reported before Spark starts
    return run_spark_job(run, params, app_name="train_per_group")


if __name__ == "__main__":
    run_cli(main)
