"""Entry point `promote`: move a registered model version to Staging, Production or Archived.

    python -m registry.promote --model-name cancer --version 3 --stage production --reason "beats v2"

A move to Production passes the champion/challenger gate first (registry/gate.py) unless `--force true` with a
reason; either way the outcome is recorded on the version. One promotion of a model runs at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from common.cli import run_cli
from common.params import param, parse_params
from common.registry_lookup import STAGES
from common.settings import Settings
from common.spark import build_spark
from common.tracking import job_settings
from registry.promotion import promote_version
from registry.stages import Promotion


@dataclass(frozen=True)
class PromoteParams:
    model_name: str = param(help="the registered model")
    stage: str = param("Production", help=f"one of {', '.join(STAGES)} (any case)")
    version: str | None = param(None, help="default: the latest version")
    reason: str | None = param(None)
    data: str | None = param(None, help="evaluation data; default: the test split the version's run logged")
    thresholds: str | None = param(None, help='JSON: {"accuracy": {"min": 0.9}}')
    force: bool = param(False, help="skip the gate (needs a reason)")


def run(
    settings: Settings, params: PromoteParams, spark: SparkSession | Callable[[], SparkSession] | None = None
) -> Promotion:
    """`spark` (or a factory for it) is only needed, and only built, when the gate runs."""
    p = params
    return promote_version(
        settings, p.model_name, p.stage, p.version, p.reason, p.data, p.thresholds, p.force, spark=spark
    )


def main(argv: Sequence[str] | None = None) -> Promotion:
    params = parse_params(PromoteParams, argv)
    settings = job_settings()
    result = run(settings, params, spark=lambda: build_spark(settings, app_name="promote-gate"))
    archived = f"; archived {', '.join(result.archived_versions)}" if result.archived_versions else ""
    print(f"{result.model_name} version {result.version}: {result.previous_stage} -> {result.stage}{archived}")
    return result


if __name__ == "__main__":
    run_cli(main)
