"""Run a recorded training again: its commit checked out into a temporary git worktree, its entry point run there
through MLflow Projects with the recorded parameters, data and Spark settings, as a child of the active run."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import ExecutionException

from common.errors import UserInputError
from common.spark_compat import CLASSIC, CONNECT
from lifecycle.training_record import TrainingRecord

_logger = logging.getLogger(__name__)

# Parameters the replay sets itself: the data where the run found it (a relative path meant the project
# directory of that run), and no registration (a reproduction is compared, not promoted).
_DATA, _MODEL_NAME = "data", "model_name"


@contextmanager
def worktree(repo: Path, commit: str) -> Iterator[Path]:
    """`commit` checked out, detached, in a temporary directory that is removed again (with git's record of it)."""
    subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="reproduce-") as tmp:
        path = Path(tmp) / "src"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), commit], cwd=repo, capture_output=True, text=True
        )
        if added.returncode != 0:
            raise UserInputError(f"cannot check out commit {commit} into a worktree: {added.stderr.strip()}")
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo, capture_output=True)


def replay_parameters(project: Path, record: TrainingRecord) -> dict[str, str]:
    """The entry point's parameters as the run logged them (the commit's MLproject says which they are)."""
    spec = yaml.safe_load((project / "MLproject").read_text())
    declared = spec["entry_points"][record.entry_point].get("parameters", {})
    logged = record.run.data.params
    # `mlflow run` logs each parameter as it put it on the command line, shell-quoted ('{}', ''); a run started
    # otherwise logged the values themselves.
    quoted = record.run.data.tags.get("mlflow.project.entryPoint") == record.entry_point
    parameters = {name: _unquoted(logged[name]) if quoted else logged[name] for name in declared if name in logged}
    parameters[_DATA] = record.data_source
    if _MODEL_NAME in declared:
        parameters[_MODEL_NAME] = ""
    return parameters


def replay(
    project: Path, record: TrainingRecord, experiment_id: str, overrides: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Run the entry point in `project`; return the new run's id and the parameters it was given. Spark gets
    the recorded master and shuffle partitions (they decide how rows are split into partitions, so which rows a
    seeded split or fold draws). `overrides`: parameters that differ from the record (retraining: new data, and
    the model to register the result under)."""
    parameters = replay_parameters(project, record) | (overrides or {})
    spark = record.spark_settings
    environment = {
        # The entry point's command says `python`: this interpreter, whatever PATH the caller had.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_MASTER": spark.get("master"),
        "SPARK_SHUFFLE_PARTITIONS": str(spark["shuffle_partitions"]) if "shuffle_partitions" in spark else None,
    }
    _logger.info("replaying %s of run %s at %s with %s", record.entry_point, record.run_id, record.commit, parameters)
    removed = left_out_of_replay(record)
    with _environment(environment, removed):
        try:
            submitted = mlflow.projects.run(
                str(project),
                entry_point=record.entry_point,
                parameters=parameters,
                env_manager="local",
                experiment_id=experiment_id,
                run_name=f"{'retrain' if overrides else 'replay'}-{record.entry_point}",
            )
        except ExecutionException as exc:
            raise UserInputError(f"the replay of run {record.run_id} ({record.entry_point}) failed: {exc}") from exc
    return submitted.run_id, parameters


def left_out_of_replay(record: TrainingRecord) -> tuple[str, ...]:
    """The variables the replay's process does not see, so it runs in the connection mode the run trained in: a
    classic run replays in a JVM of its own even where SPARK_REMOTE is set (through a server, its recorded master
    and partitions would not be the ones used); a Connect run replays through the server SPARK_REMOTE names
    (reproduce refuses first when none is named)."""
    remote = os.environ.get("SPARK_REMOTE")
    if record.connection == CLASSIC and remote:
        _logger.info("run %s trained in classic mode: replayed in classic mode, SPARK_REMOTE left out", record.run_id)
        return ("SPARK_REMOTE",)
    if record.connection == CONNECT:
        _logger.info("run %s trained through Spark Connect: replayed through %s", record.run_id, remote)
    return ()


def _unquoted(value: str) -> str:
    words = shlex.split(value)
    return words[0] if len(words) == 1 else value


@contextmanager
def _environment(overrides: dict[str, str | None], removed: tuple[str, ...] = ()) -> Iterator[None]:
    """`overrides` set (a None value leaves the variable as it is) and `removed` unset, all restored afterwards."""
    saved = {key: os.environ.get(key) for key in (*overrides, *removed)}
    os.environ.update({key: value for key, value in overrides.items() if value is not None})
    for key in removed:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
