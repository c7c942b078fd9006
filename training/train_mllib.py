"""Entry point `train_mllib`: fit a Spark MLlib pipeline on a table (optionally cross-validated), track everything,
optionally register it.

    python -m training.train_mllib --data titanic --label survived --title-from name --cv-folds 3
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lifecycle.cli import comma_list, optional_str, run_cli, whole_number
from lifecycle.datasets import load_spark_table
from lifecycle.errors import UserInputError
from lifecycle.settings import Settings
from lifecycle.spark import build_spark
from lifecycle.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from training import plots
from training.mllib_evaluation import evaluator_for, feature_importances, held_out_metrics, plot_sample
from training.mllib_features import TitleAgeImputer
from training.mllib_pipeline import (
    ESTIMATORS,
    LABEL_INDEX,
    PREDICTION,
    PREDICTION_INDEX,
    FeaturePlan,
    MllibSpec,
    build_pipeline,
    plan_features,
)
from training.spark_model import log_spark_model
from training.tasks import (
    CLASSIFICATION,
    MAX_CLASSES_FOR_INTEGER_LABEL,
    REGRESSION,
    TrainResult,
    check_test_fraction,
)

_logger = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train_mllib", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="titanic", help="Parquet/CSV path or a bundled data set name")
    parser.add_argument("--label", default="survived")
    parser.add_argument("--task", default="auto", choices=["auto", CLASSIFICATION, REGRESSION])
    parser.add_argument("--estimator", default="random_forest", choices=sorted(ESTIMATORS))
    parser.add_argument("--num-trees", type=whole_number, default=50, help="trees (random forest) or iterations (GBT)")
    parser.add_argument("--max-depth", type=whole_number, default=5)
    parser.add_argument("--cv-folds", type=whole_number, default=0, help="0: no cross-validation; else >= 2")
    parser.add_argument("--grid-num-trees", default="", help="comma-separated values to cross-validate")
    parser.add_argument("--grid-max-depth", default="", help="comma-separated values to cross-validate")
    parser.add_argument("--seed", type=whole_number, default=42)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--exclude", default="", help="comma-separated columns that are not features (ids)")
    parser.add_argument("--title-from", type=optional_str, default=None, help="name column: add the title feature")
    parser.add_argument("--age-column", default="age", help="age column imputed by title (with --title-from)")
    parser.add_argument("--model-name", type=optional_str, default=None, help="register the model under this name")
    return parser.parse_args(argv)


def parse_grid(name: str, text: str) -> list[int]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    try:
        return [whole_number(v) for v in values]
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise UserInputError(f"{name} must be comma-separated whole numbers, got {text!r}") from exc


def run(
    spark: SparkSession,
    settings: Settings,
    data: str,
    label: str,
    task: str = "auto",
    estimator: str = "random_forest",
    num_trees: int = 50,
    max_depth: int = 5,
    cv_folds: int = 0,
    grid_num_trees: Sequence[int] = (),
    grid_max_depth: Sequence[int] = (),
    seed: int = 42,
    test_fraction: float = 0.2,
    exclude: Sequence[str] = (),
    title_from: str | None = None,
    age_column: str = "age",
    model_name: str | None = None,
) -> TrainResult:
    """Validate everything first, so bad input fails before a run or a model version exists."""
    check_test_fraction(test_fraction)
    if cv_folds == 1 or cv_folds < 0:
        raise UserInputError(f"cv_folds must be 0 (no cross-validation) or at least 2, got {cv_folds}")
    if (grid_num_trees or grid_max_depth) and cv_folds < 2:
        raise UserInputError("a grid (grid_num_trees / grid_max_depth) needs cv_folds >= 2")
    if (grid_num_trees or grid_max_depth) and estimator not in ("random_forest", "gbt"):
        raise UserInputError(f"grid_num_trees / grid_max_depth tune trees; estimator {estimator!r} has none")

    job = prepare_mllib(
        spark, data, label, task, estimator, num_trees, max_depth, seed, test_fraction, exclude, title_from, age_column
    )
    spec = job.spec

    with tracked_run(settings, run_name=f"train_mllib-{estimator}") as active:
        log_new_params(
            {
                "data": data,
                "label": label,
                "task": task,
                "resolved_task": spec.task,
                "estimator": estimator,
                "num_trees": num_trees,
                "max_depth": max_depth,
                "cv_folds": cv_folds,
                "grid_num_trees": ",".join(map(str, grid_num_trees)),
                "grid_max_depth": ",".join(map(str, grid_max_depth)),
                "seed": seed,
                "test_fraction": test_fraction,
                "exclude": ",".join(exclude),
                "title_from": title_from or "",
                "features": ",".join(job.plan.raw_features),
                "n_rows_missing_label": job.rows_missing_label,
            }
        )
        log_dataset(spark_dataset(job.df, data, job.source, label), context="training")

        if cv_folds >= 2:
            model, best_params = _cross_validate(
                job.pipeline, job.estimator_stage, job.evaluator, job.train, spec, cv_folds, grid_num_trees,
                grid_max_depth,
            )  # fmt: skip
        else:
            model, best_params = job.pipeline.fit(job.train), {}
        metrics, info, version = log_fitted_mllib(job, model, model_name)
        job.df.unpersist()
        _logger.info("run %s: %s", active.info.run_id, metrics)
        return TrainResult(active.info.run_id, info.model_uri, spec.task, metrics, model_name, version, best_params)


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

    @property
    def binary(self) -> bool:
        return self.spec.task == CLASSIFICATION and self.n_classes == 2


def prepare_mllib(
    spark, data, label, task, estimator, num_trees, max_depth, seed, test_fraction, exclude, title_from, age_column
) -> MllibJob:
    """Everything before fitting, checked before any run exists (shared by train_mllib and tune_hyperopt)."""
    if estimator not in ESTIMATORS:
        raise UserInputError(f"unknown estimator {estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    df, source = load_spark_table(spark, data)
    spec = MllibSpec(label, task, estimator, num_trees, max_depth, seed, tuple(exclude), title_from, age_column)
    plan = plan_features(df, spec)
    df = df.cache()
    rows_total = df.count()
    if rows_total == 0:
        raise UserInputError(f"data {data!r} has no rows")
    labeled = df.filter(F.col(label).isNotNull())
    rows_missing_label = rows_total - labeled.count()
    if rows_missing_label == rows_total:
        raise UserInputError(f"label column {label!r} has no values")
    if rows_missing_label:
        _logger.warning("left out %d row(s) whose label %r is missing", rows_missing_label, label)
    spec = replace(spec, task=_resolve_task(labeled, label, task))
    labeled, label_classes, n_classes = _index_label(labeled, spec)
    pipeline = build_pipeline(plan, spec, label_classes, _max_categories(labeled, plan, spec))
    train, test = labeled.randomSplit([1.0 - test_fraction, test_fraction], seed=seed)
    estimator_stage = pipeline.getStages()[-2 if label_classes is not None else -1]
    binary = spec.task == CLASSIFICATION and n_classes == 2
    if spec.estimator == "gbt" and spec.task == CLASSIFICATION and not binary:
        raise UserInputError(f"gbt classifies two classes; {label!r} has {n_classes}: use random_forest")
    evaluator = evaluator_for(spec.task, label, binary, PREDICTION_INDEX if label_classes is not None else PREDICTION)
    return MllibJob(
        df, source, spec, plan, labeled, label_classes, n_classes, pipeline, estimator_stage, train, test, evaluator,
        rows_missing_label,
    )  # fmt: skip


def log_fitted_mllib(job: MllibJob, model: PipelineModel, model_name: str | None):
    """Held-out metrics, plots, the test split and the model (registered when `model_name` is given), logged into
    the active run."""
    spec = job.spec
    predictions = model.transform(job.test).cache()
    mlflow.log_metrics({"n_rows_train": job.train.count(), "n_rows_test": predictions.count()})
    metrics = held_out_metrics(predictions, spec.task, spec.label, job.binary)
    mlflow.log_metrics(metrics)
    _log_evaluation_artifacts(predictions, model, spec, job.label_classes, job.n_classes)
    _log_test_split(job.test, job.plan.raw_features, spec.label)
    features = job.labeled.select(*job.plan.raw_features)
    prediction_type = job.labeled.schema[spec.label].dataType if job.label_classes is None else T.StringType()
    info = log_spark_model(model, features, PREDICTION, prediction_type, registered_model_name=model_name)
    version = str(info.registered_model_version) if model_name else None
    if version:
        mlflow.MlflowClient().set_model_version_tag(model_name, version, "task", spec.task)
    predictions.unpersist()
    return metrics, info, version


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


def _cross_validate(pipeline, estimator_stage, evaluator, train, spec, folds, grid_num_trees, grid_max_depth):
    """k-fold CV over the grid (the estimator's own values when no grid is given); logs every grid point's mean
    metric as `evaluation/cv_results.csv`, the best values as `best_*` params and the best mean as `cv_<metric>`."""
    builder = ParamGridBuilder()
    if grid_num_trees:
        param = estimator_stage.numTrees if spec.estimator == "random_forest" else estimator_stage.maxIter
        builder = builder.addGrid(param, list(grid_num_trees))
    if grid_max_depth:
        builder = builder.addGrid(estimator_stage.maxDepth, list(grid_max_depth))
    grid = builder.build()
    cv = CrossValidator(
        estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, numFolds=folds, seed=spec.seed, parallelism=2
    )
    cv_model = cv.fit(train)
    rows = [
        {p.name: v for p, v in point.items()} | {"mean_" + evaluator.getMetricName(): m}
        for point, m in zip(grid, cv_model.avgMetrics, strict=True)
    ]
    best_index = int(np.argmax(cv_model.avgMetrics) if evaluator.isLargerBetter() else np.argmin(cv_model.avgMetrics))
    best = {p.name: v for p, v in grid[best_index].items()}
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(rows).to_csv(Path(tmp) / "cv_results.csv", index=False)
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
    log_new_params({f"best_{k}": v for k, v in best.items()})
    mlflow.log_metric(f"cv_{evaluator.getMetricName()}", cv_model.avgMetrics[best_index])
    return cv_model.bestModel, best


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


def _log_test_split(test: DataFrame, features: list[str], label: str) -> None:
    """The held-out rows as `data/test.parquet` (features and label, as the data had them), so the model can be
    evaluated again later, e.g. by the promotion gate."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "test.parquet"
        test.select(*features, label).write.parquet(str(folder))
        mlflow.log_artifacts(str(folder.parent), artifact_path="data")


def main(argv: Sequence[str] | None = None) -> TrainResult:
    args = parse_args(argv)
    settings = Settings.from_env()
    spark = build_spark(settings, app_name="train_mllib")
    result = run(
        spark,
        settings,
        data=args.data,
        label=args.label,
        task=args.task,
        estimator=args.estimator,
        num_trees=args.num_trees,
        max_depth=args.max_depth,
        cv_folds=args.cv_folds,
        grid_num_trees=parse_grid("grid_num_trees", args.grid_num_trees),
        grid_max_depth=parse_grid("grid_max_depth", args.grid_max_depth),
        seed=args.seed,
        test_fraction=args.test_fraction,
        exclude=comma_list(args.exclude),
        title_from=args.title_from,
        age_column=args.age_column,
        model_name=args.model_name,
    )
    print(result.summary())
    return result


if __name__ == "__main__":
    run_cli(main)
