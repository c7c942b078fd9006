"""The verdict from what a reproduction measured: exact only when nothing differs, within tolerance when every
difference is at most the tolerance, and not reproduced when anything is missing, different in kind, or too far."""

import math

import pytest

from lifecycle.comparison import EXACT, NOT_REPRODUCED, WITHIN_TOLERANCE, Comparison


def _comparison(metrics=None, record=(), predictions=None, mismatched=0) -> Comparison:
    metrics = {"accuracy": (0.9, 0.9), "log_loss": (0.25, 0.25)} if metrics is None else metrics
    return Comparison(metrics, list(record), 100, predictions or {"prediction": 0.0}, mismatched)


@pytest.mark.parametrize(
    ("comparison", "tolerance", "verdict"),
    [
        (_comparison(), 0.0, EXACT),
        (_comparison(), 1e-6, EXACT),
        (_comparison(metrics={"log_loss": (0.25, 0.25 + 1e-12)}), 1e-9, WITHIN_TOLERANCE),
        (_comparison(metrics={"log_loss": (0.25, 0.25 + 1e-12)}), 0.0, NOT_REPRODUCED),
        (_comparison(predictions={"probability": 1e-12}, mismatched=3), 1e-9, WITHIN_TOLERANCE),
        (_comparison(predictions={"prediction": math.inf}, mismatched=1), 1.0, NOT_REPRODUCED),  # a label changed
        (_comparison(metrics={"accuracy": (0.9, None)}), 1.0, NOT_REPRODUCED),  # a metric the replay lacks
        (_comparison(record=["param n_rows_train: '455' vs '454'"]), 1.0, NOT_REPRODUCED),
    ],
)
def test_the_verdict_follows_the_largest_difference_and_the_tolerance(comparison, tolerance, verdict):
    assert comparison.verdict(tolerance) == verdict


def test_every_difference_is_listed_once_and_equal_figures_are_not():
    comparison = _comparison(
        metrics={"accuracy": (0.9, 0.9), "log_loss": (0.25, 0.26)},
        record=["Spark shuffle_partitions: 2 vs 8"],
        predictions={"prediction": 0.0, "probability": 0.01},
        mismatched=4,
    )
    assert comparison.differences() == [
        "Spark shuffle_partitions: 2 vs 8",
        "metric log_loss: 0.25 vs 0.26",
        "probability: largest difference 0.01",
        "4 of 100 test rows predicted differently",
    ]
    assert comparison.max_metric_difference == pytest.approx(0.01)
