"""Entry point `train_sklearn`: fit a scikit-learn model on a table, track everything, optionally register it.

python -m training.train_sklearn --data breast_cancer --estimator random_forest --model-name cancer
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

from lifecycle.cli import comma_list, optional_str, run_cli, whole_number
from lifecycle.datasets import DEFAULT_LABEL, load_table
from lifecycle.errors import UserInputError
from lifecycle.settings import Settings
from lifecycle.tracking import log_dataset, log_new_params, tracked_run
from training import plots
from training.estimators import ESTIMATOR_STEP, ESTIMATORS, build_pipeline
from training.evaluation import evaluate
from training.sklearn_model import log_sklearn_model
from training.tasks import CLASSIFICATION, LabeledData, TrainResult, check_test_fraction, split_features

_logger = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train_sklearn", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breast_cancer", help="Parquet/CSV path or a bundled data set name")
    parser.add_argument("--label", default=DEFAULT_LABEL)
    parser.add_argument("--estimator", default="random_forest", choices=sorted(ESTIMATORS))
    parser.add_argument("--task", default="auto", choices=["auto", "classification", "regression"])
    parser.add_argument("--hyperparams", default="{}", help='JSON object, e.g. {"n_estimators": 200}')
    parser.add_argument("--seed", type=whole_number, default=42)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--exclude", default="", help="comma-separated columns that are not features (ids)")
    parser.add_argument("--model-name", type=optional_str, default=None, help="register the model under this name")
    return parser.parse_args(argv)


def parse_hyperparams(text: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise UserInputError(f"hyperparams is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(value, dict):
        raise UserInputError(f'hyperparams must be a JSON object such as {{"max_depth": 5}}, got {text!r}')
    return value


def run(
    settings: Settings,
    data: str,
    label: str = DEFAULT_LABEL,
    estimator: str = "random_forest",
    task: str = "auto",
    hyperparams: dict | None = None,
    seed: int = 42,
    test_fraction: float = 0.2,
    exclude: Sequence[str] = (),
    model_name: str | None = None,
) -> TrainResult:
    """Validate everything first, so bad input fails before a run or a model version exists."""
    check_test_fraction(test_fraction)
    table = load_table(data)
    labeled = split_features(table.frame, label, task, list(exclude))
    pipeline = build_pipeline(estimator, labeled, hyperparams or {}, seed)
    X_train, X_test, y_train, y_test = split_train_test(labeled, test_fraction, seed)
    if labeled.rows_missing_label:
        _logger.warning("left out %d row(s) whose label %r is missing", labeled.rows_missing_label, label)

    with tracked_run(settings, run_name=f"train_sklearn-{estimator}") as active:
        log_new_params(
            {
                "data": data,
                "label": label,
                "estimator": estimator,
                "task": task,
                "resolved_task": labeled.task,
                "seed": seed,
                "test_fraction": test_fraction,
                "exclude": ",".join(exclude),
                "n_features": labeled.features.shape[1],
                "n_rows_train": len(X_train),
                "n_rows_test": len(X_test),
                "n_rows_missing_label": labeled.rows_missing_label,
            }
        )
        log_new_params({f"{ESTIMATOR_STEP}.{k}": v for k, v in pipeline[ESTIMATOR_STEP].get_params().items()})
        log_dataset(table.to_mlflow_dataset(targets=label), context="training")

        metrics, info, version = fit_and_log(pipeline, labeled.task, X_train, X_test, y_train, y_test, model_name)
        _logger.info("run %s: %s", active.info.run_id, metrics)
        return TrainResult(active.info.run_id, info.model_uri, labeled.task, metrics, model_name, version)


def fit_and_log(pipeline, task: str, X_train, X_test, y_train, y_test, model_name: str | None):
    """Fit on the training split, log held-out metrics, plots, the test split and the model (registered when
    `model_name` is given) into the active run. Shared by `train_sklearn` and the tuning jobs' refit."""
    pipeline.fit(X_train, y_train)
    metrics = evaluate(pipeline, X_test, y_test, task)
    mlflow.log_metrics(metrics)
    _log_evaluation_artifacts(pipeline, X_test, y_test, task)
    info = log_sklearn_model(pipeline, X_train, registered_model_name=model_name)
    version = str(info.registered_model_version) if model_name else None
    if version:
        mlflow.MlflowClient().set_model_version_tag(model_name, version, "task", task)
    return metrics, info, version


def split_train_test(labeled: LabeledData, test_fraction: float, seed: int):
    y = labeled.label
    # Stratify so every class is in both splits when the data allow it.
    stratify = y if labeled.task == CLASSIFICATION and y.value_counts().min() >= 2 else None
    try:
        return train_test_split(labeled.features, y, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise UserInputError(f"cannot split {len(y)} rows with test_fraction={test_fraction}: {exc}") from exc


def _log_evaluation_artifacts(model, X_test: pd.DataFrame, y_test: pd.Series, task: str) -> None:
    """Plots, feature importances and the held-out split itself (so the model can be re-evaluated later)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if task == CLASSIFICATION:
            plots.evaluation_pngs(out, y_test, model.predict(X_test), model.predict_proba(X_test), model.classes_)
        else:
            plots.evaluation_pngs(out, y_test, model.predict(X_test))
        importances = feature_importances(model)
        if importances is not None:
            plots.feature_importances_png(importances, out / "feature_importances.png")
            importances.to_csv(out / "feature_importances.csv", index=False)
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
    with tempfile.TemporaryDirectory() as tmp:
        X_test.assign(**{y_test.name: y_test}).to_parquet(Path(tmp) / "test.parquet", index=False)
        mlflow.log_artifacts(tmp, artifact_path="data")


def feature_importances(pipeline) -> pd.DataFrame | None:
    """Importances by feature name after preprocessing (one-hot columns included), largest first."""
    estimator = pipeline[ESTIMATOR_STEP]
    if not hasattr(estimator, "feature_importances_"):
        return None
    names = pipeline[:-1].get_feature_names_out()
    frame = pd.DataFrame({"feature": names, "importance": estimator.feature_importances_})
    return frame.sort_values("importance", ascending=False, ignore_index=True)


def main(argv: Sequence[str] | None = None) -> TrainResult:
    args = parse_args(argv)
    result = run(
        Settings.from_env(),
        data=args.data,
        label=args.label,
        estimator=args.estimator,
        task=args.task,
        hyperparams=parse_hyperparams(args.hyperparams),
        seed=args.seed,
        test_fraction=args.test_fraction,
        exclude=comma_list(args.exclude),
        model_name=args.model_name,
    )
    print(result.summary())
    return result


if __name__ == "__main__":
    run_cli(main)
