"""Accounts on the team server: an admin creates users with `python -m lifecycle.team.users`; a user without EDIT
on a model cannot promote it and is told so in one line, with nothing changed; wrong or missing credentials get
one line too, never a traceback."""

from __future__ import annotations

import logging
import re

import pytest

import registry.history
import registry.promote
from common.cli import run_cli
from lifecycle.team import users
from registry import stages
from tests.team.conftest import python_module, register_versions, registry_state, run_job, team_env

pytestmark = pytest.mark.e2e
EXPERIMENT = "team-accounts"


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def test_a_user_without_edit_on_a_model_cannot_promote_it_until_an_admin_grants_it(
    team, admin_client, capsys, monkeypatch
):
    register_versions(EXPERIMENT, "shared", 2)
    stages.promote(admin_client, "shared", "1", "Production")
    before = registry_state(admin_client, "shared")

    # The admin's command in this process (as the admin, admin_client's environment): the refused promotion below
    # is the command run as a process of its own, which costs an interpreter and MLflow's import (15-25 s loaded).
    users.main(["create", "bob", "--edit-experiment", EXPERIMENT])
    password = re.search(r"shown this once: (\S+)", capsys.readouterr().out).group(1)

    bob = team_env(team, "bob", password, MLFLOW_EXPERIMENT_NAME=EXPERIMENT)
    promote = python_module("registry.promote", "--model-name", "shared", "--version", "2", "--stage", "production",
                            "--force", "true", "--reason", "bob thinks v2 is better")  # fmt: skip
    refused = run_job(promote, bob)
    assert refused.returncode == 2
    assert _last_line(refused.stderr) == "error: permission denied: bob cannot change model shared"
    assert "Traceback" not in refused.stderr
    assert registry_state(admin_client, "shared") == before  # no stage, alias or tag changed
    assert [m.name for m in admin_client.search_registered_models() if m.name.startswith("shared.")] == []  # no lock

    # The grant and bob's second try in this process (a command's own process is proven above).
    users.main(["grant", "bob", "--edit-model", "shared"])
    assert "bob may now change model shared" in capsys.readouterr().out
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.setenv(key, bob[key])
    registry.promote.main(promote[3:])
    versions, _, _ = registry_state(admin_client, "shared")
    assert versions == {"1": "Archived", "2": "Production"}


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        (
            "admin",
            "not-the-password",
            "did not accept the password of admin: check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
        ),
        (
            None,
            None,
            "requires an account: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
            "(`source .team/env` for the local team stack)",
        ),
    ],  # fmt: skip
    ids=["wrong password", "no credentials"],
)
def test_wrong_or_missing_credentials_get_one_line(team, username, password, expected, capsys, monkeypatch):
    """A job and the admin's account command, each run in this process as `python -m` runs it (run_cli), with the
    environment a shell would give them: a job's own process and its one line are proven by the refused promotion
    above, and a process costs an interpreter and MLflow's import (15-25 s on a loaded machine)."""
    line = f"error: the tracking server at {team.server.url} {expected}"
    env = team_env(team)
    if username is None:
        del env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]
    else:
        env.update(MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
        if key in env:
            monkeypatch.setenv(key, env[key])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as exited:
            run_cli(registry.history.main, ["--model-name", "shared"])
    finally:  # run_cli configures logging as a job's process would
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert (exited.value.code, _last_line(err)) == (2, line), err[-2000:]
    assert "Traceback" not in err

    # The admin's account command refuses the same way.
    with pytest.raises(SystemExit) as exited:
        users.main(["create", "mallory"])
    assert (exited.value.code, _last_line(capsys.readouterr().err)) == (2, line)
