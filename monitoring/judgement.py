"""A computed window group turned into table rows and a verdict: its profile rows, its drift rows against the
version's baseline and against the previous window, its label metrics against the training run's held-out ones, and
what the window says: ok, drift (columns that drifted from the baseline), degraded (metrics), or insufficient.

The retraining policy reads the verdicts: at least `violations` of the last `windows` judged windows drifted or
degraded (Databricks MLOps stacks' num_violation_windows of num_evaluation_windows; 2 of 5 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.profile import NUMERIC, QUANTILE_LEVELS
from monitoring.aggregation import GroupProfile
from monitoring.baselines import Baseline
from monitoring.comparison import ColumnComparison, compare_column, statistics_of
from monitoring.thresholds import STATISTICS, crosses
from training.evaluation import GREATER_IS_BETTER

TABLE = ":table"  # the column name of rows about the whole window (rows, labelled share, label metrics)
BASELINE, PREVIOUS = "baseline", "previous_window"
OK, INSUFFICIENT = "ok", "insufficient"
# The quantiles the profile table shows; the whole grid (QUANTILE_LEVELS) is kept in the state table's profile JSON.
PROFILE_QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class Verdict:
    rows: int
    drifted: tuple[str, ...]
    degraded: tuple[str, ...]
    insufficient: bool

    @property
    def violated(self) -> bool:
        return bool(self.drifted or self.degraded)

    def text(self) -> str:
        if self.insufficient:
            return f"{INSUFFICIENT}: {self.rows} rows"
        parts = [f"degraded: {', '.join(self.degraded)}"] if self.degraded else []
        parts += [f"drift: {', '.join(self.drifted)}"] if self.drifted else []
        return "; ".join(parts) or OK


def judge_group(
    profile: GroupProfile,
    baseline: Baseline,
    previous: tuple[int, GroupProfile] | None,
    columns_seen: dict[str, str],
    thresholds: dict[str, float],
    min_rows: int,
) -> tuple[list[dict], list[dict], Verdict]:
    """(profile rows, drift rows, verdict). `columns_seen`: every column monitor looked at -> its problem, if any
    ("missing from the table", "not in the baseline", a type it cannot profile) or ''."""
    insufficient = profile.rows < min_rows
    profile_rows = _table_rows(profile, min_rows)
    drift_rows: list[dict] = []
    drifted = []
    reference_columns = baseline.profile["columns"]
    for name, problem in sorted(columns_seen.items()):
        reference = reference_columns.get(name)
        window = profile.columns.get(name)
        role = (reference or {}).get("role", "")
        if problem or reference is None or window is None:
            why = problem or ("not in this version's baseline" if reference is None else "missing from the table")
            drift_rows.append(_row(name, role, "drift", BASELINE, None, None, False, why))
            continue
        profile_rows += summary_rows(name, role, window, reference.get("bin_edges"))
        comparisons = [(BASELINE, None, reference)]
        if previous is not None and name in previous[1].columns:
            comparisons.append((PREVIOUS, previous[0], previous[1].columns[name]))
        for comparison, against, reference_summary in comparisons:
            if insufficient:
                status = f"{INSUFFICIENT}: {profile.rows} rows in the window (fewer than {min_rows})"
                result = ColumnComparison(dict.fromkeys(statistics_of(reference["kind"])), False, status)
            else:
                result = compare_column(reference_summary, window, thresholds, min_rows)
            for statistic in statistics_of(reference["kind"]):
                value = result.values.get(statistic)
                threshold = thresholds.get(statistic) if statistic in STATISTICS else None
                crossed = _crossed(statistic, value, threshold)
                drift_rows.append(
                    _row(name, role, statistic, comparison, against, value, crossed, result.status, threshold)
                )
            judged = any(v is not None for v in result.values.values())
            verdict_value = float(result.drifted) if judged else None
            drift_rows.append(
                _row(name, role, "drift", comparison, against, verdict_value, result.drifted, result.status)
            )
            if comparison == BASELINE and result.drifted:
                drifted.append(name)
    degraded = _metric_rows(profile, baseline, thresholds, min_rows, drift_rows)
    verdict = Verdict(profile.rows, () if insufficient else tuple(drifted), tuple(degraded), insufficient)
    return profile_rows, drift_rows, verdict


def summary_rows(name: str, role: str, summary: dict, edges: list[float] | None) -> list[dict]:
    """A column summary as profile-table rows: one per statistic, quantile, bin or category."""
    rows = [
        _stat(name, role, s, summary.get(s))
        for s in ("count", "nulls", "min", "max", "mean", "std", "distinct")
        if s in summary
    ]
    if summary["kind"] == NUMERIC:
        for level, q in zip(QUANTILE_LEVELS, summary.get("quantiles") or [], strict=False):
            if round(level, 2) in PROFILE_QUANTILES:
                rows.append(_stat(name, role, "quantile", q, point=level))
        bounds = [float("-inf"), *(edges or []), float("inf")]
        for i, count in enumerate(summary.get("bin_counts") or []):
            rows.append(_stat(name, role, "bin_count", count, point=i, category=f"[{bounds[i]:g}, {bounds[i + 1]:g})"))
    else:
        rows += [_stat(name, role, "category_count", n, category=v) for v, n in sorted(summary["categories"].items())]
        rows.append(_stat(name, role, "other_count", summary.get("other", 0)))
    return rows


@dataclass(frozen=True)
class RetrainingDecision:
    due: bool
    violated: int  # windows among the last `windows` judged that drifted or degraded
    judged: int
    violations: int
    windows: int

    def describe(self) -> str:
        verdict = "due" if self.due else "not due"
        return (
            f"retraining {verdict} ({self.violated} of the last {self.judged} judged windows violated; policy: "
            f"{self.violations} of {self.windows})"
        )


def retraining_decision(verdicts: list[str], violations: int = 2, windows: int = 5) -> RetrainingDecision:
    """At least `violations` of the last `windows` judged windows (verdict texts, oldest first; insufficient ones
    skipped) drifted or degraded."""
    judged = [v for v in verdicts if not v.startswith(INSUFFICIENT)][-windows:]
    violated = sum(v != OK for v in judged)
    return RetrainingDecision(violated >= violations, violated, len(judged), violations, windows)


def _table_rows(profile: GroupProfile, min_rows: int) -> list[dict]:
    rows = [_stat(TABLE, "", "rows", profile.rows), _stat(TABLE, "", "labelled_rows", profile.labelled)]
    if profile.rows:
        rows.append(_stat(TABLE, "", "labelled_share", profile.labelled / profile.rows))
    if profile.labelled >= min_rows:
        rows += [_stat(TABLE, "label_metric", name, value) for name, value in sorted(profile.metrics.items())]
    return rows


def _metric_rows(profile, baseline: Baseline, thresholds, min_rows: int, out: list[dict]) -> list[str]:
    degraded = []
    for name, value in sorted(profile.metrics.items()):
        held_out = baseline.metrics.get(name)
        if held_out is None:
            continue
        if GREATER_IS_BETTER[name]:
            bound, worse = held_out - thresholds["metric_drop"], value < held_out - thresholds["metric_drop"]
        else:
            bound = held_out * (1 + thresholds["error_increase"])
            worse = value > bound
        if profile.labelled < min_rows:
            status = f"{INSUFFICIENT}: {profile.labelled} labelled rows (fewer than {min_rows})"
            out.append(_row(TABLE, "label_metric", name, BASELINE, None, None, False, status, bound))
            continue
        status = f"held-out {held_out:.4f}"
        out.append(_row(TABLE, "label_metric", name, BASELINE, None, value, worse, status, bound))
        if worse:
            degraded.append(name)
    return degraded


def _crossed(statistic: str, value: float | None, threshold: float | None) -> bool:
    if value is None or threshold is None:
        return bool(statistic == "new_categories" and value)
    return crosses(statistic, value, {statistic: threshold})


def _stat(name, role, statistic, value, point=None, category=None) -> dict:
    return {
        "column_name": name,
        "role": role,
        "statistic": statistic,
        "point": None if point is None else float(point),
        "category": category,
        "value": None if value is None else float(value),
    }


def _row(name, role, statistic, comparison, against, value, drifted, status, threshold=None) -> dict:
    return {
        "column_name": name,
        "role": role,
        "statistic": statistic,
        "comparison": comparison,
        "compared_window_key": against,
        "value": value,
        "threshold": threshold,
        "drifted": bool(drifted),
        "status": status,
    }
