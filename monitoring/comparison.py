"""One column's drift statistics between a reference summary (the baseline, or the previous window) and a window's,
and whether the column drifted (monitoring/thresholds.py's rule). Too few values on either side: no statistic is
computed from noise; each is reported as insufficient instead."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.profile import NUMERIC, QUANTILE_LEVELS
from monitoring import drift
from monitoring.thresholds import column_drifts

NUMERIC_STATISTICS = ("psi", "js_distance", "wasserstein", "ks_statistic", "ks_pvalue")
CATEGORICAL_STATISTICS = ("chi2_pvalue", "js_distance", "total_variation", "linf", "new_categories")


@dataclass
class ColumnComparison:
    values: dict[str, float | None]  # statistic -> value (None: not computed)
    drifted: bool
    status: str = "ok"  # or why nothing was computed, or what else was seen (new categories)
    new_categories: list[str] = field(default_factory=list)


def statistics_of(kind: str) -> tuple[str, ...]:
    return NUMERIC_STATISTICS if kind == NUMERIC else CATEGORICAL_STATISTICS


def compare_column(reference: dict, window: dict, thresholds: dict[str, float], min_rows: int) -> ColumnComparison:
    kind = reference["kind"]
    if window["kind"] != kind:
        return _nothing(kind, f"kind changed: {kind} in the reference, {window['kind']} in the window")
    smaller = min(reference["count"], window["count"])
    if smaller < min_rows:
        side = "window" if window["count"] <= reference["count"] else "reference"
        return _nothing(kind, f"insufficient: {smaller} values in the {side} (fewer than {min_rows})")
    if kind == NUMERIC:
        values = _numeric(reference, window)
        return ColumnComparison(values, column_drifts(values, True, thresholds))
    labels, ref_counts, win_counts = drift.aligned_categories(reference, window)
    new = drift.new_categories(reference, window)
    values = {
        "chi2_pvalue": drift.chi_square_pvalue(ref_counts, win_counts),
        "js_distance": drift.js_distance(ref_counts, win_counts),
        "total_variation": drift.total_variation(ref_counts, win_counts),
        "linf": drift.linf(ref_counts, win_counts),
        "new_categories": None if new is None else float(len(new)),
    }
    status = f"new categories: {', '.join(new[:10])}{' ...' if len(new) > 10 else ''}" if new else "ok"
    return ColumnComparison(values, column_drifts(values, False, thresholds), status, new or [])


def _numeric(reference: dict, window: dict) -> dict[str, float | None]:
    ref_bins, win_bins = reference["bin_counts"], window["bin_counts"]
    ks = drift.ks_statistic(reference["quantiles"], window["quantiles"], QUANTILE_LEVELS)
    wasserstein = drift.wasserstein(
        reference["quantiles"], window["quantiles"], QUANTILE_LEVELS, reference["mean"], window["mean"]
    )
    std = reference.get("std")
    return {
        "psi": drift.psi(ref_bins, win_bins),
        "js_distance": drift.js_distance(ref_bins, win_bins),
        # A constant reference column has no spread to scale by; any move of a constant is then a full drift.
        "wasserstein": wasserstein / std if std else (0.0 if wasserstein == 0 else float("inf")),
        "ks_statistic": ks,
        "ks_pvalue": drift.ks_pvalue(
            drift.ks_lower_bound(reference["quantiles"], window["quantiles"], QUANTILE_LEVELS),
            reference["count"],
            window["count"],
        ),
    }


def _nothing(kind: str, status: str) -> ColumnComparison:
    return ColumnComparison(dict.fromkeys(statistics_of(kind)), False, status)
