"""Entry point `promote`: move a registered model version to Staging, Production or Archived.

python -m registry.promote --model-name cancer --version 3 --stage production --reason "beats v2"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import mlflow

from lifecycle.cli import optional_str, run_cli
from lifecycle.settings import Settings
from lifecycle.tracking import configure_tracking, log_new_params, tracked_run
from registry.lookup import STAGES, canonical_stage, require_version
from registry.stages import Promotion, promote


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="promote", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--version", type=optional_str, default=None, help="default: the latest version")
    parser.add_argument("--stage", required=True, help=f"one of {', '.join(STAGES)} (any case)")
    parser.add_argument("--reason", type=optional_str, default=None)
    return parser.parse_args(argv)


def run(
    settings: Settings, model_name: str, stage: str, version: str | None = None, reason: str | None = None
) -> Promotion:
    configure_tracking(settings)
    client = mlflow.MlflowClient()
    # Check before a tracking run is opened, so a typo leaves no trace in the store.
    canonical_stage(stage)
    require_version(client, model_name, version)
    with tracked_run(settings, run_name=f"promote-{model_name}"):
        result = promote(client, model_name, version, stage, reason)
        log_new_params(
            {
                "model_name": model_name,
                "version": version or "",
                "stage": stage,
                "promoted_version": result.version,
                "target_stage": result.stage,
            }
        )
        mlflow.set_tags(
            {"previous_stage": result.previous_stage, "archived_versions": ",".join(result.archived_versions)}
        )
        return result


def main(argv: Sequence[str] | None = None) -> Promotion:
    args = parse_args(argv)
    result = run(Settings.from_env(), args.model_name, args.stage, args.version, args.reason)
    archived = f"; archived {', '.join(result.archived_versions)}" if result.archived_versions else ""
    print(f"{result.model_name} version {result.version}: {result.previous_stage} -> {result.stage}{archived}")
    return result


if __name__ == "__main__":
    run_cli(main)
