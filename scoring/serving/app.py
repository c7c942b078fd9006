"""The HTTP side of the scoring server: MLflow's scoring protocol on Starlette.

    GET  /ping          200 when a model is loaded
    GET  /health        200, JSON: the model URI, the version answering, how it answers, the last registry check
                        and why a newer version is not serving (if so); 503 once a SIGTERM started the drain
    GET  /version       MLflow's version, as `mlflow models serve` answers
    GET  /metrics       Prometheus' text format (scoring.serving.metrics)
    /v2/...             the Open Inference Protocol (scoring.serving.open_inference), answering as /invocations
    POST /invocations   {"predictions": [...], "model_name": ..., "model_version": ...}

Every answer to /invocations carries `X-Model-Name` / `X-Model-Version` (and `X-Model-Uri`): with several workers,
each follows the registry on its own, so two answers a second apart may come from two versions. Every answer carries
`X-Request-Id` (the client's, or a new one; scoring.serving.request_id), also written in the request's log lines.

With an inference log (`log_dir`), each answered request's rows, predictions and probabilities, version, request id
and time are queued for it (scoring.serving.inference_log); /health shows its counts, dropped rows among them.

Probabilities: `"params": {"probability": true}` in a JSON body, or `?probability=true` (any content type). Then
each prediction is `{"prediction": ..., "probability": ...}`: of the second class for two classes (as batch
scoring writes it), one per class otherwise; the body also lists `classes`.

ONNX predictions run on the event loop (microseconds); other models' predictions run in a thread, and requests that
arrive meanwhile are predicted together (scoring.serving.batching). One worker process per core is how this server
uses the cores (`workers`).
"""

from __future__ import annotations

import json
import logging
import os
from argparse import ArgumentTypeError
from contextlib import asynccontextmanager
from pathlib import Path

import mlflow
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from common.cli import boolean, configure_logging
from scoring.serving.batching import Batcher
from scoring.serving.drain import Drain
from scoring.serving.heap import freeze_what_is_loaded, refreeze_after_swap
from scoring.serving.inference_log import InferenceLog, LoggedRequest
from scoring.serving.metrics import MetricsMiddleware, ServerMetrics
from scoring.serving.model_holder import ModelHolder
from scoring.serving.open_inference import v2_routes
from scoring.serving.prediction_backends import Prediction
from scoring.serving.registry_webhook import SECRET_VARIABLE, webhook_route
from scoring.serving.request_body import RequestError, content_type_of, first_line, parse_body
from scoring.serving.request_id import RequestIdMiddleware, current_request_id, tag_log_lines
from scoring.serving.served_model import ServedModel
from scoring.serving.signature_columns import Rows, bind_columns

_logger = logging.getLogger(__name__)
# Worker processes (workers > 1) are started by uvicorn from an import string: they read their settings here.
SETTINGS_VARIABLE = "MODEL_SERVER_SETTINGS"


def app_from_environment() -> Starlette:
    """uvicorn's factory in each worker process: load the model (the parent checked it already) and build the app."""
    from common.tracking import job_settings

    configure_logging()  # a spawned process: the parent's logging setup did not come along
    tag_log_lines()
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    job_settings()
    events = settings.get("registry_event_file")
    holder = ModelHolder.load(settings["model_uri"], settings["reload_seconds"], shared_events=events and Path(events))
    log = InferenceLog(settings["log_dir"]) if settings.get("log_dir") else None
    secret = os.environ.get(SECRET_VARIABLE) or None
    return build_app(holder, settings["max_body_bytes"], log, settings["drain_seconds"], secret, settings["batching"])


