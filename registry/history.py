"""Entry point `history`: a model's promotion timeline (version, stage, when, who, why, gate metrics), any
drift between stages and aliases, and each version's last reproduction verdict.

    python -m registry.history --model-name cancer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow

from common.cli import run_cli
from common.params import param, parse_params
from common.profile import MONITORING_STATUS_TAG, MONITORING_WINDOW_TAG
from common.provenance import REPRODUCTION_RUN_TAG, REPRODUCTION_VERDICT_TAG
from common.registry_lookup import ALIASED_STAGES, list_versions, require_model
from common.tracking import job_settings
from registry.promotion import PROMOTED_BY_TAG, PROMOTED_FROM_TAG, PROMOTION_TAG


@dataclass(frozen=True)
class Event:
    when: str
    version: str
    stage: str
    who: str  # the tracking account (basic-auth) or the OS user
    host: str
    why: str
    gate: str
    metrics: dict[str, float]


def timeline(client: mlflow.MlflowClient, name: str) -> list[Event]:
    """Every promotion's tracking run, oldest first (the registry itself keeps only the latest state)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`{PROMOTION_TAG}` = '{name}'", order_by=["attributes.start_time ASC"], max_results=5000
    )
    return [
        Event(
            when=datetime.fromtimestamp(r.info.start_time / 1000, UTC).isoformat(timespec="seconds"),
            version=r.data.tags.get("lifecycle.promotion.version", "?"),
            stage=r.data.tags.get("lifecycle.promotion.stage", "?"),
            # Runs from before promotions recorded who promoted: the OS user MLflow tags every run with.
            who=r.data.tags.get(PROMOTED_BY_TAG) or r.data.tags.get("mlflow.user", "?"),
            host=r.data.tags.get(PROMOTED_FROM_TAG, "?"),
            why=r.data.tags.get("lifecycle.promotion.reason", ""),
            gate=r.data.tags.get("lifecycle.promotion.gate", ""),
            metrics=dict(r.data.metrics),
        )
        for r in runs
    ]


def drift(client: mlflow.MlflowClient, name: str) -> list[str]:
    """Where a stage and its alias disagree (e.g. after someone moved one of them by hand)."""
    model = require_model(client, name)
    versions = list_versions(client, name)
    problems = []
    for stage in ALIASED_STAGES:
        holders = [str(v.version) for v in versions if v.current_stage == stage]
        alias = model.aliases.get(stage.lower())
        alias = str(alias) if alias is not None else None
        if len(holders) > 1:
            problems.append(f"{len(holders)} versions are in {stage}: {', '.join(holders)}")
        if (holders[-1] if holders else None) != alias:
            problems.append(
                f"stage {stage} holds {'version ' + holders[-1] if holders else 'no version'} but "
                f"@{stage.lower()} points to {'version ' + alias if alias else 'nothing'}"
            )
    return problems


def reproductions(client: mlflow.MlflowClient, name: str) -> dict[str, str]:
    """{version: "<verdict> (run <id>)"} for every version `reproduce` has judged."""
    return {
        str(v.version): f"{v.tags[REPRODUCTION_VERDICT_TAG]} (run {v.tags.get(REPRODUCTION_RUN_TAG, '?')})"
        for v in list_versions(client, name)
        if REPRODUCTION_VERDICT_TAG in v.tags
    }


@dataclass(frozen=True)
class HistoryParams:
    model_name: str = param(help="the registered model")


def main(argv: Sequence[str] | None = None) -> tuple[list[Event], list[str]]:
    name = parse_params(HistoryParams, argv).model_name
    job_settings()
    client = mlflow.MlflowClient()
    events, problems = timeline(client, name), drift(client, name)
    print(f"{name}: {len(events)} promotion(s)")
    for e in events:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(e.metrics.items()))
        who = f"{e.who} on {e.host}"
        print(f"  {e.when}  v{e.version:<4} -> {e.stage:<10} by {who}  gate: {e.gate or '-'}  why: {e.why or '-'}")
        if metrics:
            print(f"      {metrics}")
    for line in problems:
        print(f"  DRIFT: {line}")
    if not problems:
        print("  stages and aliases agree")
    for version, verdict in reproductions(client, name).items():
        print(f"  v{version} reproduction: {verdict}")
    for v in list_versions(client, name):  # monitor's verdict on the last window it judged
        if MONITORING_STATUS_TAG in v.tags:
            window = v.tags.get(MONITORING_WINDOW_TAG) or "-"
            print(f"  v{v.version} monitoring: {v.tags[MONITORING_STATUS_TAG]} (window {window})")
    return events, problems


if __name__ == "__main__":
    run_cli(main)
