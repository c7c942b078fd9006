"""Entry point `tune_joblib`: scikit-learn's GridSearchCV / RandomizedSearchCV with its fits spread over Spark.

python -m training.tuning.tune_joblib --data breast_cancer --estimator random_forest --search grid --n-jobs 2

joblib-spark runs each (candidate, fold) fit as a Spark task. The full `cv_results_` is logged as a table, the best
candidates as child runs, and the best estimator, refit on the whole training split, like `train_sklearn`.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
from pyspark.sql import SparkSession

from common import spark_compat
from common.cli import run_cli
from common.errors import UserInputError
from common.job import EAGER_SPARK, EntryPoint
from common.params import param
from common.provenance import record_training
from common.settings import Settings
from common.tracking import log_new_params, tracked_run
from training.sklearn.estimators import ESTIMATOR_STEP, ESTIMATORS
from training.tasks import CLASSIFICATION, TrainResult
from training.tuning.search_space import describe, to_distributions, to_grid
from training.tuning.steps import SearchParams, TrialRuns, prepare, refit_best

SEARCHES = ("grid", "random")


@dataclass(frozen=True)
class TuneJoblibParams(SearchParams):
    estimator: str = param("random_forest", choices=sorted(ESTIMATORS))
    search: str = param("grid", choices=SEARCHES)
    grid_points: int = param(3, help="values per range in a grid search")
    n_iter: int = param(10, help="candidates a random search tries")
    n_jobs: int = param(2, help="fits run at once on Spark")
    top_k: int = param(5, help="best candidates logged as child runs")


def run(spark: SparkSession, settings: Settings, params: TuneJoblibParams) -> TrainResult:
    """Search, log, refit; everything is validated before a Spark job or a run starts."""
    p = params
    spark_compat.refuse_under_connect(
        spark,
        "joblib-spark (it runs the search's fits through the SparkContext)",
        "use tune_hyperopt --backend optuna through Connect, or tune_joblib in classic mode (SPARK_REMOTE unset)",
    )
    if p.search not in SEARCHES:
        raise UserInputError(f"search must be one of {', '.join(SEARCHES)}, got {p.search!r}")
    minimums = {
        "n_jobs": (p.n_jobs, 1),
        "n_iter": (p.n_iter, 1),
        "top_k": (p.top_k, 1),
        "grid_points": (p.grid_points, 2),
    }
    for name, (value, least) in minimums.items():
        if value < least:
            raise UserInputError(f"{name} must be at least {least}, got {value}")
    prepared = prepare(p)
    searched = prepared.space
    cv = search_cv(prepared, searched, p.search, p.grid_points, p.n_iter, p.cv_folds, p.seed)

    with tracked_run(settings, run_name=f"tune_joblib-{p.estimator}") as active:
        prepared.log_setup({"space": describe(searched), "n_candidates": _candidate_count(cv)})
        # Every candidate is fitted on the same seeded folds, so n_jobs changes only when each fit runs.
        record_training(p, spark)
        fit_on_spark(cv, prepared.X_train, prepared.y_train, p.n_jobs)
        results = cv_results_table(cv, prepared.metric.negated)
        mlflow.log_table(results, artifact_file="tuning/cv_results.json")
        _log_best_candidates(results, prepared.metric, p.top_k)
        best = {k.removeprefix(f"{ESTIMATOR_STEP}__"): v for k, v in cv.best_params_.items()}
        log_new_params({f"best.{k}": v for k, v in best.items()})
        best_value = -cv.best_score_ if prepared.metric.negated else cv.best_score_
        mlflow.log_metrics({f"best_cv_{prepared.metric.name}": best_value, "n_candidates": len(results)})

        # refit=False above: the best candidate is refit once, here, by the code train_sklearn logs models with.
        return refit_best(active, prepared, best, p.model_name)


def search_cv(prepared, searched, search: str, grid_points: int, n_iter: int, folds: int, seed: int):
    from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, StratifiedKFold

    splitter = StratifiedKFold if prepared.labeled.task == CLASSIFICATION else KFold
    common = dict(scoring=prepared.metric.scorer, cv=splitter(folds, shuffle=True, random_state=seed), refit=False)
    prefixed = lambda space: {f"{ESTIMATOR_STEP}__{k}": v for k, v in space.items()}  # noqa: E731
    if search == "grid":
        return GridSearchCV(prepared.pipeline, prefixed(to_grid(searched, grid_points)), **common)
    return RandomizedSearchCV(
        prepared.pipeline, prefixed(to_distributions(searched)), n_iter=n_iter, random_state=seed, **common
    )


def fit_on_spark(cv, X, y, n_jobs: int) -> None:
    """Every (candidate, fold) fit becomes a Spark task; `n_jobs` of them run at once."""
    import joblib
    from joblibspark import register_spark

    register_spark()
    with joblib.parallel_backend("spark", n_jobs=n_jobs):
        cv.fit(X, y)


def cv_results_table(cv, negated: bool) -> pd.DataFrame:
    """`cv_results_` as a table: one row per candidate, parameters as plain columns, scores as the metric itself."""
    table = pd.DataFrame(cv.cv_results_)
    table = table.drop(columns=["params"]).rename(columns=lambda c: c.replace(f"param_{ESTIMATOR_STEP}__", "param_"))
    score_columns = [c for c in table.columns if c.endswith("_test_score") and not c.startswith("rank")]
    if negated:  # "neg_log_loss" reports -log_loss; a table of log losses reads better
        table[score_columns] = -table[score_columns]
    # Parameter columns hold mixed objects (None beside ints); strings keep the JSON table loadable everywhere.
    for column in [c for c in table.columns if c.startswith("param_")]:
        table[column] = table[column].astype(str)
    return table.sort_values("rank_test_score", ignore_index=True)


def _log_best_candidates(results: pd.DataFrame, metric, top_k: int) -> None:
    runs = TrialRuns(metric, name_prefix="rank")
    for position, (_, row) in enumerate(results.head(top_k).iterrows(), start=1):
        params = {c.removeprefix("param_"): row[c] for c in results.columns if c.startswith("param_")}
        metrics = {
            f"cv_{metric.name}": row["mean_test_score"],
            f"cv_{metric.name}_std": row["std_test_score"],
            "rank": row["rank_test_score"],
            "fit_seconds": row["mean_fit_time"],
        }
        runs.log(position, params, metrics)


def _candidate_count(cv) -> int:
    from sklearn.model_selection import ParameterGrid

    return len(ParameterGrid(cv.param_grid)) if hasattr(cv, "param_grid") else cv.n_iter


ENTRY_POINT = EntryPoint(TuneJoblibParams, run, spark=EAGER_SPARK, app_name=lambda p: f"tune_joblib-{p.estimator}")
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
