"""Package trained group models (skops bytes from the executors) as one pyfunc model, logged with a signature that
includes the group column, an input example from a trained group, and explicit requirements."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from pyspark.sql import DataFrame

from common.columns import col
from training.per_group.executor import TRAINED
from training.per_group.model import ARTIFACT, PerGroupModel, write_manifest
from training.sklearn.model import pinned_requirements

_INPUT_EXAMPLE_ROWS = 5
_FALLBACK_FILE = "fallback.skops"


def log_per_group_model(
    df: DataFrame,
    group: str,
    features: list[str],
    table: pd.DataFrame,
    fallback_row: pd.Series | None,
    registered_model_name: str | None = None,
):
    """`table`: one row per group with `status`, `group`, `model` (bytes) and `trusted_types` (JSON list)."""
    trained = table[table["status"] == TRAINED]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT
        folder.mkdir()
        # Files are numbered, not named after the group: group values may hold any character.
        groups = {
            row.group: _write(folder, f"group-{index:06d}.skops", row.model, row.trusted_types)
            for index, row in enumerate(trained.itertuples(index=False))
        }
        fallback = None
        if fallback_row is not None:
            fallback = _write(folder, _FALLBACK_FILE, fallback_row["model"], fallback_row["trusted_types"])
        write_manifest(folder, group, groups, fallback)

        first = trained.iloc[0]
        inputs = df.select(*[col(c) for c in (group, *features)])
        # An example every group-model can answer: rows of a trained group (an unseen group would be an error).
        example = inputs.where(col(group).cast("string") == first["group"]).limit(_INPUT_EXAMPLE_ROWS).toPandas()
        predicted = _load(first["model"], first["trusted_types"]).predict(example[features])
        with warnings.catch_warnings():
            # MLflow's hint that integer columns cannot hold missing values is about inputs; predictions never are.
            warnings.filterwarnings("ignore", message=".*integer column.*")
            outputs = infer_signature(predicted).inputs
        signature = ModelSignature(inputs=infer_signature(inputs).inputs, outputs=outputs)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=PerGroupModel(),
            artifacts={ARTIFACT: str(folder)},
            signature=signature,
            input_example=example,
            # What every group model needs (XGBoost's package for XGBoost groups), read from the types skops trusts.
            pip_requirements=pinned_requirements(_all_trusted_types(groups, fallback)),
            registered_model_name=registered_model_name,
            # In the MLmodel file, so a scorer can tell a routing model and its group column without loading it.
            metadata={"per_group": {"group_column": group, "groups": len(groups), "fallback": fallback is not None}},
        )


def _all_trusted_types(groups: dict[str, dict], fallback: dict | None) -> list[str]:
    entries = [*groups.values(), *([fallback] if fallback else [])]
    return sorted({t for entry in entries for t in entry["trusted_types"]})


def _write(folder: Path, name: str, blob: bytes, trusted_types: str) -> dict:
    (folder / name).write_bytes(blob)
    return {"file": name, "trusted_types": json.loads(trusted_types)}


def _load(blob: bytes, trusted_types: str):
    import skops.io as sio

    return sio.loads(blob, trusted=json.loads(trusted_types))
