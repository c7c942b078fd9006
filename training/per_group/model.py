"""One registered model for many groups: a pyfunc that routes each row to the scikit-learn model of its group.

The group models travel as skops files in one artifact folder, with a manifest naming each group's file and the
exact types skops must trust to load it. A row whose group was not trained is an error, or goes to the declared
fallback model (trained on every group) when there is one: never to some default model.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from common.per_group_format import (  # noqa: F401 - ARTIFACT, MANIFEST, read_manifest: this model's format
    ARTIFACT,
    MANIFEST,
    group_key,
    read_manifest,
    unseen_groups_message,
    write_manifest,
)

# How many group models this Python process has deserialized. Scoring loads the pyfunc once per worker, so in a
# worker this equals the number of groups (plus the fallback) however many batches it scores; a test checks it.
_models_loaded = 0


def group_models_loaded() -> int:
    return _models_loaded


class UnseenGroupError(ValueError):
    """Rows of a group the model was not trained on, and no fallback model was declared."""


def _load(path: Path, trusted_types: list[str]):
    import skops.io as sio

    global _models_loaded
    model = sio.loads(path.read_bytes(), trusted=trusted_types)
    _models_loaded += 1
    return model


class PerGroupModel(mlflow.pyfunc.PythonModel):
    """Routes rows by the group column; all group models are loaded once, in `load_context`."""

    def load_context(self, context) -> None:
        folder = Path(context.artifacts[ARTIFACT])
        manifest = json.loads((folder / MANIFEST).read_text())
        self.group_column = manifest["group_column"]
        self.models = {key: _load(folder / e["file"], e["trusted_types"]) for key, e in manifest["groups"].items()}
        fallback = manifest.get("fallback")
        self.fallback = _load(folder / fallback["file"], fallback["trusted_types"]) if fallback else None

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        if self.group_column not in model_input.columns:
            raise ValueError(f"input has no group column {self.group_column!r}; the model routes rows by it")
        # Factorize once (vectorized), then turn only the distinct values into keys.
        codes, uniques = pd.factorize(model_input[self.group_column], use_na_sentinel=True)
        keys = [group_key(value) for value in uniques]
        self._check_seen(keys, codes)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(-1, len(keys) + 1))
        parts, positions = [], []
        for code in range(-1, len(keys)):
            rows = order[bounds[code + 1] : bounds[code + 2]]
            if len(rows) == 0:
                continue
            model = self.fallback if code < 0 else self.models.get(keys[code], self.fallback)
            parts.append(np.asarray(model.predict(model_input.iloc[rows])))
            positions.append(rows)
        if not parts:
            return np.array([])
        values = np.concatenate(parts)
        result = np.empty_like(values)
        result[np.concatenate(positions)] = values
        return result

    def _check_seen(self, keys: list[str | None], codes: np.ndarray) -> None:
        if self.fallback is not None:
            return
        unseen = [key for key in keys if key is not None and key not in self.models]
        missing = int((codes < 0).sum())
        if unseen or missing:
            raise UnseenGroupError(unseen_groups_message(self.group_column, unseen, missing, len(self.models)))
