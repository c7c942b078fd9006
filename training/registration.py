"""Tag a model version as it is registered: the training jobs all say what task it does (the promotion gate
reads it), some say more (a per-group model's group column)."""

from __future__ import annotations

import json

import mlflow

CLASSES_TAG = "classes"  # a classifier's classes in the order of its probabilities, as JSON


def classes_tag(classes) -> dict[str, str]:
    """The tag naming a classifier's classes (numpy values as plain JSON numbers, strings, booleans)."""
    return {CLASSES_TAG: json.dumps([value.item() if hasattr(value, "item") else value for value in classes])}


def registered_version(info, model_name: str | None, tags: dict[str, str]) -> str | None:
    """The version `log_model(registered_model_name=model_name)` created, with `tags` set on it; None when the
    model was not registered."""
    if not model_name:
        return None
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    return version
