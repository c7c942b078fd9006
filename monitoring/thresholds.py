"""Where a drift statistic or a metric's change counts as drift or degradation: the defaults, and the user's overrides
as JSON (`-P thresholds='{"psi": 0.25}'`), each key checked and each value a number.

A column drifts when an effect size crosses its threshold (PSI, Jensen-Shannon or Wasserstein for numbers; Jensen-
Shannon, total variation or L-infinity for categories) AND its test says the difference is not chance (KS or chi-
square p-value below its threshold). The test alone would flag differences too small to matter on large windows,
and raise one false alarm per twenty columns by design; an effect size alone is noise on a window of 100 rows.
"""

from __future__ import annotations

import json
import math

from common.errors import UserInputError

# Statistic -> (default threshold, True when a value at or above it drifts; False when below it does: p-values).
STATISTICS = {
    "psi": (0.2, True),  # industry convention: 0.1 moderate, 0.2 significant
    "js_distance": (0.1, True),  # Evidently's default for large samples
    "wasserstein": (0.1, True),  # in baseline standard deviations; Evidently's default
    "ks_pvalue": (0.05, False),
    "chi2_pvalue": (0.05, False),
    "total_variation": (0.1, True),
    "linf": (0.1, True),
}
# Label metrics: how much worse than the training run's held-out figure a window may be. Bounded metrics (higher is
# better) by an absolute drop; error metrics (lower is better) by a relative increase.
METRIC_RULES = {
    "metric_drop": 0.05,  # accuracy, f1, roc_auc, r2
    "error_increase": 0.2,  # rmse, mae, log_loss: 20 % above the held-out figure
}
NUMERIC_EFFECTS = ("psi", "js_distance", "wasserstein")
NUMERIC_TEST = "ks_pvalue"
CATEGORICAL_EFFECTS = ("js_distance", "total_variation", "linf")
CATEGORICAL_TEST = "chi2_pvalue"
ALIASES = {"js": "js_distance", "ks": "ks_pvalue", "chi2": "chi2_pvalue", "tv": "total_variation"}


def parse_thresholds(text: str | None) -> dict[str, float]:
    """The defaults with the user's overrides; a key that is not known or a value that is not a number is refused
    in one line naming the key."""
    chosen = {name: default for name, (default, _) in STATISTICS.items()} | dict(METRIC_RULES)
    if not text or not text.strip():
        return chosen
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"thresholds is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(given, dict):
        raise UserInputError(f'thresholds must be a JSON object such as {{"psi": 0.25}}, got {text!r}')
    for key, value in given.items():
        name = ALIASES.get(key, key)
        if name not in chosen:
            raise UserInputError(f"unknown threshold {key!r}; known: {', '.join(sorted(chosen))}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise UserInputError(f"threshold {key!r} must be a number of 0 or more, got {json.dumps(value)}")
        chosen[name] = float(value)
    return chosen


def crosses(statistic: str, value: float | None, thresholds: dict[str, float]) -> bool:
    """Whether `value` of `statistic` is on the drift side of its threshold."""
    if value is None or not math.isfinite(value):
        return False
    upward = STATISTICS[statistic][1]
    return value >= thresholds[statistic] if upward else value < thresholds[statistic]


def column_drifts(values: dict[str, float | None], kind_numeric: bool, thresholds: dict[str, float]) -> bool:
    """The rule in the module docstring, on one column's statistics."""
    effects, test = (NUMERIC_EFFECTS, NUMERIC_TEST) if kind_numeric else (CATEGORICAL_EFFECTS, CATEGORICAL_TEST)
    return crosses(test, values.get(test), thresholds) and any(crosses(e, values.get(e), thresholds) for e in effects)
