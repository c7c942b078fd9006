"""Code that runs in Spark's Python workers for `train_per_group`: fit one group's pipeline and send it back as
skops bytes with its held-out metrics, or say why the group was skipped. Also the plain-pandas core the
benchmark's sequential loop calls, so both sides of the comparison do exactly the same work."""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.columns import real_names
from common.per_group_format import group_key

FALLBACK_FLAG = "__per_group_fallback"  # True on the copy of all rows the fallback model is trained on
TRAINED, SKIPPED = "trained", "skipped"
# One row per group. Metrics are JSON because their names depend on the task.
RESULT_SCHEMA = (
    "fallback boolean, group_key string, status string, reason string, n_rows long, n_rows_missing_label long, "
    "n_train long, n_test long, metrics string, fit_seconds double, model binary, trusted_types string, "
    "held_out binary"
)


@dataclass(frozen=True)
class GroupTrainingPlan:
    """Everything a worker needs, pickled with the task: names and settings, never data."""

    group: str
    label: str
    task: str
    estimator: str
    seed: int
    test_fraction: float
    min_rows: int
    exclude: tuple[str, ...] = ()
    hyperparams: dict = field(default_factory=dict)
    renamed: tuple[tuple[str, str], ...] = ()  # (alias, name): columns sent under an alias (common.columns)


def group_trainer(plan: GroupTrainingPlan):
    """The applyInPandas body for `plan`: a plain function (Spark reads its type hints; a partial it cannot)."""

    def train(frame: pd.DataFrame) -> pd.DataFrame:
        from threadpoolctl import threadpool_limits

        # Spark already runs one task per core; BLAS threads on top oversubscribe the cores (measured here: a
        # logistic regression fits 5x slower with two OpenBLAS threads per task on a busy 2-core machine).
        with threadpool_limits(1):
            return train_group(frame, plan)

    return train


def train_group(frame: pd.DataFrame, plan: GroupTrainingPlan) -> pd.DataFrame:
    """One group's rows in, one result row out."""
    if plan.renamed:
        frame = frame.set_axis(real_names(frame.columns, plan.renamed), axis=1)
    fallback = bool(frame[FALLBACK_FLAG].iloc[0])
    key = None if fallback else group_key(frame[plan.group].iloc[0])
    # A group's rows arrive in the order the shuffle fetched them, which varies from run to run; the seeded split
    # below draws by position, so it repeats only on rows in an order of their own.
    frame = frame.sort_values(list(frame.columns), kind="mergesort", na_position="last", ignore_index=True)
    outcome = fit_group(frame.drop(columns=[FALLBACK_FLAG, plan.group]), plan)
    held_out = outcome.pop("held_out")
    if held_out is not None and not fallback:  # the fallback's split repeats the groups' rows
        # The group column first, with the group's value in its own type: the split is scored like new data.
        held_out.insert(0, plan.group, np.repeat(frame[plan.group].iloc[:1].to_numpy(), len(held_out)))
        held_out = held_out.to_parquet(index=False)
    else:
        held_out = None
    return pd.DataFrame([{"fallback": fallback, "group_key": key, **outcome, "held_out": held_out}])


def fit_group(frame: pd.DataFrame, plan: GroupTrainingPlan) -> dict:
    """Fit and evaluate on a held-out split; a group that cannot make a model is skipped with the reason."""
    n_rows = len(frame)
    labeled = frame[frame[plan.label].notna()]
    outcome = {"n_rows": n_rows, "n_rows_missing_label": n_rows - len(labeled)}
    if len(labeled) < plan.min_rows:
        return _skipped(outcome, f"{len(labeled)} labeled rows, fewer than min_rows={plan.min_rows}")
    y = labeled[plan.label]
    if plan.task == "classification" and y.nunique() < 2:
        value = y.iloc[0].item() if hasattr(y.iloc[0], "item") else y.iloc[0]  # 0, not np.int64(0)
        return _skipped(outcome, f"one class: {plan.label} is {value!r} in all {len(y)} labeled rows")
    try:
        return _fit(labeled, plan, outcome)
    except Exception as exc:  # noqa: BLE001 - one group's failure is reported in its row; the others go on
        return _skipped(outcome, f"fit failed: {type(exc).__name__}: {exc}")


def _fit(labeled: pd.DataFrame, plan: GroupTrainingPlan, outcome: dict) -> dict:
    import skops.io as sio
    from sklearn.model_selection import train_test_split

    from training.evaluation import evaluate
    from training.sklearn.estimators import build_pipeline
    from training.sklearn.model import trusted_types_of
    from training.tasks import CLASSIFICATION, split_features

    data = split_features(labeled, plan.label, plan.task, list(plan.exclude))
    y = data.label
    # Stratify when every class can be in both splits, as train_sklearn does.
    stratify = y if plan.task == CLASSIFICATION and y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        data.features, y, test_size=plan.test_fraction, random_state=plan.seed, stratify=stratify
    )
    if plan.task == CLASSIFICATION and y_train.nunique() < 2:
        return _skipped(outcome, f"the training split has one class ({y_train.iloc[0]})")
    pipeline = build_pipeline(plan.estimator, data, plan.hyperparams, plan.seed)
    started = time.perf_counter()
    pipeline.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    metrics = evaluate(pipeline, X_test, y_test, plan.task)
    held_out = X_test.assign(**{plan.label: y_test}).reset_index(drop=True)
    # Deflated: a 100-tree forest is 2.6 MB stored, 0.2 MB deflated, for the same dump time; every blob
    # crosses Arrow, the JVM and the driver.
    blob = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    return {
        **outcome,
        "status": TRAINED,
        "reason": None,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "metrics": json.dumps(metrics),
        "fit_seconds": fit_seconds,
        "model": blob,
        "trusted_types": json.dumps(trusted_types_of(blob)),
        "held_out": held_out,  # the test split (features + label), for the promotion gate
    }


def _skipped(outcome: dict, reason: str) -> dict:
    empty = {
        "n_train": 0,
        "n_test": 0,
        "metrics": None,
        "fit_seconds": None,
        "model": None,
        "trusted_types": None,
        "held_out": None,
    }
    return {**outcome, **empty, "status": SKIPPED, "reason": reason}
