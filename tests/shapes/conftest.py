"""Fixtures of the shapes matrix: each (trainer, shape) is trained once per session, in a tracking store of its own
(copied from the migrated template, as tests/conftest.py's `settings` does); each test then works on its own copy of
that store, so a promotion or a scoring run in one test is never seen by another, while the trained model's
artifacts (absolute paths in the store) are shared."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from common.errors import UserInputError
from common.settings import Settings
from tests.conftest import make_settings
from tests.shapes import chain
from tests.shapes.shapes import BY_ID, SITE, Shape


@dataclass
class Store:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def settings(self) -> Settings:
        return make_settings(self.uri)

    def client(self) -> mlflow.MlflowClient:
        return mlflow.MlflowClient(self.uri)

    def runs(self) -> list:
        client = self.client()
        return client.search_runs([e.experiment_id for e in client.search_experiments()])


@contextmanager
def using_store(store: Store):
    """Point MLflow (URI, environment, working directory for ./mlruns) at `store`, and put everything back after."""
    previous_uri = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
            patch.delenv(key)
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        patch.setenv("MLFLOW_TRACKING_URI", store.uri)
        patch.chdir(store.root)
        mlflow.set_tracking_uri(store.uri)
        try:
            yield store
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run(status="KILLED")
            mlflow.tracking.fluent._active_experiment_id = None
            mlflow.set_tracking_uri(previous_uri)


@dataclass
class Trained:
    """One (trainer, shape): the store it was trained in, its data, and what training returned or raised."""

    trainer: str
    shape: Shape
    store: Store
    frame: pd.DataFrame  # the table as written (training data = scoring input)
    data: Path  # the file training read; scoring reads it too
    model_name: str
    result: object | None = None
    error: BaseException | None = None
    own: pd.DataFrame | None = None  # the registered model's own predictions on `data` (computed once)
    features: list[str] = field(default_factory=list)  # the registered model's signature inputs
    passthrough: list[str] = field(default_factory=list)  # scoring input columns kept in the output

    @property
    def refused_cleanly(self) -> bool:
        pattern, _ = self.shape.refusal_for(self.trainer)
        return isinstance(self.error, UserInputError) and pattern is not None and chain.matches(pattern, self.error)

    def require_model(self) -> None:
        """For the tests after training: a clean refusal skips them (the training test checked it); any other
        failure fails them, since there is nothing to promote or score."""
        if self.error is None:
            return
        if self.refused_cleanly:
            pytest.skip(f"{self.trainer} refused shape {self.shape.id} before any run: {self.error}")
        pytest.fail(
            f"{self.trainer} failed to train shape {self.shape.id}, nothing to promote or score: "
            f"{type(self.error).__name__}: {chain.last_lines(self.error)}"
        )


class TrainedModels:
    def __init__(self, spark, template_db: Path, tmp_path_factory):
        self._spark = spark
        self._template = template_db
        self._factory = tmp_path_factory
        self._cache: dict[tuple[str, str], Trained] = {}

    def new_store(self, name: str, db: Path | None = None) -> Store:
        store = Store(self._factory.mktemp(name))
        shutil.copy(db or self._template, store.db)
        return store

    def get(self, trainer: str, shape: Shape) -> Trained:
        key = (trainer, shape.id)
        if key not in self._cache:
            self._cache[key] = self._train(trainer, shape)
        return self._cache[key]

    def own_predictions(self, trained: Trained) -> pd.DataFrame:
        """The registered version's own predictions on the scoring input, loaded with its own flavor in the store
        it was trained in; computed once per (trainer, shape), shared by the scoring tests."""
        if trained.own is None:
            with using_store(trained.store):
                trained.own = chain.own_predictions(
                    self._spark, f"models:/{trained.model_name}/1", trained.data, trained.shape.fmt, trained.shape.key
                )
        return trained.own.copy()

    def _train(self, trainer: str, shape: Shape) -> Trained:
        if shape.model_of:
            return self._reuse(trainer, shape)
        store = self.new_store(f"{trainer}-{shape.id}"[:30])
        frame = shape.per_group_frame() if trainer == "per_group" else shape.frame()
        data = chain.write_table(frame, store.root / f"{shape.id}.{shape.fmt}", shape.fmt)
        name = f"{trainer}_{shape.id}"
        trained = Trained(trainer, shape, store, frame, data, name)
        with using_store(store):
            try:
                trained.result = chain.train(trainer, self._spark, store.settings, shape, data, name)
            except Exception as exc:  # noqa: BLE001 - the training test reports it; later tests fail or skip on it
                trained.error = exc
            features = chain.signature_inputs(f"models:/{name}/1") if trained.error is None else []
        trained.features = features
        # Columns that are not features pass through; a per-group model's group column is both.
        trained.passthrough = [c for c in frame.columns if c not in features or (trainer == "per_group" and c == SITE)]
        return trained

    def _reuse(self, trainer: str, shape: Shape) -> Trained:
        """The model trained on `shape.model_of` (same features and label), with this shape's table as the scoring
        input: only scoring is new, no training time is added."""
        base = self.get(trainer, BY_ID[shape.model_of])
        frame = shape.per_group_frame() if trainer == "per_group" else shape.frame()
        folder = self._factory.mktemp(f"{trainer}-{shape.id}"[:30])
        data = chain.write_table(frame, folder / f"{shape.id}.{shape.fmt}", shape.fmt)
        trained = Trained(trainer, shape, base.store, frame, data, base.model_name, base.result, base.error)
        trained.features = base.features
        trained.passthrough = [
            c for c in frame.columns if c not in base.features or (trainer == "per_group" and c == SITE)
        ]
        return trained


@pytest.fixture(scope="session")
def trained_models(spark, template_db, tmp_path_factory) -> TrainedModels:
    return TrainedModels(spark, template_db, tmp_path_factory)


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    """A copy of a trained store for this test alone; the working directory is tmp_path, as with `settings`."""

    def use(trained: Trained) -> Settings:
        db = tmp_path / "mlflow.db"
        shutil.copy(trained.store.db, db)
        monkeypatch.chdir(tmp_path)
        uri = f"sqlite:///{db}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        return make_settings(uri)

    return use
