"""Entry point `rollback`: put the previous Production version back, in one command, recorded like a promotion.

python -m registry.rollback --model-name cancer --reason "v4 misbehaves on new data"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mlflow

from common.cli import run_cli
from common.errors import UserInputError
from common.job import EntryPoint
from common.model_uri import resolve_model_uri
from common.params import param
from common.registry_lookup import require_model
from common.settings import Settings
from registry.promotion import promote_version
from registry.stages import Promotion


@dataclass(frozen=True)
class RollbackParams:
    model_name: str = param(help="the registered model")
    reason: str | None = param(None)


@dataclass(frozen=True)
class Rollback(Promotion):
    """A promotion back to the version Production held before; said as such."""

    def summary(self) -> str:
        archived = ", ".join(self.archived_versions)
        return f"{self.model_name}: version {self.version} is back in Production; archived {archived}"


def run(settings: Settings, params: RollbackParams) -> Rollback:
    """The version the current champion replaced (its `previous_production` tag) goes back to Production; the
    gate is not run again: that version was in Production before."""
    model_name, reason = params.model_name, params.reason
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
    return Rollback(**asdict(promote_version(settings, model_name, "Production", previous, why, rollback=True)))


ENTRY_POINT = EntryPoint(RollbackParams, run)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
