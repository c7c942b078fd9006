"""An MLlib training job's steps below the entry point: load and check the table, plan the features, index the
label, split, build the pipeline (`prepare_mllib`); log a fitted pipeline with its held-out evaluation
(`log_fitted_mllib`). Shared by `train_mllib` and `tune_hyperopt --library mllib`."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.datasets import load_spark_table
from common.errors import UserInputError
from training import plots
from training.baseline import QUALITY_TAG
from training.column_kinds import decimals_as_doubles
from training.held_out import log_test_split
from training.mllib.column_screen import refuse_empty_number_columns
from training.mllib.estimator_classes import check_classes
from training.mllib.evaluation import evaluator_for, feature_importances, held_out_metrics, plot_sample
from training.mllib.features import TitleAgeImputer
from training.mllib.model import log_spark_model
from training.mllib.pipeline import (
    ESTIMATORS,
    LABEL_INDEX,
    PREDICTION,
    PREDICTION_INDEX,
    FeaturePlan,
    MllibSpec,
    build_pipeline,
    plan_features,
)
from training.mllib.quality import log_baseline
from training.mllib_onnx.publish import export_version
from training.reference_profile import log_training_profile
from training.registration import classes_tag, registered_version
from training.tasks import CLASSIFICATION, MAX_CLASSES_FOR_INTEGER_LABEL, REGRESSION, check_test_fraction

_logger = logging.getLogger(__name__)


@dataclass
class MllibJob:
    """A table loaded and checked, its features planned, label indexed, split, and the unfitted pipeline."""

    df: DataFrame  # the whole table, cached
    source: str
    spec: MllibSpec
    plan: FeaturePlan
    labeled: DataFrame  # rows with a label, LABEL_INDEX added for classification
    label_classes: list[str] | None
    n_classes: int
    pipeline: Pipeline
    estimator_stage: object
    train: DataFrame
    test: DataFrame
    evaluator: object
    rows_missing_label: int
    quality: str | None = None  # the verdict against the trivial baseline, once logged

    @property
    def binary(self) -> bool:
        return self.spec.task == CLASSIFICATION and self.n_classes == 2


def prepare_mllib(spark: SparkSession, data: str, spec: MllibSpec, test_fraction: float) -> MllibJob:
    """Everything before fitting, checked before any run exists (shared by train_mllib and tune_hyperopt's MLlib
    path). `spec.task` may be "auto": it is resolved here from the label."""
    check_test_fraction(test_fraction)
    if spec.estimator not in ESTIMATORS:
        raise UserInputError(f"unknown estimator {spec.estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    label = spec.label
    df, source = load_spark_table(spark, data)
    plan = plan_features(df, spec)
    df = decimals_as_doubles(df, [*plan.numeric, label]).cache()
    rows_total = df.count()
    if rows_total == 0:
        raise UserInputError(f"data {data!r} has no rows")
    refuse_empty_number_columns(df, [*plan.numeric, *plan.boolean])
    labeled = df.filter(F.col(label).isNotNull())
    rows_missing_label = rows_total - labeled.count()
    if rows_missing_label == rows_total:
        raise UserInputError(f"label column {label!r} has no values")
    if rows_missing_label:
        _logger.warning("left out %d row(s) whose label %r is missing", rows_missing_label, label)
    spec = replace(spec, task=_resolve_task(labeled, label, spec.task))
    labeled, label_classes, n_classes = _index_label(labeled, spec)
    pipeline = build_pipeline(plan, spec, label_classes, _max_categories(labeled, plan, spec))
    labeled = in_a_fixed_layout(labeled)
    train, test = labeled.randomSplit([1.0 - test_fraction, test_fraction], seed=spec.seed)
    estimator_stage = pipeline.getStages()[-2 if label_classes is not None else -1]
    binary = spec.task == CLASSIFICATION and n_classes == 2
    check_classes(spec, train, label_classes, n_classes)  # gbt: two; xgboost: every class among the training rows
    evaluator = evaluator_for(spec.task, label, binary, PREDICTION_INDEX if label_classes is not None else PREDICTION)
    return MllibJob(
        df, source, spec, plan, labeled, label_classes, n_classes, pipeline, estimator_stage, train, test, evaluator,
        rows_missing_label,
    )  # fmt: skip


def in_a_fixed_layout(df: DataFrame) -> DataFrame:
    """The rows hash-partitioned by their content into `spark.sql.shuffle.partitions` partitions and sorted within
    each, cached. `randomSplit` and cross-validation folds draw by position within a partition, and a forest's
    bagging by partition index: all three repeat only if every partition holds the same rows in the same order.
    Read straight from files, that depends on how many files there are, how the file system lists them and the
    cluster's default parallelism; after this it depends on the data and the (recorded) shuffle partitions alone."""
    columns = [col(f.name) for f in df.schema.fields if not isinstance(f.dataType, T.MapType)]  # maps: no order
    # An explicit count: adaptive execution may merge a repartition by columns alone, by the shuffle's byte sizes.
    partitions = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return df.repartition(partitions, *columns).sortWithinPartitions(*columns).cache()


