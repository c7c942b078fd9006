"""`python -m lifecycle.team.users`: the admin's command for accounts on a basic-auth tracking server.

    python -m lifecycle.team.users create alice --edit-experiment model-lifecycle --edit-model titanic
    python -m lifecycle.team.users grant bob --edit-model titanic

Runs as the admin named by MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD against MLFLOW_TRACKING_URI (what
`source .team/env` sets). A new account can read everything and change what it creates; `--edit-*` lets it log into
an experiment or promote a model someone else created. `create` prints the generated password once.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import warnings
from collections.abc import Sequence

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME

from common.cli import EXIT_USER_ERROR
from common.tracking_errors import describe_tracking_failure
from registry.lock import lock_name


def main(argv: Sequence[str] | None = None) -> None:
    # The account client loads MLflow's server app, which imports a Starlette helper Starlette has deprecated.
    warnings.filterwarnings("ignore", message=r"starlette\.middleware\.wsgi is deprecated")
    parser = argparse.ArgumentParser(prog="python -m lifecycle.team.users", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("action", choices=("create", "grant"))
    parser.add_argument("username")
    parser.add_argument("--edit-experiment", action="append", default=[], metavar="NAME",
                        help="may log runs into this experiment (repeatable)")  # fmt: skip
    parser.add_argument("--edit-model", action="append", default=[], metavar="NAME",
                        help="may register versions of and promote this registered model (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri.startswith("http"):
        _fail(f"MLFLOW_TRACKING_URI must be the server's http(s) address (`source .team/env`), not {tracking_uri!r}")
    accounts = get_app_client("basic-auth", tracking_uri=tracking_uri)
    try:
        # Every name checked before anything is written: a refused command leaves no account half made.
        experiment_ids = {name: _experiment_id(tracking_uri, name) for name in args.edit_experiment}
        for model_name in args.edit_model:
            MlflowClient(tracking_uri).get_registered_model(model_name)
        if args.action == "create":
            password = secrets.token_urlsafe(18)
            accounts.create_user(args.username, password)
            print(f"Created user {args.username}. Their password, shown this once: {password}")
        for name, experiment_id in experiment_ids.items():
            _grant(accounts, args.username, "experiment", experiment_id, f"experiment {name}")
        for model_name in args.edit_model:
            _grant(accounts, args.username, "registered_model", model_name, f"model {model_name}")
            _join_promoters(accounts, args.username, model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            _fail(f"user {args.username} already exists on {tracking_uri}; `grant` changes what they may change")
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            _fail(f"{str(exc).splitlines()[0]} (on {tracking_uri}); nothing was changed")
        _fail(describe_tracking_failure(exc, tracking_uri) or str(exc).splitlines()[0])


def _experiment_id(tracking_uri: str, name: str) -> str:
    experiment = MlflowClient(tracking_uri).get_experiment_by_name(name)
    if experiment is None:
        _fail(f"no experiment named {name!r} on {tracking_uri} (a job logging into it creates it); nothing was changed")
    return experiment.experiment_id


def _grant(accounts, username: str, resource_type: str, resource_id: str, what: str) -> None:
    """EDIT on one resource; a second grant of the same resource changes the existing one."""
    try:
        accounts.grant_user_permission(username, resource_type, resource_id, "EDIT")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        accounts.revoke_user_permission(username, resource_type, resource_id)
        accounts.grant_user_permission(username, resource_type, resource_id, "EDIT")
    print(f"{username} may now change {what}.")


def _join_promoters(accounts, username: str, model_name: str) -> None:
    """The role `promoters of <model>`: MANAGE on the model's promotion lock (registry/lock.py), a registered model
    its taker's account owns. Taking over a lock a dead promotion of another account left needs it; a role keeps it
    from one lock to the next, where an account's own grant on a name goes when the model of that name is deleted."""
    role_name = f"promoters of {model_name}"
    role = next((r for r in accounts.list_roles(DEFAULT_WORKSPACE_NAME) if r.name == role_name), None)
    if role is None:
        role = accounts.create_role(DEFAULT_WORKSPACE_NAME, role_name, f"may take over {lock_name(model_name)}")
        accounts.add_role_permission(role.id, "registered_model", lock_name(model_name), "MANAGE")
    try:
        accounts.assign_role(username, role.id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
