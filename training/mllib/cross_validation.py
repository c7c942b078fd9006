"""k-fold cross-validation of an MLlib pipeline over a grid of tree parameters, with every grid point logged."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

from common.tracking import log_new_params


def cross_validate(pipeline, estimator_stage, evaluator, train, spec, folds, grid_num_trees, grid_max_depth):
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