def log_fitted_mllib(job: MllibJob, model: PipelineModel, model_name: str | None):
    """Held-out metrics, plots, the test split and the model (registered when `model_name` is given), logged into
    the active run."""
    spec = job.spec
    predictions = model.transform(job.test).cache()
    mlflow.log_metrics({"n_rows_train": job.train.count(), "n_rows_test": predictions.count()})
    metrics = held_out_metrics(predictions, spec.task, spec.label, job.binary)
    mlflow.log_metrics(metrics)
    job.quality = log_baseline(job, metrics)
    _log_evaluation_artifacts(predictions, model, spec, job.label_classes, job.n_classes)
    log_test_split(job.test.select(*job.plan.raw_features, spec.label))
    _log_profile(job, predictions)  # training rows; held-out answers as scored (P(second class) for two)
    features = job.labeled.select(*job.plan.raw_features)
    prediction_type = job.labeled.schema[spec.label].dataType if job.label_classes is None else T.StringType()
    info = log_spark_model(model, features, PREDICTION, prediction_type, registered_model_name=model_name)
    tags = {"task": spec.task, QUALITY_TAG: job.quality}
    if spec.task == CLASSIFICATION:
        tags |= classes_tag(job.label_classes if job.label_classes is not None else range(job.n_classes))
    version = registered_version(info, model_name, tags)
    predictions.unpersist()
    if version is not None:
        _export_onnx(job, model, model_name, version)
    return metrics, info, version


def _log_profile(job: MllibJob, predictions: DataFrame) -> None:
    spec, answers = job.spec, [F.col(PREDICTION).alias("prediction")]
    if job.binary and "probability" in predictions.columns:
        answers.append(vector_to_array("probability")[1].alias("probability"))
    classes = (job.label_classes or list(range(job.n_classes))) if spec.task == CLASSIFICATION else None
    rows = job.train.select(*job.plan.raw_features, spec.label)
    log_training_profile(rows, spec.label, predictions.select(*answers), task=spec.task, classes=classes)


def _export_onnx(job: MllibJob, model: PipelineModel, model_name: str, version: str) -> None:
    """Right away, while the fitted pipeline and the held-out rows are at hand. The version's `onnx` tag says how
    it went; nothing here fails the training (the Spark model is what the run produced)."""
    try:
        export_version(job.df.sparkSession, model_name, version, model=model, held_out=job.test)
    except Exception:
        _logger.warning("ONNX export of %s version %s did not run", model_name, version, exc_info=True)


def _resolve_task(df: DataFrame, label: str, task: str) -> str:
    if task != "auto":
        return task
    data_type = df.schema[label].dataType
    if isinstance(data_type, T.StringType | T.BooleanType):
        return CLASSIFICATION
    distinct = df.select(label).distinct().limit(MAX_CLASSES_FOR_INTEGER_LABEL + 1).collect()
    values = [r[0] for r in distinct]
    integral = all(float(v).is_integer() for v in values)
    return CLASSIFICATION if integral and len(values) <= MAX_CLASSES_FOR_INTEGER_LABEL else REGRESSION


def _index_label(df: DataFrame, spec: MllibSpec) -> tuple[DataFrame, list[str] | None, int]:
    """Add LABEL_INDEX (0..k-1) for a classifier. String labels are indexed and their names returned, so the
    pipeline's last stage turns predictions back into names; numeric labels must already be 0..k-1."""
    label = spec.label
    data_type = df.schema[label].dataType
    if spec.task == REGRESSION:
        if not isinstance(data_type, T.NumericType):
            raise UserInputError(
                f"label column {label!r} has type {data_type.simpleString()}; regression needs numbers"
            )
        return df.withColumn(label, F.col(label).cast("double")), None, 0
    if isinstance(data_type, T.StringType | T.BooleanType):
        indexer = StringIndexer(inputCol=label, outputCol=LABEL_INDEX, stringOrderType="alphabetAsc").fit(
            df.withColumn(label, F.col(label).cast("string"))
        )
        classes = list(indexer.labels)
        indexed = indexer.transform(df.withColumn(label, F.col(label).cast("string")))
    else:
        values = sorted(r[0] for r in df.select(label).distinct().collect())
        if values != list(range(len(values))):
            raise UserInputError(
                f"numeric classification labels must be 0..k-1; {label!r} has {values[:10]}; "
                "cast the label to string to use its values as class names"
            )
        classes = None
        indexed = df.withColumn(LABEL_INDEX, F.col(label).cast("double"))
    n_classes = len(classes) if classes is not None else len(values)
    if n_classes < 2:
        only = classes[0] if classes else values[0]
        raise UserInputError(f"label column {label!r} has a single class ({only!r}); a classifier needs two")
    return indexed, classes, n_classes


def _max_categories(df: DataFrame, plan, spec: MllibSpec) -> int:
    """The most distinct values of any string feature (the title included), to size the trees' bins."""
    if not plan.categorical:
        return 0
    columns = [F.countDistinct(c).alias(c) for c in plan.categorical if c in df.columns]
    if spec.title_from:
        title = TitleAgeImputer(nameCol=spec.title_from).title()
        columns.append(F.countDistinct(title).alias("title"))
    return max(df.agg(*columns).first())


def _log_evaluation_artifacts(predictions, model: PipelineModel, spec, label_classes, n_classes) -> None:
    sample = plot_sample(predictions, spec.task, spec.label, spec.seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if spec.task == CLASSIFICATION:
            proba = np.vstack(sample["probability"].to_numpy()) if len(sample) else np.zeros((0, n_classes))
            plots.evaluation_pngs(out, sample["y"], sample["prediction"], proba, list(range(n_classes)))
        else:
            plots.evaluation_pngs(out, sample["y"], sample["prediction"])
        estimator_model = model.stages[-2 if label_classes is not None else -1]
        importances = feature_importances(predictions, estimator_model)
        if importances is not None:
            plots.feature_importances_png(importances, out / "feature_importances.png")
            importances.to_csv(out / "feature_importances.csv", index=False)
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
