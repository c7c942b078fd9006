"""Entry point `tune_hyperopt`: Hyperopt over a search space, trials in parallel on Spark, each trial a child run.

python -m training.tuning.tune_hyperopt --data breast_cancer --estimator random_forest --max-evals 32 --parallelism 2

scikit-learn estimators run one trial per Spark task (`SparkTrials`); MLlib pipelines (`--library mllib`) need the
driver's SparkContext to train, so their trials run one after another (`Trials`), each trained by Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from common import spark_compat
from common.cli import run_cli
from common.errors import UserInputError
from common.job import EAGER_SPARK, EntryPoint
from common.params import param
from common.provenance import record_training
from common.settings import Settings
from common.tracking import tracked_run
from training.tasks import TrainResult
from training.tuning.hyperopt_search import SEQUENTIAL_TRIALS, SPARK_TRIALS, check_budget, minimize, why_not_exact
from training.tuning.mllib_search import tune_mllib
from training.tuning.optuna_search import OPTUNA_STUDY, minimize_with_optuna
from training.tuning.search_space import describe
from training.tuning.steps import SearchParams, prepare, refit_best

BACKENDS = ("hyperopt", "optuna")
LIBRARIES = ("sklearn", "mllib")


@dataclass(frozen=True)
class TuneHyperoptParams(SearchParams):
    library: str = param("sklearn", choices=LIBRARIES)
    backend: str = param("hyperopt", choices=BACKENDS, help="optuna: mlflow.pyspark.optuna")
    max_evals: int = param(16)
    parallelism: int = param(2)
    timeout: float = param(0.0, help="seconds after which no new trial starts; 0 means no limit")


def run(spark: SparkSession, settings: Settings, params: TuneHyperoptParams) -> TrainResult:
    """Everything is validated before a trial or a run starts."""
    p = params
    check_choices(p)
    check_connection(spark, p)
    if p.library == "mllib":
        return tune_mllib(spark, settings, p, p.max_evals, p.parallelism, p.timeout)
    return _tune_sklearn(spark, settings, p)


def check_choices(p: TuneHyperoptParams) -> None:
    """What can be refused from the parameters alone: before Spark starts when called from `main`."""
    if p.backend not in BACKENDS:
        raise UserInputError(f"backend must be one of {', '.join(BACKENDS)}, got {p.backend!r}")
    if p.library not in LIBRARIES:
        raise UserInputError(f"library must be one of {', '.join(LIBRARIES)}, got {p.library!r}")
    if p.library == "mllib" and p.backend != "hyperopt":
        raise UserInputError(f"backend={p.backend!r} tunes scikit-learn estimators; MLlib pipelines use Hyperopt")
    check_budget(p.max_evals, p.parallelism, p.timeout)


def check_connection(spark, p: TuneHyperoptParams) -> None:
    """Hyperopt's SparkTrials drives its trials through the SparkContext, which a Spark Connect client does not
    have: refused before any run starts, naming what does run through Connect."""
    if p.library == "sklearn" and p.backend == "hyperopt" and p.parallelism > 1:
        spark_compat.refuse_under_connect(
            spark,
            "Hyperopt's SparkTrials (it runs trials through the SparkContext)",
            "use --backend optuna (trials as Spark tasks through Connect) or --parallelism 1 (trials one by one)",
        )


def _tune_sklearn(spark: SparkSession, settings: Settings, p: TuneHyperoptParams) -> TrainResult:
    """SparkTrials (or Optuna's MlflowSparkStudy), one trial per Spark task; the best point refit and logged."""
    from hyperopt import SparkTrials, Trials

    prepared = prepare(p)
    search = prepared.space
    with tracked_run(settings, run_name=f"tune_hyperopt-{p.estimator}") as active:
        prepared.log_setup({"space": describe(search), "trials_backend": _trials_backend(p.backend, p.parallelism)})
        record_training(p, spark, not_exact=why_not_exact(p.parallelism, p.timeout))
        data_ref = spark_compat.broadcast(spark, (prepared.X_train, prepared.y_train))
        objective = prepared.objective(data_ref, search, p.seed)
        try:
            if p.backend == "optuna":
                best = minimize_with_optuna(objective, search, p.max_evals, p.parallelism, p.timeout, p.seed)
            else:
                # One at a time gains nothing from Spark and would pay its per-trial cost (README: when parallel
                # trials pay off), so parallelism=1 runs Hyperopt's own sequential Trials on the driver.
                trials = (
                    SparkTrials(parallelism=p.parallelism, timeout=p.timeout or None, spark_session=spark)
                    if p.parallelism > 1
                    else Trials()
                )
                best = minimize(objective, search, prepared.metric, trials, p.max_evals, p.seed, p.timeout)
        finally:
            data_ref.destroy()
        return refit_best(active, prepared, best, p.model_name)


def _trials_backend(backend: str, parallelism: int) -> str:
    if backend == "optuna":
        return OPTUNA_STUDY
    return SPARK_TRIALS if parallelism > 1 else SEQUENTIAL_TRIALS


ENTRY_POINT = EntryPoint(
    TuneHyperoptParams, run, spark=EAGER_SPARK, check=check_choices, app_name=lambda p: f"tune_hyperopt-{p.estimator}"
)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
