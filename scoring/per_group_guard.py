"""Per-group models (training/per_group/train_per_group.py) know only the groups they were trained on. Without a
fallback, a row of another group would fail deep inside a Spark task; this checks the input's groups on the driver
first, so the user gets one clear error and nothing is written."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from common.columns import col
from common.errors import UserInputError
from common.per_group_format import group_key, read_manifest, unseen_groups_message


def group_column(metadata: dict | None) -> str | None:
    """The column a per-group model routes by (recorded in its MLmodel metadata), None for any other model."""
    return ((metadata or {}).get("per_group") or {}).get("group_column")


def check_groups_known(df: DataFrame, metadata: dict, model_dir: Path, model_label: str) -> None:
    """Refuse input with groups the model was not trained on (or rows without a group), unless it has a fallback."""
    if metadata["per_group"].get("fallback"):
        return
    manifest = read_manifest(model_dir)
    column = manifest["group_column"]
    counts = df.groupBy(col(column)).agg(F.count(F.lit(1)).alias("rows")).collect()  # one small job: distinct groups
    keys = {group_key(row[column]): row["rows"] for row in counts}
    missing = keys.pop(None, 0)
    unseen = [key for key in keys if key not in manifest["groups"]]
    if unseen or missing:
        message = unseen_groups_message(column, unseen, missing, len(manifest["groups"]))
        raise UserInputError(f"model {model_label}: {message}")
