"""Log a scikit-learn model the safe way: skops with exactly the extra types it needs, explicit requirements."""

from __future__ import annotations

import warnings
from importlib.metadata import version

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature

from common.errors import UserInputError

# Types outside skops' default allow-list that a scikit-learn model may legitimately hold (tree structures,
# numpy dtypes, scipy sparse matrices). Anything else makes logging fail loudly rather than trusting it blindly.
_TRUSTABLE_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")
# By exact name: XGBoost's estimators (skops rebuilds the booster from XGBoost's own model bytes, no pickle), and
# functools.partial, which HistGradientBoosting's native categories hold around scikit-learn's check_array (skops
# lists the wrapped function as a type of its own, so it must pass the check above as well).
_TRUSTABLE_TYPES = {
    "functools.partial",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "training.sklearn.xgboost_labels.LabelIndexedXGBClassifier",
}
_INPUT_EXAMPLE_ROWS = 5
# What the model needs at load time; naming it saves MLflow loading the model in a subprocess to infer it.
_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")


def skops_trusted_types(model) -> list[str]:
    """The exact non-default types skops must trust to load `model`, checked against the allow-list above."""
    import skops.io as sio

    return trusted_types_of(sio.dumps(model))


def trusted_types_of(blob: bytes) -> list[str]:
    """The same check on a model already serialized with `skops.io.dumps` (per-group training ships the bytes)."""
    import skops.io as sio

    untrusted = sorted(sio.get_untrusted_types(data=blob))
    refused = [t for t in untrusted if not t.startswith(_TRUSTABLE_PREFIXES) and t not in _TRUSTABLE_TYPES]
    if refused:
        raise UserInputError(
            f"the model holds types skops cannot load safely: {', '.join(refused)}; refusing to log it "
            "(pickle is not used as a fall-back)"
        )
    return untrusted


def pinned_requirements(trusted_types: list[str] = ()) -> list[str]:
    """The packages a model needs at load time, pinned; XGBoost's when the model holds one of its estimators."""
    packages = [*_REQUIREMENTS, *(["xgboost-cpu"] if any(t.startswith("xgboost.") for t in trusted_types) else [])]
    return [f"{package}=={version(package)}" for package in packages]


def log_sklearn_model(model, X: pd.DataFrame, registered_model_name: str | None = None, name: str = "model"):
    """Log `model` with a signature inferred from `X` and its predictions, and an input example from `X`."""
    example = X.head(_INPUT_EXAMPLE_ROWS)
    with warnings.catch_warnings():
        # MLflow's hint that integer columns cannot hold missing values is about inputs; predicted labels never are.
        warnings.filterwarnings("ignore", message=".*integer column.*")
        outputs = infer_signature(model.predict(example)).inputs
    signature = ModelSignature(inputs=infer_signature(X).inputs, outputs=outputs)
    trusted = skops_trusted_types(model)
    return mlflow.sklearn.log_model(
        model,
        name=name,
        signature=signature,
        input_example=example,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=trusted,
        pip_requirements=pinned_requirements(trusted),
        registered_model_name=registered_model_name,
    )
