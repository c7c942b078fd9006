"""Entry point `history`: a model's promotion timeline (version, stage, when, who, why, gate metrics), any
drift between stages and aliases, and each version's last reproduction verdict.

    python -m registry.history --model-name cancer
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow

from common.cli import run_cli
from common.job import EntryPoint
from common.params import param
from common.profile import MONITORING_STATUS_TAG, MONITORING_WINDOW_TAG
from common.provenance import REPRODUCTION_RUN_TAG, REPRODUCTION_VERDICT_TAG
from common.registry_lookup import ALIASED_STAGES, list_versions, require_model
from common.settings import Settings
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


@dataclass(frozen=True)
class History:
    model_name: str
    events: list[Event]
    problems: list[str]  # where stages and aliases disagree
    reproductions: dict[str, str]  # {version: "<verdict> (run <id>)"}
    monitoring: dict[str, str]  # {version: "<status> (window <start>)"}: monitor's verdict on its last window

    def summary(self) -> str:
        lines = [f"{self.model_name}: {len(self.events)} promotion(s)"]
        for e in self.events:
            metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(e.metrics.items()))
            who = f"{e.who} on {e.host}"
            lines.append(
                f"  {e.when}  v{e.version:<4} -> {e.stage:<10} by {who}  gate: {e.gate or '-'}  why: {e.why or '-'}"
            )
            if metrics:
                lines.append(f"      {metrics}")
        lines += [f"  DRIFT: {line}" for line in self.problems]
        if not self.problems:
            lines.append("  stages and aliases agree")
        lines += [f"  v{version} reproduction: {verdict}" for version, verdict in self.reproductions.items()]
        lines += [f"  v{version} monitoring: {status}" for version, status in self.monitoring.items()]
        return "\n".join(lines)


def run(settings: Settings, params: HistoryParams) -> History:
    client = mlflow.MlflowClient()
    name = params.model_name
    events, problems = timeline(client, name), drift(client, name)
    monitoring = {
        str(v.version): f"{v.tags[MONITORING_STATUS_TAG]} (window {v.tags.get(MONITORING_WINDOW_TAG) or '-'})"
        for v in list_versions(client, name)
        if MONITORING_STATUS_TAG in v.tags
    }
    return History(name, events, problems, reproductions(client, name), monitoring)


ENTRY_POINT = EntryPoint(HistoryParams, run)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
