"""The team stack as one thing: its configuration (kept in <dir>/stack.json so a restart finds the same ports and
data), starting and stopping its parts in order, and the environment that points a shell at it."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from lifecycle.team.postgres import Postgres
from lifecycle.team.processes import StackError, port_is_free
from lifecycle.team.secrets import write_private
from lifecycle.team.spark_connect import SparkConnectServer
from lifecycle.team.spark_standalone import SparkStandalone
from lifecycle.team.tracking_server import ADMIN_USER, AUTH_DATABASE, TRACKING_DATABASE, TrackingServer

CONFIG_FILE = "stack.json"
ENV_FILE = "env"


@dataclass(frozen=True)
class StackConfig:
    host: str = "127.0.0.1"  # every part binds here; another address opens them to the network
    postgres_port: int = 15432  # not 5432: a system PostgreSQL may already hold it
    mlflow_port: int = 5000
    spark_port: int = 7077
    spark_ui_port: int = 8080
    worker_ui_port: int = 8081
    connect_port: int = 15002  # the Spark Connect server's (Spark's own default)
    worker_cores: int = os.cpu_count() or 2
    worker_memory: str = "2g"
    mlflow_workers: int = 2

    def ports(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name.endswith("_port")}


class TeamStack:
    def __init__(self, directory: Path, config: StackConfig):
        self.directory = directory.resolve()
        self.config = config
        self.postgres = Postgres(self.directory / "postgres", config.host, config.postgres_port)
        self.server = TrackingServer(self.directory / "mlflow", config.host, config.mlflow_port, config.mlflow_workers)
        self.spark = SparkStandalone(self.directory / "spark", config.host, config.spark_port, config.spark_ui_port,
                                     config.worker_ui_port, config.worker_cores, config.worker_memory)  # fmt: skip
        self.connect = SparkConnectServer(self.directory / "spark-connect", config.host, config.connect_port,
                                          self.spark.master_url)  # fmt: skip

    @classmethod
    def at(cls, directory: Path, **overrides) -> TeamStack:
        """The stack in `directory`: its saved configuration, with `overrides` (non-None) applied."""
        saved = directory / CONFIG_FILE
        config = StackConfig(**json.loads(saved.read_text())) if saved.exists() else StackConfig()
        return cls(directory, replace(config, **{k: v for k, v in overrides.items() if v is not None}))

    @property
    def env_path(self) -> Path:
        return self.directory / ENV_FILE

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o711)  # others may pass through (PostgreSQL's account), not list or read
        self._check_ports_free()
        write_private(self.directory / CONFIG_FILE, json.dumps(asdict(self.config), indent=2) + "\n")
        self.postgres.start(databases=(TRACKING_DATABASE, AUTH_DATABASE))
        self.server.start(self.postgres)
        self.spark.start()
        self.connect.start()
        write_private(self.env_path, self.env_text())

    def stop(self) -> list[str]:
        """Stop every part that runs, the clients' side first; the data stays for the next start."""
        stopped = []
        parts = (("Spark Connect", self.connect), ("Spark", self.spark), ("mlflow server", self.server),
                 ("PostgreSQL", self.postgres))  # fmt: skip
        for name, part in parts:
            if part.stop():
                stopped.append(name)
        return stopped

    def env(self) -> dict[str, str]:
        """What a job needs to work against the stack as its admin."""
        env = {
            "MLFLOW_TRACKING_URI": self.server.url,
            "MLFLOW_TRACKING_USERNAME": ADMIN_USER,
            "MLFLOW_TRACKING_PASSWORD": self.server.admin_password_path.read_text().strip(),
            "SPARK_MASTER": self.spark.master_url,
        }
        if _is_loopback(self.config.host):
            # The driver listens for its executors; on a loopback stack it need not listen on the network.
            env["SPARK_LOCAL_IP"] = self.config.host
        return env

    def env_text(self) -> str:
        """`export` lines for `source`: the password is read from its private file when sourced, never copied."""
        lines = [f"# The team stack in {self.directory} (written by `make team`): source this file."]
        for key, value in self.env().items():
            if key == "MLFLOW_TRACKING_PASSWORD":
                value = f'"$(cat {shlex.quote(str(self.server.admin_password_path))})"'
            else:
                value = shlex.quote(value)
            lines.append(f"export {key}={value}")
        lines.append("# Through Spark Connect instead of SPARK_MASTER (a thin client; the driver runs in the stack's")
        lines.append("# Connect server, on the same cluster): uncomment the next line. SPARK_MASTER is then not used.")
        lines.append(f"# export SPARK_REMOTE={shlex.quote(self.connect.url)}")
        return "\n".join(lines) + "\n"

    def _check_ports_free(self) -> None:
        """A port another program holds stops the start before anything is half-started (ours may be up)."""
        ours = {
            "postgres_port": self.postgres.is_running(),
            "mlflow_port": self.server.is_running(),
            "spark_port": self.spark.is_running(),
            "spark_ui_port": self.spark.is_running(),
            "worker_ui_port": self.spark.is_running(),
            "connect_port": self.connect.is_running(),
        }
        taken = [
            f"{name.removesuffix('_port').replace('_', ' ')} port {port}"
            for name, port in self.config.ports().items()
            if not ours[name] and not port_is_free(self.config.host, port)
        ]
        if taken:
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in self.config.ports())
            raise StackError(f"in use on {self.config.host}: {', '.join(taken)}; choose others with {flags}")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
