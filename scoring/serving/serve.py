"""Entry point `serve`: answer scoring requests over REST (MLflow's protocol) with a model URI, following the registry.

python -m scoring.serving.serve --model-uri models:/titanic/production --port 5001
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass

from common.cli import run_cli
from common.errors import UserInputError
from common.job import EntryPoint
from common.params import param
from common.settings import Settings

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeParams:
    model_uri: str = param(help="models:/<name>/<stage|version|latest>, models:/<name>@<alias>, runs:/...")
    port: int = param(5001, help="TCP port")
    host: str = param("127.0.0.1", help="address to bind; 0.0.0.0 to accept other machines")
    workers: int = param(1, help="worker processes (one per core at most): each loads the model and polls the registry")
    reload_seconds: float = param(10.0, help="how often a stage/alias URI is looked up again in the registry")
    max_body_mb: float = param(10.0, help="largest request body accepted, in MiB (a larger one gets 413)")
    log_dir: str | None = param(None, help="folder of the inference log (Parquet, read by monitor); empty: no log")
    batching: bool = param(True, help="predict requests that wait for a busy model together (false: one by one)")
    drain_seconds: float = param(
        5.0, help="on SIGTERM: seconds answering while not ready, before new connections are refused"
    )


def check(params: ServeParams) -> None:
    problems = []
    if not 0 < params.port < 65536:
        problems.append(f"port must be 1..65535, got {params.port}")
    if params.workers < 1:
        problems.append(f"workers must be at least 1, got {params.workers}")
    if params.reload_seconds <= 0:
        problems.append(f"reload_seconds must be positive, got {params.reload_seconds}")
    if params.drain_seconds < 0:
        problems.append(f"drain_seconds must be 0 or more, got {params.drain_seconds}")
    if params.max_body_mb <= 0:
        problems.append(f"max_body_mb must be positive, got {params.max_body_mb}")
    if problems:
        raise UserInputError("; ".join(problems))


@dataclass(frozen=True)
class ServeResult:
    """What served until the server stopped (SIGTERM, Ctrl-C)."""

    label: str
    port: int

    def summary(self) -> str:
        return f"stopped serving {self.label} on port {self.port}"


def run(settings: Settings, params: ServeParams) -> ServeResult:
    """Load and probe the model first (a bad URI or a version that does not load exits 2 before anything listens),
    then serve until stopped. `settings` (the tracking store) are in this process's environment, where each worker
    process reads them again."""
    # Imported here: each worker process starts by importing this module (multiprocessing's spawn), and uvicorn
    # kills a worker that does not answer its health check within `timeout_worker_healthcheck` of starting.
    import uvicorn

    from scoring.serving.app import SETTINGS_VARIABLE, build_app
    from scoring.serving.inference_log import InferenceLog
    from scoring.serving.metrics import fresh_multiprocess_folder
    from scoring.serving.model_holder import ModelHolder
    from scoring.serving.registry_webhook import SECRET_VARIABLE
    from scoring.serving.request_id import tag_log_lines

    tag_log_lines()
    holder = ModelHolder.load(params.model_uri, params.reload_seconds)
    served = holder.current
    following = f", following {params.model_uri} every {params.reload_seconds:g} s" if holder.follows else ""
    print(f"serving {served.label} with {served.how}{following}", flush=True)
    print(f"listening on http://{params.host}:{params.port}/invocations ({params.workers} worker(s))", flush=True)
    max_body_bytes = int(params.max_body_mb * 2**20)
    options = {"host": params.host, "port": params.port, "log_level": "warning", "access_log": False}
    if params.log_dir:
        print(f"inference log: {params.log_dir}", flush=True)
    if os.environ.get(SECRET_VARIABLE):
        print(f"registry webhooks: POST http://{params.host}:{params.port}/webhooks/mlflow", flush=True)
    metrics_folder = fresh_multiprocess_folder()  # before any metric exists, in this process or a worker
    try:
        if params.workers == 1:
            log = InferenceLog(params.log_dir) if params.log_dir else None
            secret = os.environ.get(SECRET_VARIABLE) or None
            app = build_app(holder, max_body_bytes, log, params.drain_seconds, secret, params.batching)
            uvicorn.run(app, **options)
            return ServeResult(served.label, params.port)
        # Each worker process loads the model itself (onnxruntime sessions and JVMs do not survive a fork).
        settings = {"model_uri": params.model_uri, "reload_seconds": params.reload_seconds, "log_dir": params.log_dir,
                    "drain_seconds": params.drain_seconds, "batching": params.batching,
                    # a registry webhook reaches one worker: it tells the others through this file
                    "registry_event_file": str(metrics_folder / "registry-event")}  # fmt: skip
        os.environ[SETTINGS_VARIABLE] = json.dumps(settings | {"max_body_bytes": max_body_bytes})
        label = served.label
        del holder, served
        # A worker loads its model after it answers health checks; 60 s leaves room for a busy machine's imports.
        uvicorn.run("scoring.serving.app:app_from_environment", factory=True, workers=params.workers,
                    timeout_worker_healthcheck=60, **options)  # fmt: skip
        return ServeResult(label, params.port)
    finally:
        shutil.rmtree(metrics_folder, ignore_errors=True)


# No Spark from the runner: an MLlib version without an ONNX export starts the local session it needs
# (scoring.serving.prediction_backends.SparkBackend).
ENTRY_POINT = EntryPoint(ServeParams, run, check=check)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
