"""Who promotes: the tracking account when the store is a server with accounts (basic-auth), otherwise the OS
user; and the host. A team reads the account that acted, not the login of whichever machine ran the job, on the
version (promoted_by, promoted_from), on the promotion's run (`history`) and in the promotion lock."""

from __future__ import annotations

import getpass
import socket

import mlflow
from mlflow.utils.credentials import read_mlflow_creds


def promoter() -> str:
    """MLFLOW_TRACKING_USERNAME (or ~/.mlflow/credentials) against an http(s) tracking server, else the OS user."""
    if mlflow.get_tracking_uri().startswith(("http://", "https://")):
        account = read_mlflow_creds().username
        if account:
            return account
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def host() -> str:
    return socket.gethostname()
