"""Tracking setup: point MLflow at the configured store and adopt the run `mlflow run` already started."""

from __future__ import annotations

import logging
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow

from common.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # a git checkout when the code is one
# How every run's job reaches Spark: "classic" (a SparkContext in the job's process) or "connect" (SPARK_REMOTE).
CONNECTION_TAG = "lifecycle.spark.connection"
logger = logging.getLogger(__name__)


def job_settings() -> Settings:
    """The settings a job starts with, read from the environment, and MLflow pointed at their store: the one place
    a job sets MLflow's global tracking state (a job's `run` takes the settings and leaves globals alone)."""
    settings = Settings.from_env()
    configure_tracking(settings)
    return settings


def configure_tracking(settings: Settings) -> None:
    mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)


@contextmanager
def tracked_run(
    settings: Settings, run_name: str, tags: dict[str, str] | None = None, resume_run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Yield the run to log into.

    Inside another of our runs (the `main` job calling `train_sklearn`), a nested child run. Under `mlflow run`
    (MLFLOW_RUN_ID set), that run. Otherwise `resume_run_id` when given (a restarted stream), else a new run in the
    configured experiment. Every run is tagged with its CONNECTION_TAG.
    """
    tags = {CONNECTION_TAG: getattr(settings, "spark_connection", "classic"), **(tags or {})}
    if mlflow.active_run() is not None:
        run_cm = mlflow.start_run(run_name=run_name, nested=True, tags=tags)
    elif mlflow.environment_variables.MLFLOW_RUN_ID.get():
        run_cm = mlflow.start_run(tags=tags)  # adopts MLFLOW_RUN_ID; its experiment is already set
    elif resume_run_id:
        run_cm = mlflow.start_run(run_id=resume_run_id, tags=tags)
    else:
        mlflow.set_experiment(settings.experiment_name)
        run_cm = mlflow.start_run(run_name=run_name, tags=tags)
    with run_cm as run:
        _tag_git_commit(run)
        _mark_experiment_kind(run.info.experiment_id)
        url = training_runs_url(mlflow.get_tracking_uri(), run.info.experiment_id)
        if url and run.data.tags.get("mlflow.parentRunId") is None:
            logger.info("the experiment's runs in the MLflow UI: %s", url)
        yield run


def log_new_params(params: dict[str, object]) -> None:
    """Log the parameters the active run does not have yet.

    Under `mlflow run` the run already holds every -P parameter exactly as the user typed it ('production',
    '42.0', ''); MLflow refuses to change a logged value, and the user's own spelling is the right record.
    Values a job derives (the resolved task, the promoted version) are logged under names of their own.
    """
    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params if run else {}
    mlflow.log_params({k: v for k, v in params.items() if k not in existing})


# How a store reports the loser of two concurrent first inserts of one row (PostgreSQL, MySQL, SQLite).
_DUPLICATE_ROW_MARKERS = ("UniqueViolation", "IntegrityError", "duplicate key", "UNIQUE constraint failed")


def is_duplicate_row(exc: Exception) -> bool:
    """Whether the store refused a write because another writer inserted the same row an instant before."""
    return any(marker in str(exc) for marker in _DUPLICATE_ROW_MARKERS)


def log_dataset(dataset, context: str) -> None:
    """`mlflow.log_input` for a dataset whose schema is computed here; MLflow's hint that integer columns cannot
    hold missing values concerns model signatures, not ids and labels in a logged dataset.

    The store records a dataset once per experiment: two jobs logging the same data into one experiment at the same
    moment both find it missing and both insert it, and the second insert fails on the unique key (seen with two
    tuning jobs on a shared server). Its transaction is rolled back; sent again, the call finds the dataset the
    other job stored and links it to this run."""
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*integer column.*")
                mlflow.log_input(dataset, context=context)
            return
        except mlflow.exceptions.MlflowException as exc:
            if attempt == 2 or not is_duplicate_row(exc):
                raise


def spark_dataset(df, data: str, source: str, label: str | None, rows: int | None = None):
    """A Spark table as an MLflow dataset: a path is logged as its path; a bundled set by its name, with a digest
    of its content.

    `rows`: the table's row count, when the job has it already. MLflow's own profile counts the rows again through
    Python workers (a pass over the data of up to 5 s, a whole job's worth on a small input)."""
    if source == data:
        dataset = mlflow.data.from_spark(df, path=data, targets=label)
    else:
        dataset = mlflow.data.from_spark(df, name=data, targets=label)
    if rows is None:
        return dataset
    from mlflow.data.spark_dataset import SparkDataset

    class CountedSparkDataset(SparkDataset):
        @property
        def profile(self):
            return {"approx_count": rows}

    return CountedSparkDataset(df=df, source=dataset.source, targets=label, name=dataset.name, digest=dataset.digest)


# MLflow records what an experiment is for; without it, MLflow 3's UI may open an experiment on its GenAI pages
# (traces, token usage) rather than on the training runs a Spark ML user looks for. MLflow 3.17's UI itself goes by
# a per-browser GenAI / Model training switch (GenAI until the user picks), so the link below picks it.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_EXPERIMENT_KIND = "custom_model_development"


def training_runs_url(tracking_uri: str, experiment_id: str) -> str | None:
    """The MLflow UI's page of an experiment's training runs, for a tracking server (a file store has no UI)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def _mark_experiment_kind(experiment_id: str) -> None:
    """Record the experiment as one of model training, unless it already says what it is (the user's word wins).
    Also for experiments `mlflow run --experiment-name` created before the job started. Two jobs starting in a new
    experiment at the same moment both find the tag missing and both insert it: the second insert is refused on the
    unique key (seen with two tuning jobs on a shared server), and the tag the other job wrote is the same."""
    client = mlflow.MlflowClient()
    if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
        try:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT_KIND)
        except mlflow.exceptions.MlflowException as exc:
            if not is_duplicate_row(exc):
                raise


def _tag_git_commit(run: mlflow.ActiveRun) -> None:
    """MLflow tags the commit under `mlflow run`; direct `python -m` runs get the same tag here."""
    if "mlflow.source.git.commit" in run.data.tags:
        return
    commit = git_commit()
    if commit:
        mlflow.set_tag("mlflow.source.git.commit", commit)


def git_commit() -> str | None:
    out = _git("rev-parse", "HEAD")
    return out.strip() if out is not None else None


def git_tree_dirty() -> bool | None:
    """Whether a tracked file differs from the commit (untracked files are not part of the code's record); None
    when the project is not a git checkout."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return bool(out.strip()) if out is not None else None


def _git(*args: str) -> str | None:
    """`git <args>` in the project's folder: its output, or None where git or the repository is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None
