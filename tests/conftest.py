"""Shared fixtures: one local[2] SparkSession per test run; a fresh SQLite tracking store per test, copied from
one migrated template (a migration costs seconds, a copy milliseconds)."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

# One OpenMP thread per fit (HistGradientBoosting, XGBoost), set before any library loads its OpenMP runtime and
# inherited by every job process a test starts: two test workers, Spark's Python workers and OpenMP's spinning
# threads on two cores stall each other (a 1,200-row fit measured 49 s with two threads under load, 0.6 s with one).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Every JVM a test starts through spark-submit (a job process's, the Connect server's) compiles with the client
# compiler alone and collects garbage with one thread: those JVMs live seconds to a minute and run few, small Spark
# jobs, where the optimising compiler's threads cost more CPU than its faster code saves, on two cores two test
# workers already fill (train_mllib on Titanic twice in one session: 95 s of JVM CPU with the default settings, 41 s
# with these). Two whole runs on a clean clone, otherwise alike: 25.1 min with both settings, 27.1 min with the
# compiler one alone. The test session's own JVM (the `spark` fixture) is the exception: it lives the whole run and
# runs thousands of jobs, so the optimising compiler pays for itself there (the MLlib half of the shapes matrix, two
# runs side by side: 199 s with it, 230 s without; the sklearn half 128 s either way). All of them map Spark's
# classes from an archive made once per machine (tests/jvm_class_archive.py).
if "SPARK_SUBMIT_OPTS" not in os.environ:
    from tests.jvm_class_archive import with_class_archive

    _SESSION_JVM_OPTIONS = with_class_archive("-XX:+UseSerialGC")
    # A standalone cluster's executors (team mode, tests/scoring/test_standalone_cluster.py) live as long as their
    # job: the jobs' compiler and collector, through the property SparkConf reads as the jobs' default (no class
    # archive: an executor's class path is not the archive's).
    executors = "-Dspark.executor.extraJavaOptions='-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'"
    os.environ["SPARK_SUBMIT_OPTS"] = f"-XX:TieredStopAtLevel=1 {_SESSION_JVM_OPTIONS} {executors}"
else:  # the user's own options, for every JVM
    _SESSION_JVM_OPTIONS = os.environ["SPARK_SUBMIT_OPTS"]

# pytest-xdist's workers run with a `__main__` that has no `__file__`, which pyspark.sql.connect takes for a doctest
# run and answers with sys.exit(0) when Spark Connect's client libraries are absent (mlflow.spark.log_model imports
# it). A file name for the worker's main module keeps the import what it is in a job process.
_main = sys.modules.get("__main__")
if _main is not None and not hasattr(_main, "__file__"):
    _main.__file__ = __file__

import mlflow  # noqa: E402 - after the OpenMP setting above
import pytest  # noqa: E402

from common.settings import Settings  # noqa: E402
from tests.helpers import REPO, TEST_MASTER, git, job_env  # noqa: E402


def make_settings(tracking_uri: str) -> Settings:
    return Settings(
        tracking_uri=tracking_uri,
        spark_master=TEST_MASTER,
        experiment_name="tests",
        shuffle_partitions=2,
        driver_memory="1g",
    )


# Test folders whose tests share costly session fixtures (the team stack; the shapes matrix's trained models): under
# pytest-xdist (`make test` runs two workers) each goes to one worker whole, so those fixtures are built once.
_SHARED_SESSION_FOLDERS = {"team", "shapes"}


# Test files that run before the rest of their folder. The team server's UI lists on its root page only the five
# experiments changed last: the browser test opens it as a user does right after the quickstart, before the other
# team tests add experiments of their own (else whether the quickstart's is listed depends on when it finished).
_FIRST_IN_FOLDER = {"team/test_ui_in_browser.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Every test file is one xdist group (its module fixtures are built once), and so is every folder above."""
    tests = Path(__file__).parent
    for item in items:
        relative = Path(str(item.fspath)).relative_to(tests)
        shared = relative.parts[0] in _SHARED_SESSION_FOLDERS
        item.add_marker(pytest.mark.xdist_group(relative.parts[0] if shared else relative.as_posix()))
    position = {id(item): index for index, item in enumerate(items)}
    folder_start = {}
    for item in items:
        folder_start.setdefault(Path(str(item.fspath)).relative_to(tests).parts[0], position[id(item)])

    def order(item):
        relative = Path(str(item.fspath)).relative_to(tests)
        if relative.as_posix() in _FIRST_IN_FOLDER:
            return (folder_start[relative.parts[0]], 0, position[id(item)])
        return (position[id(item)], 1, 0)

    items.sort(key=order)


