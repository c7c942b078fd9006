"""Every training job logs its model's reference profile (common/profile.py) here, next to its held-out split: the
baseline `monitor` compares the scored rows with. One function for the three ways training rows exist — pandas
(scikit-learn, the tuning refits), a Spark DataFrame (MLlib, per group) — so the profile has one form whatever
trained the model. Spark rows are profiled on a seeded random sample of at most PROFILE_SAMPLE_ROWS rows converted
to pandas: the profile's statistics (quantiles, deciles, top categories) are stable at that size, it keeps one
implementation of the format, and the driver never holds more than that many rows. The profile's `source` says the
sample size when one was taken.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame

from common.profile import FROM_TRAINING, log_reference_profile

PROFILE_SAMPLE_ROWS = 100_000
_SAMPLE_SEED = 7


def log_training_profile(
    training_rows, label: str, predictions, probabilities=None, *, task: str, classes=None
) -> dict:
    """Log the profile of `training_rows` (features and the `label` column; pandas or Spark) and of the model's
    `predictions` / `probabilities` over the held-out split (array-likes, or a Spark DataFrame with a `prediction`
    column and optionally a `probability` column holding P(classes[1]))."""
    rows, source = _as_pandas(training_rows)
    if isinstance(predictions, DataFrame):
        answers, _ = _as_pandas(predictions)
        predictions = answers["prediction"]
        probabilities = answers["probability"] if "probability" in answers.columns else None
    return log_reference_profile(
        rows.drop(columns=[label]), rows[label], predictions, probabilities, task=task, classes=classes, source=source
    )


def _as_pandas(rows) -> tuple[pd.DataFrame, str]:
    """pandas rows as they are; Spark rows as a bounded seeded sample, and the profile source saying so."""
    if isinstance(rows, pd.DataFrame):
        return rows, FROM_TRAINING
    total = rows.count()
    if total <= PROFILE_SAMPLE_ROWS:
        return rows.toPandas(), FROM_TRAINING
    # A little over the wanted share, then cut: Bernoulli sampling's size varies around fraction x total.
    fraction = min(1.0, 1.1 * PROFILE_SAMPLE_ROWS / total)
    sample = rows.sample(withReplacement=False, fraction=fraction, seed=_SAMPLE_SEED).limit(PROFILE_SAMPLE_ROWS)
    return sample.toPandas(), f"{FROM_TRAINING} (a random sample of {PROFILE_SAMPLE_ROWS} of {total})"
