"""What the product's models are measured against, on exactly the rows a training run held out: the trivial
baseline (the training rows' most frequent class, or their mean) and the anchor, the better of scikit-learn's
HistGradientBoosting* and XGBoost with their library defaults.

The anchors see the same columns as the product (everything but the label and the ids), strings one-hot encoded
(HistGradientBoosting's native categories stop at 255 values; one-hot has no such limit, and it is how the issue
measured its anchor), in a dense matrix (XGBoost reads an absent entry of a sparse one as missing, not zero),
numbers as they are: both libraries take missing values natively."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import LabelEncoder, OneHotEncoder

from bench._quality_tables import BINARY, REGRESSION, QualityTable

GREATER_IS_BETTER = {"accuracy": True, "roc_auc": True, "r2": True, "rmse": False}


def metric_names(kind: str) -> tuple[str, ...]:
    return {BINARY: ("accuracy", "roc_auc"), REGRESSION: ("r2", "rmse")}.get(kind, ("accuracy",))


def split_rows(labeled: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`labeled` cut into the rows a run trained on and the rows it held out (`test`, as the run logged it: its
    columns, in the types its writer gave them). Rows are matched by value; identical rows are interchangeable."""
    columns = list(test.columns)
    keys = _row_keys(labeled[columns])
    wanted = _row_keys(test).value_counts()
    occurrence = keys.groupby(keys).cumcount()
    in_test = occurrence < keys.map(wanted).fillna(0)
    if int(in_test.sum()) != len(test):
        raise AssertionError(f"{len(test) - int(in_test.sum())} logged test rows are not in the table")
    return labeled[~in_test.to_numpy()], labeled[in_test.to_numpy()]


def _row_keys(frame: pd.DataFrame) -> pd.Series:
    """One hash per row, the same whichever writer typed the columns (int64 / double, string / object)."""
    normal = pd.DataFrame(
        {
            c: frame[c].astype("float64") if ptypes.is_numeric_dtype(frame[c]) else frame[c].astype("string")
            for c in frame.columns
        }
    )
    return pd.Series(pd.util.hash_pandas_object(normal, index=False).to_numpy())


def scores(kind: str, y_true, predicted, proba=None, classes=None) -> dict[str, float]:
    if kind == REGRESSION:
        rmse = float(np.sqrt(skm.mean_squared_error(y_true, predicted)))
        return {"r2": float(skm.r2_score(y_true, predicted)), "rmse": rmse}
    result = {"accuracy": float(skm.accuracy_score(y_true, predicted))}
    if kind == BINARY:
        result["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
    return result


def baseline(table: QualityTable, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """Most frequent training class (ROC AUC of a constant: 0.5), or the training mean."""
    y_train, y_test = train[table.label], test[table.label]
    if table.kind == REGRESSION:
        return scores(table.kind, y_test, np.full(len(y_test), y_train.mean()))
    majority = y_train.value_counts().idxmax()
    result = {"accuracy": float((y_test == majority).mean())}
    if table.kind == BINARY:
        result["roc_auc"] = 0.5
    return result


def anchors(table: QualityTable, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict]:
    """{library: {"metrics": ..., "fit_s": ...}} for HistGradientBoosting* and XGBoost, each with its defaults."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from xgboost import XGBClassifier, XGBRegressor

    features = [c for c in train.columns if c != table.label and c not in table.ids]
    strings = [c for c in features if not ptypes.is_numeric_dtype(train[c])]
    encode = ColumnTransformer(
        [("strings", OneHotEncoder(handle_unknown="ignore", sparse_output=False), strings)], remainder="passthrough"
    )
    X_train = encode.fit_transform(_strings_filled(train[features], strings))
    X_test = encode.transform(_strings_filled(test[features], strings))
    regression = table.kind == REGRESSION
    models = {
        "hist_gb": HistGradientBoostingRegressor() if regression else HistGradientBoostingClassifier(),
        "xgboost": XGBRegressor() if regression else XGBClassifier(),
    }
    labels = LabelEncoder().fit(train[table.label]) if not regression else None
    y_train = train[table.label] if regression else labels.transform(train[table.label])
    out = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X_train, y_train)
        fit_s = time.perf_counter() - started
        if regression:
            metrics = scores(table.kind, test[table.label], model.predict(X_test))
        else:
            predicted = labels.inverse_transform(model.predict(X_test))
            metrics = scores(table.kind, test[table.label], predicted, model.predict_proba(X_test), labels.classes_)
        out[name] = {"metrics": metrics, "fit_s": fit_s}
    return out


def best_of(anchor_runs: dict[str, dict], metric: str) -> tuple[str, float]:
    """The better library on `metric`, and its value."""
    pick = max if GREATER_IS_BETTER[metric] else min
    name = pick(anchor_runs, key=lambda n: anchor_runs[n]["metrics"][metric])
    return name, anchor_runs[name]["metrics"][metric]


def _strings_filled(frame: pd.DataFrame, strings: list[str]) -> pd.DataFrame:
    """A missing string is a category of its own (OneHotEncoder refuses mixed None and str)."""
    return frame.assign(**{c: frame[c].astype("string").fillna("<missing>").astype(object) for c in strings})
