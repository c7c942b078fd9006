"""Evidently's data-drift report (its pandas engine) on the rows `monitor` judged, configured with the same statistics
and thresholds where Evidently has them, and the comparison, column by column, with what `monitor` wrote.

Evidently is a benchmark-only dependency (`pip install -c requirements.lock -e '.[bench]'`).

What cannot be configured the same, and how the comparison allows for it:
- Evidently's PSI and Jensen-Shannon bin a numeric column into Sturges' equal-width bins over both samples (about
  21 at a million rows); `monitor` uses the baseline's deciles (as Lakehouse Monitoring and most PSI practice do).
  The values differ by the binning; decisions are compared, values within PSI_JS_TOLERANCE.
- Evidently's Jensen-Shannon distance is in natural-log units (at most sqrt(ln 2)); `monitor`'s in base 2 (at most
  1). Evidently's values are converted to base 2 (divided by sqrt(ln 2)) and its threshold set to 0.1 * sqrt(ln 2).
- Evidently's chi-square is a goodness-of-fit test of the current counts against the reference shares; `monitor`'s
  a test of homogeneity of the two samples. Their p-values differ by design; decisions are compared.
- Evidently reports the KS p-value only (exact, from every row); `monitor`'s comes from quantile sketches (its
  statistic within 0.01 of the exact one), so the decisions are compared.
- Wasserstein: both divide by the reference standard deviation; within WASSERSTEIN_TOLERANCE (monitor's stated
  precision is 0.05 standard deviations).
"""

from __future__ import annotations

import math
import time

import pandas as pd

from bench._monitoring_data import CATEGORIES, NUMERIC

SQRT_LN2 = math.sqrt(math.log(2))
PSI_JS_TOLERANCE = 0.25  # relative, or 0.01 absolute, whichever is larger: different bins
WASSERSTEIN_TOLERANCE = 0.05  # standard deviations
# monitor's statistic -> (Evidently's stattest, numeric?, threshold given to Evidently, factor to monitor's units)
PAIRS = [
    ("psi", "psi", True, 0.2, 1.0),
    ("js_distance", "jensenshannon", True, 0.1 * SQRT_LN2, 1 / SQRT_LN2),
    ("wasserstein", "wasserstein", True, 0.1, 1.0),
    ("ks_pvalue", "ks", True, 0.05, 1.0),
    ("js_distance", "jensenshannon", False, 0.1 * SQRT_LN2, 1 / SQRT_LN2),
    ("chi2_pvalue", "chisquare", False, 0.05, 1.0),
]
P_VALUES = {"ks", "chisquare"}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[dict, float, dict, float]:
    """(column -> default-method drift decision, seconds of the default data-drift report, (column, stattest) ->
    value in monitor's units, seconds of the per-statistic report)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    categorical = list(CATEGORIES)
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=categorical)

    def datasets():
        return (
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )

    started = time.perf_counter()
    default = Report([DataDriftPreset(columns=[*NUMERIC, *categorical])]).run(*datasets()).dict()
    default_seconds = time.perf_counter() - started
    decisions = {}
    for metric in default["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            # Evidently's default methods are distances (wasserstein, jensenshannon) for samples over 1,000 rows
            decisions[config["column"]] = metric["value"] >= config["threshold"]

    metrics = [
        ValueDrift(column=column, method=stattest, threshold=threshold)
        for _, stattest, numeric, threshold, _ in PAIRS
        for column in (NUMERIC if numeric else categorical)
    ]
    started = time.perf_counter()
    report = Report(metrics).run(*datasets()).dict()
    per_statistic_seconds = time.perf_counter() - started
    factors = {(stattest, numeric): factor for _, stattest, numeric, _, factor in PAIRS}
    values = {}
    for metric in report["metrics"]:
        config = metric["config"]
        column, stattest = config["column"], config["method"]
        values[(column, stattest)] = metric["value"] * factors[(stattest, column in NUMERIC)]
    return decisions, default_seconds, values, per_statistic_seconds


def compare(ours: pd.DataFrame, decisions: dict, values: dict) -> tuple[list[list[object]], list[str]]:
    """Rows of the comparison table and the disagreements, from `ours` (the drift table's baseline rows of the
    window: column_name, statistic, value, drifted)."""
    mine = {(r.column_name, r.statistic): (r.value, bool(r.drifted)) for r in ours.itertuples()}
    rows, disagreements = [], []
    for statistic, stattest, numeric, threshold, factor in PAIRS:
        columns = NUMERIC if numeric else list(CATEGORIES)
        same, worst = 0, 0.0
        for column in columns:
            value, flagged = mine[(column, statistic)]
            theirs = values[(column, stattest)]
            their_flag = theirs < threshold if stattest in P_VALUES else theirs >= threshold * factor
            if flagged == their_flag:
                same += 1
            else:
                disagreements.append(f"{column} {statistic}: monitor {value:.4g}, Evidently {theirs:.4g}")
            if stattest not in P_VALUES:
                worst = max(worst, _gap(statistic, value, theirs))
        kind = "numeric" if numeric else "categorical"
        tolerance = _tolerance(statistic) if stattest not in P_VALUES else "decisions only"
        gap = worst if stattest not in P_VALUES else float("nan")
        rows.append([f"{statistic} vs {stattest} ({kind})", f"{same}/{len(columns)}", gap, tolerance])
    same = 0
    for column in [*NUMERIC, *CATEGORIES]:
        flagged = mine[(column, "drift")][1]
        if flagged == decisions[column]:
            same += 1
        else:
            disagreements.append(f"{column}: monitor's rule {flagged}, Evidently's default {decisions[column]}")
    rows.append(
        ["column drifted: monitor's rule vs Evidently's default", f"{same}/{len(decisions)}", float("nan"), "-"]
    )
    return rows, disagreements


def _gap(statistic: str, ours: float, theirs: float) -> float:
    """The gap in the unit its tolerance is stated in: relative for PSI and JS, absolute for Wasserstein."""
    if statistic == "wasserstein":
        return abs(ours - theirs)
    return abs(ours - theirs) / max(abs(theirs), 0.01 / PSI_JS_TOLERANCE)


def _tolerance(statistic: str) -> str:
    if statistic == "wasserstein":
        return f"<= {WASSERSTEIN_TOLERANCE} sd"
    return f"<= {PSI_JS_TOLERANCE:.0%} rel. (or 0.01)"
