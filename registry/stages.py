"""Move a version between registry stages, keeping the lower-case stage aliases on the same versions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient

from common.registry_lookup import (
    ALIASED_STAGES,
    canonical_stage,
    list_versions,
    registry_writer,
    require_version,
    stage_api,
)
from registry.promoter import host, promoter

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    stage: str
    previous_stage: str
    archived_versions: tuple[str, ...]  # versions that held `stage` before and were archived

    def summary(self) -> str:
        archived = f"; archived {', '.join(self.archived_versions)}" if self.archived_versions else ""
        return f"{self.model_name} version {self.version}: {self.previous_stage} -> {self.stage}{archived}"


def promote(
    client: MlflowClient,
    name: str,
    version: str | None,
    stage: str,
    reason: str | None = None,
    record: dict[str, str] | None = None,
) -> Promotion:
    """Move `version` (default: the latest) of `name` to `stage`.

    Everything is validated before anything changes. The version that held the stage before is archived, and
    the aliases `staging` / `production` are moved so that `models:/name/<stage>` and `models:/name@<stage>`
    name the same version. `record`: more version tags to set (the gate's outcome).
    """
    target_stage = canonical_stage(stage)
    target = require_version(client, name, version)
    target_version = str(target.version)
    previous_holders = [
        str(v.version)
        for v in list_versions(client, name)
        if v.current_stage == target_stage and str(v.version) != target_version
    ]
    archive_others = target_stage in ALIASED_STAGES
    with stage_api():
        client.transition_model_version_stage(
            name, target_version, target_stage, archive_existing_versions=archive_others
        )
    sync_stage_aliases(client, name)
    if target_stage != "Archived" and target.tags.get("archived_by"):
        # No longer true. Emptied, not deleted: deleting a version's tag takes MANAGE on a tracking server with
        # accounts, and a promoter has EDIT.
        set_version_tags(client, name, target_version, {"archived_by": ""})
    extra = dict(record or {})
    if target_stage == "Production":  # what a rollback puts back; cleared when nothing held Production
        extra["previous_production"] = previous_holders[-1] if previous_holders else ""
    _record(client, name, target_version, target_stage, reason, extra)
    archived = tuple(previous_holders) if archive_others else ()
    for old in archived:
        archived_by = f"promotion of version {target_version} to {target_stage}"
        set_version_tags(client, name, old, {"archived_by": archived_by})
    _logger.info(
        "%s version %s: %s -> %s (archived %s)",
        name,
        target_version,
        target.current_stage,
        target_stage,
        archived,
    )
    return Promotion(name, target_version, target_stage, target.current_stage, archived)


def sync_stage_aliases(client: MlflowClient, name: str) -> dict[str, str | None]:
    """Point each stage alias at the newest version in that stage; drop it when no version is in the stage."""
    versions = list_versions(client, name)
    current_aliases = client.get_registered_model(name).aliases
    result: dict[str, str | None] = {}
    for stage in ALIASED_STAGES:
        alias = stage.lower()
        holders = [str(v.version) for v in versions if v.current_stage == stage]
        holder = holders[-1] if holders else None
        if holder is not None and str(current_aliases.get(alias)) != holder:
            client.set_registered_model_alias(name, alias, holder)
        elif holder is None and alias in current_aliases:
            client.delete_registered_model_alias(name, alias)
        result[alias] = holder
    return result


def _record(
    client: MlflowClient, name: str, version: str, stage: str, reason: str | None, extra: dict[str, str]
) -> None:
    """Who moved the version where, when and why, as version tags (visible in the MLflow UI)."""
    tags = {
        "promoted_to": stage,
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promoted_by": promoter(),
        "promoted_from": host(),
        "promotion_reason": reason or "",
        **extra,
    }
    set_version_tags(client, name, version, tags)


def set_version_tags(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    """Set tags on a version the caller has read already (require_version): one request per tag, through
    registry_writer (MlflowClient's own set_model_version_tag would read the model before every tag, doubling the
    requests of a promotion's record, ten tags and more, on a tracking server)."""
    registry = registry_writer(client)
    for key, value in tags.items():
        registry.set_model_version_tag(name, version, key, value)
