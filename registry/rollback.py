"""Entry point `rollback`: put the previous Production version back, in one command, recorded like a promotion.

python -m registry.rollback --model-name cancer --reason "v4 misbehaves on new data"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import mlflow

from lifecycle.cli import optional_str, run_cli
from lifecycle.errors import UserInputError
from lifecycle.settings import Settings
from lifecycle.tracking import configure_tracking
from registry import promote
from registry.lookup import require_model
from registry.resolve import resolve_model_uri
from registry.stages import Promotion


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rollback", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--reason", type=optional_str, default=None)
    return parser.parse_args(argv)


def run(settings: Settings, model_name: str, reason: str | None = None) -> Promotion:
    """The version the current champion replaced (its `previous_production` tag) goes back to Production; the
    gate is not run again: that version was in Production before."""
    configure_tracking(settings)
    client = mlflow.MlflowClient()
    require_model(client, model_name)
    try:
        current = resolve_model_uri(client, f"models:/{model_name}/production")
    except UserInputError as exc:
        raise UserInputError(f"nothing to roll back: {exc}") from exc
    previous = client.get_model_version(model_name, current.model_version).tags.get("previous_production")
    if not previous:
        raise UserInputError(
            f"{model_name} version {current.model_version} is in Production and no earlier Production version is "
            "recorded for it; promote the version you want with promote"
        )
    why = f"rollback from version {current.model_version}" + (f": {reason}" if reason else "")
    return promote.run(settings, model_name, "Production", previous, why, rollback=True)


def main(argv: Sequence[str] | None = None) -> Promotion:
    args = parse_args(argv)
    result = run(Settings.from_env(), args.model_name, args.reason)
    print(
        f"{result.model_name}: version {result.version} is back in Production; "
        f"archived {', '.join(result.archived_versions)}"
    )
    return result


if __name__ == "__main__":
    run_cli(main)
