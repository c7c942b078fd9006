"""What the tuning jobs share: the data and splits, the metric trials are judged by, and trials as child runs.

Trials are logged by the driver, never by the workers that run them: parallel writers on the default SQLite store
fail with "database is locked", and workers on a cluster may not reach a driver-local store at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from common.datasets import DEFAULT_LABEL, Table, load_table
from common.errors import UserInputError
from common.params import logged_params, param
from common.tracking import log_dataset, log_new_params
from training.evaluation import GREATER_IS_BETTER
from training.sklearn.estimators import ESTIMATOR_STEP, build_pipeline
from training.sklearn.fit import fit_and_log, split_train_test
from training.tasks import CLASSIFICATION, TASK_CHOICES, LabeledData, TrainResult, check_test_fraction, split_features
from training.tuning.search_space import SKLEARN_SPACES, Space, check_sklearn_space, parse_space

_logger = logging.getLogger(__name__)

DEFAULT_METRIC = {CLASSIFICATION: "log_loss", "regression": "rmse"}
# Metric name -> scikit-learn scorer, by task. Scorers named "neg_*" report the metric negated.
_SCORERS = {
    CLASSIFICATION: {"accuracy": "accuracy", "log_loss": "neg_log_loss", "roc_auc": "roc_auc"},
    "regression": {"rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error", "r2": "r2"},
}
TRIAL_TAG = "lifecycle.trial"


@dataclass(frozen=True)
class TuningMetric:
    name: str
    scorer: str
    greater_is_better: bool
    judged_by: str = "cv"  # how a trial's value was measured: cross-validation, or a validation split (MLlib)

    @property
    def negated(self) -> bool:
        return self.scorer.startswith("neg_")

    def loss(self, value: float) -> float:
        """What the tuner minimises: the metric itself, or its negative when greater is better."""
        return -value if self.greater_is_better else value


@dataclass
class TuningData:
    table: Table
    labeled: LabeledData
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    pipeline: Any  # the unfitted pipeline with the estimator's defaults; trials set the searched parameters
    metric: TuningMetric
    request: SearchParams  # what the user asked for
    space: Space  # the search space, checked against the estimator

    def objective(self, data: Any, space, seed: int):
        """The cross-validated trial for `space`; `data` is a Broadcast of (X_train, y_train), or the pair itself."""
        from training.tuning.executor import CrossValidatedObjective

        m = self.metric
        folds = self.request.cv_folds
        return CrossValidatedObjective(
            self.pipeline, data, space, m.scorer, m.negated, m.greater_is_better, folds, seed
        )

    def log_setup(self, extra: dict[str, Any]) -> None:
        """Log the request, what was resolved from it, and the job's own settings (`extra`) into the active run,
        plus the training data as the run's dataset."""
        resolved = {
            "resolved_task": self.labeled.task,
            "metric": self.metric.name,
            "n_rows_train": len(self.X_train),
            "n_rows_test": len(self.X_test),
        }
        log_new_params(logged_params(self.request) | resolved | extra)
        log_dataset(self.table.to_mlflow_dataset(targets=self.request.label), context="training")


@dataclass(frozen=True)
class SearchParams:
    """The parameters both tuning jobs take; each job's parameter dataclass adds its own."""

    data: str = param("breast_cancer", help="Parquet/CSV path or a bundled data set name")
    label: str = param(DEFAULT_LABEL)
    estimator: str = param("random_forest")
    task: str = param("auto", choices=TASK_CHOICES)
    # JSON text; from Python the dict itself is taken too.
    space: str = param("", help="JSON search space; empty: the estimator's default space")
    metric: str | None = param(None, help="default: log_loss / rmse by task")
    cv_folds: int = param(3)
    seed: int = param(42)
    test_fraction: float = param(0.2)
    exclude: tuple[str, ...] = param((), help="comma-separated columns that are not features (ids)")
    model_name: str | None = param(None, help="register the refit best model")


