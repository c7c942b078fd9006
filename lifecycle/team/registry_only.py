"""The team stack's registry side alone: PostgreSQL and `mlflow server` (basic-auth, as `make team` runs them), with
no Spark cluster, for the benchmarks and tests that need a SQL-backed tracking server (registry webhooks, concurrent
writers and promotions) and nothing else. Started in a folder of the caller's, stopped when the block ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lifecycle.team.postgres import Postgres
from lifecycle.team.processes import free_port
from lifecycle.team.tracking_server import ADMIN_USER, AUTH_DATABASE, TRACKING_DATABASE, TrackingServer


@dataclass(frozen=True)
class TeamRegistry:
    server: TrackingServer
    env: dict[str, str]  # what a client or a scoring server needs to use it as the admin


@contextlib.contextmanager
def team_registry(root: Path) -> Iterator[TeamRegistry]:
    """PostgreSQL and the tracking server in `root` (a folder PostgreSQL's own account can pass through)."""
    root.chmod(0o711)  # PostgreSQL's own account passes through to its data
    postgres = Postgres(root / "postgres", "127.0.0.1", free_port())
    server = TrackingServer(root / "mlflow", "127.0.0.1", free_port())
    try:
        postgres.start(databases=(TRACKING_DATABASE, AUTH_DATABASE))
        server.start(postgres)
        env = {"MLFLOW_TRACKING_URI": server.url, "MLFLOW_TRACKING_USERNAME": ADMIN_USER,
               "MLFLOW_TRACKING_PASSWORD": server.admin_password_path.read_text().strip()}  # fmt: skip
        yield TeamRegistry(server, env)
    finally:
        server.stop()
        postgres.stop()
