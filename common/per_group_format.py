"""The on-disk format of a per-group model, shared by training (which writes it) and scoring (which checks an
input's groups against it before scoring): a folder of skops files and a manifest naming each group's file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
ARTIFACT = "group_models"  # the key of the artifact folder in the pyfunc's `artifacts`
_SHOWN_UNSEEN = 5


def group_key(value) -> str | None:
    """The manifest's key for a group value: the same string whether the value arrives from Spark training
    (numpy scalars) or from scoring (after pyfunc's signature enforcement). None for a missing value."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # an integer group column widened to float by missing values elsewhere
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def write_manifest(folder: Path, group_column: str, groups: dict[str, dict], fallback: dict | None) -> None:
    """`groups`: key -> {"file": name in `folder`, "trusted_types": [...]}; `fallback` the same, or None."""
    manifest = {"group_column": group_column, "groups": groups, "fallback": fallback}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def unseen_groups_message(group_column: str, unseen: list[str], missing: int, trained: int) -> str:
    """What a user reads when rows belong to no trained group: the values, how many rows lack one, what to do."""
    problems = []
    if unseen:
        shown = ", ".join(repr(k) for k in sorted(unseen)[:_SHOWN_UNSEEN])
        more = f" (and {len(unseen) - _SHOWN_UNSEEN} more)" if len(unseen) > _SHOWN_UNSEEN else ""
        problems.append(f"{len(unseen)} {group_column} value(s) unseen in training: {shown}{more}")
    if missing:
        problems.append(f"{missing} row(s) without a {group_column}")
    return (
        "; ".join(problems) + f". This per-group model has no fallback: score only the {trained} "
        "trained groups, or retrain with fallback=global to score the others with a model of all groups"
    )


def read_manifest(model_dir: Path) -> dict:
    """The manifest inside a downloaded per-group model (wherever pyfunc put its artifacts folder)."""
    (path,) = Path(model_dir).rglob(f"{ARTIFACT}/{MANIFEST}")
    return json.loads(path.read_text())