def prepare(request: SearchParams) -> TuningData:
    """Load, split and check everything a tuning job needs before any Spark job or run starts: the data, the
    estimator, the metric, and the search space (`space`, or the estimator's default) against the estimator."""
    r = request
    check_test_fraction(r.test_fraction)
    if r.cv_folds < 2:
        raise UserInputError(f"cv_folds must be at least 2, got {r.cv_folds}")
    table = load_table(r.data)
    labeled = split_features(table.frame, r.label, r.task, list(r.exclude))
    pipeline = build_pipeline(r.estimator, labeled, {}, r.seed)  # refuses an unknown estimator, listing the known
    if r.estimator not in SKLEARN_SPACES:  # the boosting ensemble: its members are tuned by name
        raise UserInputError(f"estimator {r.estimator!r} is not tuned; tune one of: {', '.join(SKLEARN_SPACES)}")
    search = parse_space(r.space, SKLEARN_SPACES[r.estimator])
    check_sklearn_space(search, pipeline[ESTIMATOR_STEP])
    X_train, X_test, y_train, y_test = split_train_test(labeled, r.test_fraction, r.seed)
    chosen = resolve_metric(labeled.task, r.metric, y_train.nunique())
    if labeled.task == CLASSIFICATION and y_train.value_counts().min() < r.cv_folds:
        raise UserInputError(
            f"cv_folds={r.cv_folds} needs every class of {r.label!r} at least {r.cv_folds} times in the training "
            f"split; the rarest has {y_train.value_counts().min()}"
        )
    return TuningData(table, labeled, X_train, X_test, y_train, y_test, pipeline, chosen, request, search)


def resolve_metric(task: str, metric: str | None, n_classes: int = 2) -> TuningMetric:
    name = metric or DEFAULT_METRIC[task]
    scorers = _SCORERS[task]
    if name not in scorers:
        raise UserInputError(f"metric {name!r} does not judge {task}; choose one of: {', '.join(scorers)}")
    scorer = scorers[name]
    if scorer == "roc_auc" and n_classes > 2:
        scorer = "roc_auc_ovr"
    return TuningMetric(name, scorer, GREATER_IS_BETTER[name])


def refit_best(active, prepared: TuningData, best: dict, model_name: str | None) -> TrainResult:
    """Refit the best point on the whole training split and log it like `train_sklearn` (held-out metrics, plots,
    model with signature), registered when `model_name` is given."""
    p = prepared
    pipeline = p.pipeline.set_params(**{f"{ESTIMATOR_STEP}__{k}": v for k, v in best.items()})
    metrics, info, version, warning = fit_and_log(
        pipeline, p.labeled.task, p.X_train, p.X_test, p.y_train, p.y_test, model_name
    )
    _logger.info("run %s: best %s, held-out %s", active.info.run_id, best, metrics)
    return TrainResult(active.info.run_id, info.model_uri, p.labeled.task, metrics, model_name, version, best, warning)


class TrialRuns:
    """Logs trials as nested child runs of the active (tuning) run, each with its own start and end time."""

    def __init__(self, metric: TuningMetric, name_prefix: str = "trial"):
        self._prefix = name_prefix
        self._client = mlflow.MlflowClient()
        parent = mlflow.active_run()
        self._parent_id = parent.info.run_id
        self._experiment_id = parent.info.experiment_id
        self._metric = metric
        self.logged: dict[int, str] = {}  # trial number -> run id

    def log(
        self,
        number: int,
        params: dict[str, Any],
        metrics: dict[str, float],
        status: str = "FINISHED",
        start_ms: int | None = None,
        end_ms: int | None = None,
        error: str | None = None,
    ) -> str:
        now = int(time.time() * 1000)
        name = f"{self._prefix}-{number:03d}"
        tags = {MLFLOW_PARENT_RUN_ID: self._parent_id, MLFLOW_RUN_NAME: name, TRIAL_TAG: str(number)}
        if error:
            tags["lifecycle.trial_error"] = error[:5000]
        run = self._client.create_run(self._experiment_id, start_time=start_ms or now, tags=tags)
        self._client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), end_ms or now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        self._client.set_terminated(run.info.run_id, status=status, end_time=end_ms or now)
        self.logged[number] = run.info.run_id
        return run.info.run_id

    def metrics_of(self, result: dict) -> dict[str, float]:
        """A trial's result as metrics named after the tuning metric: loss, cv_<metric>, its spread, fit time."""
        measured = f"{self._metric.judged_by}_{self._metric.name}"
        names = {"loss": "loss", "metric": measured, "metric_std": f"{measured}_std"}
        metrics = {new: result[old] for old, new in names.items() if result.get(old) is not None}
        if "fit_seconds" in result:
            metrics["fit_seconds"] = result["fit_seconds"]
        return metrics


def finished_status(ok: bool) -> str:
    return RunStatus.to_string(RunStatus.FINISHED if ok else RunStatus.FAILED)
