"""k-fold cross-validation of an MLlib pipeline over a grid of tree parameters, with every grid point logged.

XGBoost's estimator (xgboost.spark) takes part like MLlib's trees: its grid is over `n_estimators` and `max_depth`.
Its fits run one at a time: each already trains with one barrier task per core of the session, so a second fit at
the same moment would only wait for the cores (a barrier stage starts when all of its tasks can)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from pyspark.ml.feature import IndexToString
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

from common.tracking import log_new_params
from training.mllib.estimator_classes import FOLD, stratified_folds
from training.tasks import CLASSIFICATION

GRID_ESTIMATORS = ("random_forest", "gbt", "xgboost")  # the estimators whose trees a grid can tune


def _grid_params(estimator: str, stage):
    """(number of trees, depth) as the stage names them."""
    if estimator == "xgboost":
        return stage.n_estimators, stage.max_depth
    return (stage.numTrees if estimator == "random_forest" else stage.maxIter), stage.maxDepth


def _class_names(pipeline) -> list[str] | None:
    """A string label's classes, from the pipeline's last stage, which turns predicted indexes back into them."""
    last = pipeline.getStages()[-1]
    return list(last.getLabels()) if isinstance(last, IndexToString) else None


def cross_validate(pipeline, estimator_stage, evaluator, train, spec, folds, grid_num_trees, grid_max_depth):
    """k-fold CV over the grid (the estimator's own values when no grid is given); logs every grid point's mean
    metric as `evaluation/cv_results.csv`, the best values as `best_*` params and the best mean as `cv_<metric>`.
    An XGBoost classifier's folds are dealt per class (training.mllib.estimator_classes)."""
    builder = ParamGridBuilder()
    trees, depth = _grid_params(spec.estimator, estimator_stage)
    if grid_num_trees:
        builder = builder.addGrid(trees, list(grid_num_trees))
    if grid_max_depth:
        builder = builder.addGrid(depth, list(grid_max_depth))
    grid = builder.build()
    xgboost = spec.estimator == "xgboost"
    cv = CrossValidator(
        estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, numFolds=folds, seed=spec.seed,
        parallelism=1 if xgboost else 2,
    )  # fmt: skip
    if xgboost and spec.task == CLASSIFICATION:
        train = stratified_folds(train, folds, spec.seed, spec.label, _class_names(pipeline)).cache()
        cv.setFoldCol(FOLD)
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
