"""Promote a registered model version: the lock, the champion/challenger gate in front of Production, the
registry move, and the tracking run that records who, why and the gate's outcome. Used by the `promote` and
`rollback` jobs and the quickstart."""

from __future__ import annotations

import json
from collections.abc import Callable

import mlflow
from pyspark.sql import SparkSession

from common.errors import UserInputError
from common.model_uri import ResolvedModel, resolve_model_uri
from common.registry_lookup import canonical_stage, require_version
from common.settings import Settings
from common.spark import build_spark
from common.tracking import log_new_params, tracked_run
from registry.gate import (
    GateResult,
    check_compatible_signatures,
    evaluation_frame,
    judge,
    parse_thresholds,
    score_metrics,
)
from registry.lock import DEFAULT_TTL_S, PromotionConflict, promotion_lock
from registry.promoter import host, promoter
from registry.stages import Promotion, promote

PROMOTION_TAG = "lifecycle.promotion.model"  # marks a promotion's tracking run; `history` searches for it
PROMOTED_BY_TAG, PROMOTED_FROM_TAG = "lifecycle.promotion.by", "lifecycle.promotion.host"
_WRITE_MARGIN_S = 120.0  # the lock time a registry move needs at least (its requests, with the client's retries)


class PromotionRefused(UserInputError):
    """The gate said no; nothing was changed."""


def promote_version(
    settings: Settings,
    model_name: str,
    stage: str,
    version: str | None = None,
    reason: str | None = None,
    data: str | None = None,
    thresholds: str | None = None,
    force: bool = False,
    spark: SparkSession | Callable[[], SparkSession] | None = None,
    rollback: bool = False,
    lock_ttl_s: float = DEFAULT_TTL_S,
) -> Promotion:
    """`spark` (or a factory for it) is only needed, and only built, when the gate runs. A rollback puts back a
    version that was in Production before, so it does not pass the gate again. `lock_ttl_s`: how long a promotion
    that died blocks the next one (registry/lock.py)."""
    client = mlflow.MlflowClient()
    # Check before a tracking run is opened, so a typo leaves no trace in the store.
    target_stage = canonical_stage(stage)
    candidate = require_version(client, model_name, version)
    if force and not reason:
        raise UserInputError("force=true skips the gate and needs a reason (reason=...)")
    try:
        with promotion_lock(client, model_name, f"v{candidate.version} -> {target_stage}", lock_ttl_s) as lock:
            gate = None
            if target_stage == "Production" and not (force or rollback):
                gate = _run_gate(client, settings, model_name, candidate, data, thresholds, spark)
            lock.require_time_left(model_name, min(_WRITE_MARGIN_S, lock.ttl_s / 2))
            record = _record(gate, force, rollback)
            with tracked_run(settings, run_name=f"promote-{model_name}", tags=_run_tags(model_name, reason, record)):
                result = promote(client, model_name, str(candidate.version), target_stage, reason, record)
                log_new_params(
                    {
                        "model_name": model_name,
                        "version": version or "",
                        "stage": stage,
                        "promoted_version": result.version,
                        "target_stage": result.stage,
                        "force": force,
                    }
                )
                mlflow.set_tags(
                    {
                        "lifecycle.promotion.version": result.version,
                        "lifecycle.promotion.stage": result.stage,
                        "previous_stage": result.previous_stage,
                        "archived_versions": ",".join(result.archived_versions),
                    }
                )
                if gate is not None:
                    mlflow.log_metrics({f"candidate_{k}": v for k, v in gate.candidate.items()})
                    mlflow.log_metrics({f"champion_{k}": v for k, v in (gate.champion or {}).items()})
                _describe_version(client, result, reason, gate, record.get("gate", ""))
                return result
    except PromotionConflict as exc:
        raise UserInputError(f"not promoted: {exc}") from exc


def _run_gate(client, settings, name, candidate, data, thresholds, spark) -> GateResult:
    champion = _current_production(client, name)
    candidate_model = resolve_model_uri(client, f"models:/{name}/{candidate.version}")
    if champion is not None and champion.model_version != str(candidate.version):
        check_compatible_signatures(
            mlflow.models.get_model_info(candidate_model.load_uri),
            mlflow.models.get_model_info(champion.load_uri),
            name,
            str(candidate.version),
            champion.model_version,
        )
    else:
        champion = None
    rows, label, task = evaluation_frame(client, candidate, data)
    rules = parse_thresholds(thresholds, task)
    session = spark() if callable(spark) else spark or build_spark(settings, app_name="promote-gate")
    candidate_metrics = score_metrics(session, candidate_model, rows, label, task)
    champion_metrics = score_metrics(session, champion, rows, label, task) if champion else None
    gate = judge(candidate_metrics, champion_metrics, rules)
    if not gate.passed:
        against = f"Production version {champion.model_version}" if champion else "the thresholds"
        raise PromotionRefused(
            f"{name} version {candidate.version} was not promoted: it does not pass the gate against {against} "
            f"on {rows.num_rows} rows; nothing was changed.\n{gate.table()}\n" + "\n".join(gate.failures)
        )
    return gate


def _current_production(client, name: str) -> ResolvedModel | None:
    try:
        return resolve_model_uri(client, f"models:/{name}/production")
    except UserInputError:
        return None  # no Production version yet


_GATE_TAGS = ("gate", "gate_candidate_metrics", "gate_champion_metrics", "gate_thresholds")


def _record(gate: GateResult | None, force: bool, rollback: bool = False) -> dict[str, str]:
    """The gate's outcome as version tags; every gate tag is set, so none is left over from an earlier promotion."""
    record = dict.fromkeys(_GATE_TAGS, "")
    if rollback:
        record["gate"] = "not run (rollback)"
    elif force:
        record["gate"] = "skipped (force)"
    elif gate is not None:
        record.update(
            gate="passed",
            gate_candidate_metrics=json.dumps(gate.candidate, sort_keys=True),
            gate_champion_metrics=json.dumps(gate.champion, sort_keys=True) if gate.champion else "",
            gate_thresholds=json.dumps(gate.thresholds, sort_keys=True),
        )
    return record


def _run_tags(name: str, reason: str | None, record: dict[str, str]) -> dict[str, str]:
    return {
        PROMOTION_TAG: name,
        "lifecycle.promotion.reason": reason or "",
        "lifecycle.promotion.gate": record.get("gate", ""),
        PROMOTED_BY_TAG: promoter(),
        PROMOTED_FROM_TAG: host(),
    }


def _describe_version(client, result: Promotion, reason: str | None, gate: GateResult | None, outcome: str) -> None:
    """The version's description, shown on its page in the MLflow UI."""
    tags = client.get_model_version(result.model_name, result.version).tags
    lines = [
        f"{result.stage} since {tags.get('promoted_at')} by {tags.get('promoted_by')} on {tags.get('promoted_from')}: "
        f"{reason or 'no reason given'}."
    ]
    if gate is None and outcome:
        lines.append(f"Gate: {outcome}.")
    elif gate is not None:
        lines.append("Gate passed:\n" + gate.table())
    client.update_model_version(result.model_name, result.version, description="\n".join(lines))
