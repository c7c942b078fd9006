"""The stack's Spark standalone cluster: a master and one worker, each a JVM of its own started through pyspark's
`spark-class` (the pip wheel ships no sbin/ scripts). Executors run Python with the interpreter the driver asks
for, and every job ships the project and its model itself, so the worker needs nothing installed but Java."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyspark

from lifecycle.team.processes import log_says, log_size, running_pid, start_daemon, stop_daemon, wait_until

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


@dataclass(frozen=True)
class SparkStandalone:
    root: Path  # <stack>/spark: logs, pid files, the worker's work directory
    host: str
    port: int
    ui_port: int
    worker_ui_port: int
    worker_cores: int = os.cpu_count() or 2
    worker_memory: str = "2g"

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def start(self, timeout: float = 120) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", self.host, "--port",
                               str(self.port), "--webui-port", str(self.ui_port)],
                    ready="I have been elected leader", timeout=timeout)  # fmt: skip
        self._start("worker", ["org.apache.spark.deploy.worker.Worker", "--host", self.host, "--webui-port",
                               str(self.worker_ui_port), "--cores", str(self.worker_cores), "--memory",
                               self.worker_memory, "--work-dir", str(self.root / "work"), self.master_url],
                    ready="Successfully registered with master", timeout=timeout)  # fmt: skip

    def stop(self) -> bool:
        stopped_worker = stop_daemon(self._pid_path("worker"))
        stopped_master = stop_daemon(self._pid_path("master"))
        return stopped_worker or stopped_master

    def is_running(self) -> bool:
        return all(running_pid(self._pid_path(role)) is not None for role in ("master", "worker"))

    def _start(self, role: str, args: list[str], ready: str, timeout: float) -> None:
        pid_path, log_path = self._pid_path(role), self.root / f"{role}.log"
        if running_pid(pid_path) is not None:
            return
        since = log_size(log_path)  # the log is appended to across starts: wait for this start's line
        # No tracking credentials reach the cluster: jobs ship their models to executors themselves.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["SPARK_LOG_DIR"] = str(self.root)
        start_daemon([str(SPARK_CLASS), *args], log_path, pid_path, env)
        wait_until(lambda: log_says(log_path, ready, since), f"Spark {role} at {self.master_url}", log_path, timeout,
                   lambda: running_pid(pid_path) is not None)  # fmt: skip

    def _pid_path(self, role: str) -> Path:
        return self.root / f"{role}.pid"
