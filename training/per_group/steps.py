"""The steps of per-group training below its entry point: check the columns, train every group in one Spark job,
sum the groups up, and log each trained group's held-out rows for the promotion gate."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace

import mlflow
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common import spark_compat
from common.columns import col, with_aliases
from common.errors import UserInputError
from training.held_out import log_test_split
from training.per_group.executor import FALLBACK_FLAG, RESULT_SCHEMA, TRAINED, GroupTrainingPlan, group_trainer
from training.reference_profile import log_training_profile
from training.tasks import CLASSIFICATION, MAX_CLASSES_FOR_INTEGER_LABEL, REGRESSION, infer_task

MAIN_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "r2"}  # both improve upwards: the minimum is the worst group
_GROUP_TYPES = (T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.BooleanType)
_FEATURE_TYPES = (T.NumericType, T.BooleanType, T.StringType)


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
    partitions = spark_compat.default_parallelism(spark) * 4
    routed, renamed = with_aliases(routed)  # applyInPandas cannot look up a column with a dot in its name
    group = {name: alias for alias, name in renamed}.get(plan.group, plan.group)
    trained = (
        routed.repartition(partitions, F.col(FALLBACK_FLAG), col(group))
        .groupBy(F.col(FALLBACK_FLAG), col(group))
        .applyInPandas(group_trainer(replace(plan, renamed=renamed)), RESULT_SCHEMA)
    )
    return trained.toPandas()


def log_held_out(held_out: pd.Series, schema: pa.Schema) -> pa.Table:
    """Every trained group's held-out rows (group column, features, label) as the run's held-out split, as the
    other training jobs log theirs, so the promotion gate can score the model again with no data of the user's.
    Written in the training table's types: a group's pandas rows may have widened an integer column with gaps."""
    tables = [
        pa.Table.from_pandas(pd.read_parquet(io.BytesIO(blob)), schema=schema, preserve_index=False)
        for blob in held_out.dropna()
    ]
    split = pa.concat_tables(tables)
    log_test_split(split)
    return split


def log_routing_profile(df: DataFrame, label: str, task: str, held_out: pa.Table, model_uri: str) -> None:
    """The routing model's reference profile, one over all groups: `monitor` judges the registered version as one
    model, and the rows it scores carry the group column as a feature (per-group profiles of small groups would
    also be too few rows to judge). Training rows: the rows with a group less the held-out ones (a multiset
    difference in Spark; skipped groups' rows stay, a fallback learns from them); predictions: the routing model's
    own over the held-out split."""
    held = df.sparkSession.createDataFrame(held_out).select(*[col(c) for c in df.columns])
    training_rows = df.filter(col(df.columns[0]).isNotNull()).exceptAll(held)
    predictions = mlflow.pyfunc.load_model(model_uri).predict(held_out.to_pandas().drop(columns=[label]))
    log_training_profile(training_rows, label, predictions, task=task)


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


def split_results(results: pd.DataFrame, group: str) -> tuple[pd.DataFrame, pd.Series | None]:
    """The per-group table (metrics as columns, sorted by group) and the fallback's row."""
    fallback = results[results["fallback"]]
    table = results[~results["fallback"]].drop(columns=["fallback"]).rename(columns={"group_key": "group"})
    metrics = pd.DataFrame([json.loads(m) if m else {} for m in table["metrics"]], index=table.index)
    table = pd.concat([table.drop(columns=["metrics"]), metrics], axis=1)
    table = table.sort_values("group", ignore_index=True)
    return table, (fallback.iloc[0] if len(fallback) else None)


def require_trained(table: pd.DataFrame, fallback_row, fallback: str, rows_missing_group: int) -> None:
    if table.empty:
        detail = f" ({rows_missing_group} row(s) have no group value)" if rows_missing_group else ""
        raise UserInputError(f"the training data has no rows with a group{detail}")
    if not (table["status"] == TRAINED).any():
        reasons = "; ".join(f"{g}: {r}" for g, r in zip(table["group"][:5], table["reason"][:5], strict=True))
        raise UserInputError(f"no group could be trained ({len(table)} skipped): {reasons}")
    if fallback == "global" and (fallback_row is None or fallback_row["status"] != TRAINED):
        reason = fallback_row["reason"] if fallback_row is not None else "no rows"
        raise UserInputError(f"the fallback model (all groups) could not be trained: {reason}")


def resolve_task(df: DataFrame, label: str, task: str) -> str:
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
