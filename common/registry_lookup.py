"""Look up registered models and versions, with errors that list what does exist."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from common.errors import UserInputError

STAGES = ("Staging", "Production", "Archived")
ALIASED_STAGES = ("Staging", "Production")  # each has a same-named lower-case alias on the same version


@contextmanager
def stage_api() -> Iterator[None]:
    """Registry stages are deprecated in MLflow 3 but are the product's promise; silence the per-call warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*[Ss]tage.*")
        yield


def registry_writer(client: MlflowClient):
    """The model registry's own client behind `client`, for writes to a model the caller has read already.
    MlflowClient reads the registered model before each registry write to refuse a prompt: on a tracking server a
    request more per write, which a model read once need not repeat. The one place that reaches MlflowClient's
    private `_get_registry_client` (MLflow is pinned in requirements.lock)."""
    return client._get_registry_client()


def is_not_found(exc: MlflowException) -> bool:
    return exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def canonical_stage(stage: str) -> str:
    for known in STAGES:
        if stage.strip().lower() == known.lower():
            return known
    raise UserInputError(f"unknown stage {stage!r}; choose one of: {', '.join(STAGES)}")


def require_model(client: MlflowClient, name: str) -> RegisteredModel:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not is_not_found(exc):
            raise
    existing = sorted(m.name for m in client.search_registered_models(max_results=1000))
    listing = ", ".join(existing) if existing else "none yet (train with a model_name to register one)"
    raise UserInputError(f"registered model {name!r} does not exist; registered models: {listing}")


def list_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    versions = client.search_model_versions(f"name = '{_quote(name)}'", max_results=10000)
    return sorted(versions, key=lambda v: int(v.version))


def describe_versions(versions: list[ModelVersion], aliases: dict[str, str] | None = None) -> str:
    """'1 (Archived), 2 (Production, @production)' — what a user needs to pick a version."""
    by_version: dict[str, list[str]] = {}
    for alias, version in (aliases or {}).items():
        by_version.setdefault(str(version), []).append(f"@{alias}")
    parts = [f"{v.version} ({', '.join([v.current_stage, *by_version.get(str(v.version), [])])})" for v in versions]
    return ", ".join(parts) if parts else "none"


def require_version(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    """The given version of `name`, or its latest when `version` is None."""
    model = require_model(client, name)
    versions = list_versions(client, name)
    if not versions:
        raise UserInputError(f"registered model {name!r} has no versions")
    if version is None:
        return versions[-1]
    for candidate in versions:
        if str(candidate.version) == str(version).strip():
            return candidate
    raise UserInputError(
        f"model {name!r} has no version {version!r}; versions: {describe_versions(versions, model.aliases)}"
    )


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
