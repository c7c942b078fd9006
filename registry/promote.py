"""Entry point `promote`: move a registered model version to Staging, Production or Archived.

    python -m registry.promote --model-name cancer --version 3 --stage production --reason "beats v2"

A move to Production passes the champion/challenger gate first (registry/gate.py) unless `--force true` with a
reason; either way the outcome is recorded on the version. One promotion of a model runs at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import SparkSession

from common.cli import run_cli
from common.job import LAZY_SPARK, EntryPoint, spark_starter
from common.params import param
from common.registry_lookup import STAGES
from common.settings import Settings
from common.spark import SparkStarter
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


def run(spark: SparkSession | SparkStarter | None, settings: Settings, params: PromoteParams) -> Promotion:
    """Spark is only needed, and only started, when the gate runs (a move to Production without force). The
    parameters are promote_version's own, by name."""
    gate_spark = spark_starter(spark).get if spark is not None else None
    return promote_version(settings, **asdict(params), spark=gate_spark)


ENTRY_POINT = EntryPoint(PromoteParams, run, spark=LAZY_SPARK, app_name="promote-gate")
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