@pytest.fixture(scope="session")
def spark():
    from common.spark import build_spark

    with pytest.MonkeyPatch.context() as patch:  # its JVM starts with the session's options, not the jobs'
        patch.setenv("SPARK_SUBMIT_OPTS", _SESSION_JVM_OPTIONS)
        session = build_spark(make_settings("sqlite:///unused.db"), app_name="tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch):
    """No MLFLOW_* state leaks in from the shell or from another test; no run stays open after a test."""
    for key in list(os.environ):
        if key.startswith("MLFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")
    mlflow.tracking.fluent._active_experiment_id = None


@pytest.fixture
def settings(tmp_path, template_db, monkeypatch) -> Settings:
    """This test's own tracking store; the working directory is tmp_path, so ./mlruns artifacts land there."""
    db = tmp_path / "mlflow.db"
    shutil.copy(template_db, db)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return make_settings(uri)


@pytest.fixture
def client(settings) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(settings.tracking_uri)


@pytest.fixture
def production_model(settings):
    """A logistic regression on breast_cancer, registered as 'cancer' version 1 and promoted to Production."""
    from registry.stages import promote
    from training.sklearn.train_sklearn import TrainSklearnParams
    from training.sklearn.train_sklearn import run as train

    trained = train(
        settings, TrainSklearnParams(data="breast_cancer", estimator="logistic_regression", model_name="cancer")
    )
    promote(mlflow.MlflowClient(), "cancer", trained.model_version, "Production")
    return trained


@pytest.fixture
def three_versions(settings, client):
    """Model 'm' with versions 1..3 (tiny real models; the registry does not care how good they are)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = LogisticRegression().fit(X, [0.0, 1.0, 0.0, 1.0])
    for _ in range(3):
        with mlflow.start_run():
            log_sklearn_model(model, X, registered_model_name="m")
    return client


@pytest.fixture
def run_in_process(settings, capsys):
    """`python -m <module> <args>` run in this process on the session's Spark: the module's `main` through
    common.cli.run_cli (a user error prints one line and exits 2), as a new process would start it (the MLFLOW_* and
    SPARK_* environment job_env gives, no active MLflow experiment or run), and nothing of it left behind. Returns
    its exit code and what it printed as a CompletedProcess; any other exception propagates, as a traceback would.
    For steps whose own process is tested elsewhere: a JVM start costs 20-30 s, a call into the running one nothing."""
    from common.cli import run_cli

    fluent = mlflow.tracking.fluent
    root = logging.getLogger()

    def run(module: str, args: list[str]) -> subprocess.CompletedProcess:
        assert mlflow.active_run() is None, "a job process starts with no active run"
        main = importlib.import_module(module).main
        capsys.readouterr()
        experiment, handlers, level = fluent._active_experiment_id, root.handlers[:], root.level
        with pytest.MonkeyPatch.context() as patch:
            for key, value in job_env(settings.tracking_uri).items():
                if key.startswith(("MLFLOW_", "SPARK_")):
                    patch.setenv(key, value)
            fluent._active_experiment_id = None
            try:
                run_cli(main, args)
                code = 0
            except SystemExit as exited:
                code = exited.code
            finally:
                while mlflow.active_run() is not None:
                    mlflow.end_run(status="FAILED")
                fluent._active_experiment_id = experiment
                # run_cli configures logging as a job does (a handler on the captured stderr): pytest's back.
                root.handlers[:] = handlers
                root.setLevel(level)
                mlflow.set_tracking_uri(settings.tracking_uri)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([module, *args], code, out, err)

    return run


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory) -> Path:
    """A commit to train and reproduce from: the project's files as they are in this checkout (committed or not,
    ignored files left out) committed into a repository of their own, so a run's record names a commit of a clean
    tree whatever state the checkout under test is in."""
    repo = tmp_path_factory.mktemp("snapshot") / "project"
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a file deleted in the checkout but not yet in git is listed too
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "the project under test")
    return repo