def build_app(
    holder: ModelHolder,
    max_body_bytes: int,
    inference_log: InferenceLog | None = None,
    drain_seconds: float = 5.0,
    webhook_secret: str | None = None,
    batching: bool = True,
) -> Starlette:
    """The app; `inference_log` (optional) receives every answered request's rows. Its writer thread runs between
    the app's startup and shutdown, and what is queued is written at shutdown. On SIGTERM the app drains for
    `drain_seconds` (scoring.serving.drain); `app.state.drain` tells whether it is draining. With `webhook_secret`,
    signed registry webhooks trigger a swap at once (scoring.serving.registry_webhook). What is loaded at startup,
    and each version swapped in, is kept out of the garbage collector's walks (scoring.serving.heap)."""
    drain = Drain(drain_seconds)
    metrics = ServerMetrics()
    batcher = Batcher(on_batch=metrics.observe_batch, enabled=batching)
    holder.on_swap = lambda outcome, previous, candidate: _after_swap(metrics, outcome, previous, candidate)
    metrics.answering(holder.current.name, holder.current.version)
    if inference_log is not None:
        inference_log.on_dropped = metrics.log_dropped.inc

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def health(request: Request) -> Response:
        served, status = holder.current, holder.status
        return JSONResponse(
            {
                "status": "draining" if drain.draining else "ok",
                "model_uri": holder.model_uri,
                "model_name": served.name,
                "model_version": served.version,
                "serving": served.resolved.load_uri,
                "backend": served.kind,
                "how": served.how,
                "follows_registry": holder.follows,
                "last_registry_check": status.last_check,
                "error": status.error,
                "inference_log": inference_log.status() if inference_log is not None else None,
            },
            status_code=503 if drain.draining else 200,
        )

    async def version(request: Request) -> Response:
        return PlainTextResponse(mlflow.__version__)

    async def metrics_text(request: Request) -> Response:
        body, media_type = metrics.scrape()
        return Response(body, headers={"Content-Type": media_type})

    async def invocations(request: Request) -> Response:
        served = holder.current  # this request's version, whatever a swap does meanwhile
        try:
            media = content_type_of(request.headers.get("content-type"))
            parsed = parse_body(await _read_body(request, max_body_bytes), media)
            wanted = _probability_requested(parsed.params, request.query_params.get("probability"))
            prediction = await score(served, bind_columns(parsed, served.inputs), wanted)
        except RequestError as exc:
            return _error(exc.status, exc.error_code, exc.message, served)
        except Exception as exc:  # noqa: BLE001 - the model failed: a short message, the traceback stays in the log
            _logger.exception("model %s failed on a request", served.label)
            return _error(500, "INTERNAL_ERROR", f"model {served.label} failed: {type(exc).__name__}: "
                          f"{first_line(exc)}", served)  # fmt: skip
        return _answer(prediction, wanted, served)

    async def score(served: ServedModel, rows: Rows, wanted: bool) -> Prediction:
        """Predict (batched) and log: what /invocations and the Open Inference Protocol's infer share."""
        metrics.request_rows.observe(rows.n_rows)
        # The log keeps a classifier's probabilities whether or not this client asked for them.
        logs_probability = inference_log is not None and served.classes is not None
        prediction = await batcher.predict(served, rows, wanted or logs_probability)
        if inference_log is not None:
            inference_log.submit(LoggedRequest.of(rows, prediction, served, current_request_id.get()))
        return prediction

    async def http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        message = {404: f"no endpoint {request.url.path}; POST /invocations, GET /ping /health /version"}
        return _error(exc.status_code, codes.get(exc.status_code, "BAD_REQUEST"),
                      message.get(exc.status_code, exc.detail), None)  # fmt: skip

    @asynccontextmanager
    async def lifespan(app):
        freeze_what_is_loaded()
        drain.install()
        holder.start_following()
        if inference_log is not None:
            inference_log.start()
        yield
        holder.stop()
        if inference_log is not None:
            inference_log.close()  # what is still queued is written before the process ends
        metrics.worker_stopped()

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            *v2_routes(lambda: holder.current, lambda: not drain.draining, score),
            *([webhook_route(holder, webhook_secret)] if webhook_secret else []),
            Route("/invocations", invocations, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error},
        middleware=[Middleware(RequestIdMiddleware), Middleware(MetricsMiddleware, metrics=metrics), drain.closing()],
        lifespan=lifespan,
    )
    app.state.drain = drain
    return app


def _after_swap(metrics: ServerMetrics, outcome: str, previous: ServedModel, candidate: ServedModel | None) -> None:
    metrics.swaps.labels(outcome).inc()
    if candidate is not None:
        metrics.answering(candidate.name, candidate.version, previous=(previous.name or "", previous.version or ""))
        refreeze_after_swap()


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (by its declared length, or while reading)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is {int(declared)} bytes; the limit is {limit} (max_body_mb)",
                           "REQUEST_TOO_LARGE")  # fmt: skip
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body passes the limit of {limit} bytes (max_body_mb)", "REQUEST_TOO_LARGE")
        chunks.append(chunk)
    return b"".join(chunks)


def _probability_requested(params: dict, query: str | None) -> bool:
    value = params.get("probability", query if query is not None else False)
    if isinstance(value, bool):
        return value
    try:
        return boolean(str(value))
    except ArgumentTypeError:
        raise RequestError(400, f"probability must be true or false, got {value!r}") from None


def _model_headers(served: ServedModel | None) -> dict[str, str]:
    if served is None:
        return {}
    headers = {"X-Model-Uri": served.resolved.load_uri}
    if served.name:
        headers |= {"X-Model-Name": served.name, "X-Model-Version": str(served.version)}
    return headers


def _answer(prediction: Prediction, wanted: bool, served: ServedModel) -> Response:
    body: dict = {"predictions": prediction.values}
    if wanted:
        body["predictions"] = [
            {"prediction": value, "probability": p}
            for value, p in zip(prediction.values, prediction.probability, strict=True)
        ]
        body["classes"] = [_json_scalar(c) for c in served.classes]
    body |= {"model_name": served.name, "model_version": served.version}
    return Response(json.dumps(body, allow_nan=True), media_type="application/json", headers=_model_headers(served))


def _json_scalar(value):
    """NumPy scalars (a classifier's classes) as plain JSON values."""
    return value.item() if hasattr(value, "item") else value


def _error(status: int, code: str, message: str, served: ServedModel | None) -> Response:
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=_model_headers(served))
