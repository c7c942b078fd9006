"""The stack's `mlflow server`: runs and the registry in PostgreSQL, artifacts proxied (clients upload and
download through the server, never touching the artifact root), and basic-auth accounts in a database of their own.

The admin password and the Flask session key are generated on first start into files only their owner can read;
MLflow creates the admin account from MLFLOW_AUTH_ADMIN_PASSWORD the first time it starts on an empty user store.
"""

from __future__ import annotations

import os
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lifecycle.team.postgres import Postgres
from lifecycle.team.processes import running_pid, start_daemon, stop_daemon, wait_until
from lifecycle.team.secrets import read_or_create, write_private
from lifecycle.ui.app import APP_WITH_BASIC_AUTH

ADMIN_USER = "admin"
TRACKING_DATABASE = "mlflow"
AUTH_DATABASE = "mlflow_auth"
# New accounts may read everything and change only what they create or are granted (`lifecycle.team.users`).
DEFAULT_PERMISSION = "READ"


@dataclass(frozen=True)
class TrackingServer:
    root: Path  # <stack>/mlflow: artifacts/, secrets, the auth config, the log
    host: str
    port: int
    workers: int = 2

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def admin_password_path(self) -> Path:
        return self.root / "admin-password"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "server.pid"

    def start(self, postgres: Postgres, timeout: float = 180) -> None:
        if self.is_running():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        auth_config = self.root / "basic_auth.ini"
        write_private(auth_config, _auth_config(postgres.uri(AUTH_DATABASE)))
        env = {
            **os.environ,
            **postgres.client_env(),
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": read_or_create(self.admin_password_path),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": read_or_create(self.root / "flask-secret-key", 32),
            # The server's background job runner starts eight more processes; nothing here submits jobs.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # Registry webhooks (a scoring server swapping versions when an alias moves): every server worker must
            # decrypt the secrets the others stored, so the key is one, kept like the other secrets; the stack's
            # scoring servers listen on plain HTTP at private addresses, which MLflow refuses unless told.
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": _webhook_encryption_key(self.root / "webhook-encryption-key"),
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        }
        env.pop("MLFLOW_TRACKING_URI", None)  # the server's store is the command line's, not a client setting
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", postgres.uri(TRACKING_DATABASE),
            "--artifacts-destination", str((self.root / "artifacts").resolve()),
            "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
            # MLflow's basic-auth with the project's UI defaults (lifecycle.ui.app)
            "--app-name", APP_WITH_BASIC_AUTH,
            # MLflow's own install runs uvicorn on asyncio and h11. This project installs uvloop and httptools
            # for its scoring server, which uvicorn would otherwise pick up here too: a combination under which
            # a tracking request was seen to go unanswered.
            "--uvicorn-opts", "--loop asyncio --http h11",
        ]  # fmt: skip
        start_daemon(command, self.log_path, self.pid_path, env)
        wait_until(self.is_healthy, f"mlflow server on {self.url}", self.log_path, timeout, self.is_running)

    def stop(self) -> bool:
        return stop_daemon(self.pid_path)

    def kill(self) -> bool:
        """SIGKILL, as a crash or an OOM kill would: no chance to finish a request."""
        return stop_daemon(self.pid_path, sig=signal.SIGKILL)

    def is_running(self) -> bool:
        return running_pid(self.pid_path) is not None

    def is_healthy(self) -> bool:
        return answers_health(self.url)


def answers_health(url: str) -> bool:
    """Whether the `mlflow server` at `url` is up: /health answers without credentials once it has its stores
    open."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _webhook_encryption_key(path: Path) -> str:
    """The Fernet key the server encrypts webhook secrets with, generated the first time (Fernet wants its own
    padded form, which `read_or_create`'s tokens are not)."""
    if not path.exists():
        from cryptography.fernet import Fernet

        write_private(path, Fernet.generate_key().decode() + "\n")
    return path.read_text().strip()


def _auth_config(database_uri: str) -> str:
    return (
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        # Checking a password (PBKDF2) costs ~0.25 s of CPU; a job sends hundreds of requests. A password change
        # reaches the other worker within this time.
        "auth_cache_ttl_seconds = 30\n"
    )
