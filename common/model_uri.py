"""Resolve a model URI once to one concrete version, so a whole job scores with the same model.

`models:/name/<stage>` is resolved through the registry's stage API while it exists, and through the
same-named alias when it does not (MLflow has announced the removal of stages; promotions keep both in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ENDPOINT_NOT_FOUND, FEATURE_DISABLED, NOT_IMPLEMENTED, ErrorCode

from common.errors import UserInputError
from common.registry_lookup import (
    STAGES,
    describe_versions,
    list_versions,
    require_model,
    require_version,
    stage_api,
)

_STAGES_UNSUPPORTED = {ErrorCode.Name(code) for code in (NOT_IMPLEMENTED, ENDPOINT_NOT_FOUND, FEATURE_DISABLED)}
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))/?$")


@dataclass(frozen=True)
class ResolvedModel:
    requested_uri: str
    load_uri: str  # immutable: a version or run URI, never a stage or alias
    model_name: str | None  # None for runs:/ and paths, which are not registered versions
    model_version: str | None
    run_id: str | None

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.model_version}" if self.model_name else self.load_uri


def resolve_model_uri(client: MlflowClient, uri: str) -> ResolvedModel:
    match = _MODELS_URI.match(uri.strip())
    if not match:
        if uri.startswith("models:/"):
            raise UserInputError(
                f"cannot parse model URI {uri!r}; use models:/<name>/<version|stage|latest> or models:/<name>@<alias>"
            )
        return ResolvedModel(uri, uri, None, None, None)  # runs:/, a path, or another artifact URI
    name = match["name"]
    if match["alias"]:
        version = _by_alias(client, name, match["alias"])
    elif match["ref"].isdigit():
        version = str(require_version(client, name, match["ref"]).version)
    elif match["ref"].lower() == "latest":
        version = str(require_version(client, name, None).version)
    else:
        version = _by_stage(client, name, match["ref"])
    model_version = client.get_model_version(name, version)
    return ResolvedModel(uri, f"models:/{name}/{version}", name, version, model_version.run_id)


def _by_alias(client: MlflowClient, name: str, alias: str) -> str:
    model = require_model(client, name)
    if alias in model.aliases:
        return str(model.aliases[alias])
    aliases = ", ".join(f"@{a} -> {v}" for a, v in sorted(model.aliases.items())) or "none"
    raise UserInputError(f"model {name!r} has no alias {alias!r}; aliases: {aliases}")


def _by_stage(client: MlflowClient, name: str, stage: str) -> str:
    model = require_model(client, name)
    canonical = next((s for s in STAGES if s.lower() == stage.lower()), None)
    if canonical is None:
        raise UserInputError(
            f"{stage!r} in models:/{name}/{stage} is not a version number, 'latest' or a stage ({', '.join(STAGES)})"
        )
    version = _latest_in_stage(client, name, canonical)
    if version is None:  # stages gone (or never set): the promotion's alias names the same version
        version = model.aliases.get(canonical.lower())
    if version is None:
        versions = describe_versions(list_versions(client, name), model.aliases)
        raise UserInputError(
            f"model {name!r} has no version in stage {canonical} and no alias {canonical.lower()!r}; "
            f"versions: {versions}"
        )
    return str(version)


def _latest_in_stage(client: MlflowClient, name: str, stage: str) -> str | None:
    try:
        with stage_api():
            latest = client.get_latest_versions(name, stages=[stage])
    except (AttributeError, NotImplementedError):
        return None  # a client without the stage API
    except MlflowException as exc:
        if exc.error_code in _STAGES_UNSUPPORTED:
            return None  # a registry server without stage support
        raise
    return str(latest[0].version) if latest else None
