"""The stack's Spark Connect server, beside the standalone master and worker: the same cluster reached through a
thin client (SPARK_REMOTE=sc://host:port) instead of a driver in the job's own process. It is the server pyspark
ships (sbin/start-connect-server.sh, in the foreground so a stop reaches it by its process group), submitted to the
stack's master. Its executors come and go with its jobs (dynamic allocation), so an idle Connect server holds none
of the worker's cores and classic jobs (SPARK_MASTER) get them all."""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pyspark

from lifecycle.team.processes import log_says, log_size, running_pid, start_daemon, stop_daemon, wait_until

START_SCRIPT = Path(pyspark.__file__).parent / "sbin" / "start-connect-server.sh"
_READY = "Spark Connect server started"


@dataclass(frozen=True)
class SparkConnectServer:
    root: Path  # <stack>/spark-connect: its log, pid file and working directory
    host: str
    port: int
    master_url: str  # the stack's standalone master
    executor_idle_s: int = 30  # an idle executor is given back to the worker after this long
    driver_memory: str = "2g"  # the jobs' drivers all live in this one JVM

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.port}"

    @property
    def pid_path(self) -> Path:
        return self.root / "server.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def start(self, timeout: float = 180) -> None:
        if running_pid(self.pid_path) is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        since = log_size(self.log_path)  # the log is appended to across starts: wait for this start's line
        command = ["bash", str(START_SCRIPT), "--wait", "--master", self.master_url,
                   "--driver-memory", self.driver_memory, *self._settings()]  # fmt: skip
        start_daemon(command, self.log_path, self.pid_path, self._env(), cwd=self.root)
        wait_until(lambda: log_says(self.log_path, _READY, since), f"Spark Connect server at {self.url}",
                   self.log_path, timeout, lambda: running_pid(self.pid_path) is not None)  # fmt: skip

    def stop(self) -> bool:
        return stop_daemon(self.pid_path)

    def is_running(self) -> bool:
        return running_pid(self.pid_path) is not None

    def _settings(self) -> list[str]:
        settings = {
            "spark.connect.grpc.binding.address": self.host,
            "spark.connect.grpc.binding.port": str(self.port),
            # Executors only while jobs run (shuffle files tracked, as standalone has no external shuffle service).
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.shuffleTracking.enabled": "true",
            "spark.dynamicAllocation.minExecutors": "0",
            "spark.dynamicAllocation.executorIdleTimeout": f"{self.executor_idle_s}s",
            "spark.sql.session.timeZone": "UTC",
        }
        return [argument for key, value in settings.items() for argument in ("--conf", f"{key}={value}")]

    def _env(self) -> dict[str, str]:
        """No tracking credentials reach the server (jobs ship their models as artifacts); its Python workers run
        this interpreter; on a loopback stack the driver listens on the loopback address only."""
        drop = ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_HOME", "PYTHONPATH")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k not in drop}
        env.update(SPARK_LOG_DIR=str(self.root), SPARK_PID_DIR=str(self.root), PYSPARK_PYTHON=sys.executable)
        if _is_loopback(self.host):
            env["SPARK_LOCAL_IP"] = self.host
        return env


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
