"""Which columns of the inference table are profiled, and how: the baselines say what each column is (numeric or
categorical, feature, label, prediction or probability). A column a baseline has and the table does not, one the
table has and no baseline does, or one whose type no longer fits, is reported with why, never a crash."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame

from common.profile import FEATURE, LABEL, NUMERIC, class_probability_column
from monitoring.aggregation import ProfiledColumns
from monitoring.baselines import Baseline
from monitoring.inputs import PROBABILITY
from monitoring.values import is_numeric_type, is_profiled_type

MISSING, NOT_IN_BASELINE = "missing from the table", "not in the baseline"
_logger = logging.getLogger(__name__)


def plan_columns(
    df: DataFrame, baselines: dict[str, Baseline], ignored: set[str], labels_joined: bool
) -> tuple[ProfiledColumns, dict[str, str]]:
    """(the columns to profile, every column looked at -> its problem or ''). `ignored`: the table's own columns
    (model name and version, time, batch, ids) that no baseline describes."""
    kinds: dict[str, str] = {}
    roles: dict[str, str] = {}
    for baseline in sorted(
        baselines.values(), key=lambda b: int(b.version) if b.version.isdigit() else 0, reverse=True
    ):  # the newest version's word on a column's kind
        for name, summary in baseline.profile["columns"].items():
            kinds.setdefault(name, summary["kind"])
            roles.setdefault(name, summary["role"])
    seen: dict[str, str] = {}
    numeric, categorical = [], []
    for name, kind in kinds.items():
        if name not in df.columns:
            if roles[name] != LABEL or labels_joined:  # an inference table holds no label until labels are joined
                seen[name] = MISSING
            continue
        kind_in_table = df.schema[name].dataType.simpleString()
        if not is_profiled_type(df, name):
            seen[name] = f"type {kind_in_table} is not profiled"
        elif kind == NUMERIC and not is_numeric_type(df, name):
            seen[name] = f"numeric in the baseline, {kind_in_table} in the table"
        else:
            (numeric if kind == NUMERIC else categorical).append(name)
            seen[name] = ""
    for name in df.columns:
        if name not in kinds and name not in ignored and not name.startswith("__monitor_") and not _split(name, df):
            seen[name] = NOT_IN_BASELINE
    features = [name for name, role in roles.items() if role == FEATURE]
    if features and all(seen.get(name) == MISSING for name in features):
        _logger.warning(
            "the inference table has none of the model's features (%s): only predictions are monitored. Score with "
            "keep_features=true (score_batch, score_stream), or use serve's inference log, to monitor feature drift",
            ", ".join(features),
        )
    return ProfiledColumns(tuple(numeric), tuple(categorical), roles), seen


def _split(name: str, df: DataFrame) -> bool:
    """A multiclass `probability` array is profiled through its per-class columns (inputs.with_class_probabilities)."""
    prefix = class_probability_column("")[:-1]
    return name == PROBABILITY and any(c.startswith(prefix) for c in df.columns)
