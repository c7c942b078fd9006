"""Which members the default ensemble keeps for a regression, chosen by out-of-fold error on the training rows.

For regression the two members' errors differ by far more from table to table than for classes: XGBoost follows a
heavy-tailed label that HistGradientBoosting's 20-row leaves cannot (Superstore Profit, held-out R² 0.84 against
0.28) and HistGradientBoosting is the better one on small tables (auto-mpg, 392 rows: 0.894 against 0.853), where
their even mean (0.881) falls short of the better member. So for a regression `train_sklearn` predicts the training
rows in 3 folds with each member and keeps whichever of HistGradientBoosting, XGBoost and their mean has the
smallest out-of-fold RMSE (on the benchmark's five regression tables it kept the mean on three and
HistGradientBoosting alone on auto-mpg and diabetes, each within the goal of the better member on the held-out
rows). Classes keep the mean of both: chosen by out-of-fold log-loss, small multi-class tables picked the member
that was worse on held-out rows (forensic glass 0.744 -> 0.698 accuracy), and the mean met every goal there.

Folds are fitted from the members' whole pipelines, preprocessing included, so no fold sees the rows it predicts.
Per-group training does not choose: given this estimator, each group's model (on that group's few rows) is the
mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from training.evaluation import regression_metrics
from training.sklearn.estimators import ESTIMATOR_STEP

FOLDS = 3
MEAN = "mean"
# Fewer training rows than this: out-of-fold errors over a handful of rows choose by chance; the mean is kept.
MIN_ROWS = 30


def choose_regression_members(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, seed: int) -> tuple[str, dict]:
    """Keep in the ensemble step of `pipeline` (unfitted) the member, or both, with the smallest out-of-fold RMSE.
    Returns the choice (a member's name or "mean") and each candidate's out-of-fold RMSE (empty when too few rows)."""
    voting = pipeline.named_steps[ESTIMATOR_STEP]
    members = dict(voting.estimators)
    if len(X) < MIN_ROWS:
        return MEAN, {}
    folds = KFold(FOLDS, shuffle=True, random_state=seed)
    predicted = {name: cross_val_predict(clone(member), X, y, cv=folds) for name, member in members.items()}
    candidates = {MEAN: np.mean(list(predicted.values()), axis=0), **predicted}  # on a tie, the mean
    # Measured as the held-out RMSE the run logs is.
    rmse = {name: regression_metrics(y, p)["rmse"] for name, p in candidates.items()}
    chosen = min(rmse, key=rmse.get)
    kept = list(members) if chosen == MEAN else [chosen]
    voting.set_params(estimators=[(name, members[name]) for name in kept])
    return chosen, rmse
