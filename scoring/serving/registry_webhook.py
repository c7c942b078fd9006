"""`POST /webhooks/mlflow`: swaps pushed by the registry. MLflow 3 sends signed webhooks on registry events from a
SQL-backed tracking server; on `model_version_alias.created` (an alias moved) or `model_version.created` for the
model this server follows, the server looks the URI up again at once and loads the version it names, instead of
waiting for its next poll (`reload_seconds`, which stays as the fallback when a delivery is lost).

Register it once on the tracking server (the secret is the one the server is started with, in
SERVE_WEBHOOK_SECRET):

    python -c "import mlflow, os; mlflow.MlflowClient().create_webhook(name='serve-titanic',
        url='http://<host>:5001/webhooks/mlflow', events=['model_version_alias.created'],
        secret=os.environ['SERVE_WEBHOOK_SECRET'])"

Verification follows MLflow's sender (mlflow/webhooks/delivery.py): `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of
"<delivery id>.<timestamp>.<body>">`, with `X-MLflow-Delivery-Id` and `X-MLflow-Timestamp`; a timestamp more than
five minutes off is refused too, so a captured delivery cannot be replayed later. A bad signature gets 401 and
loads nothing; an event about another model is acknowledged (200) and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scoring.serving.model_holder import ModelHolder

_logger = logging.getLogger(__name__)

SECRET_VARIABLE = "SERVE_WEBHOOK_SECRET"
_MAX_SKEW_SECONDS = 300
_SWAP_EVENTS = {("model_version_alias", "created"), ("model_version", "created")}


def signature_of(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_route(holder: ModelHolder, secret: str) -> Route:
    async def receive(request: Request) -> Response:
        body = await request.body()
        problem = _verify(secret, request.headers, body)
        if problem is not None:
            _logger.warning("registry webhook refused: %s", problem)
            return JSONResponse({"error": problem}, status_code=401)
        try:
            event = json.loads(body)
            kind, data = (event["entity"], event["action"]), event.get("data") or {}
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "not an MLflow webhook payload (entity, action, data)"}, status_code=400)
        served = holder.current
        if kind not in _SWAP_EVENTS or data.get("name") != served.name or not holder.follows:
            why = "" if holder.follows else f" (this server serves the fixed URI {holder.model_uri})"
            return JSONResponse({"ignored": f"{'.'.join(kind)} for model {data.get('name')!r}{why}"})
        _logger.info("registry webhook: %s for %s v%s; checking %s now", ".".join(kind), data.get("name"),
                     data.get("version"), holder.model_uri)  # fmt: skip
        holder.check_soon()
        return JSONResponse({"checking": holder.model_uri, "serving": served.label}, status_code=202)

    return Route("/webhooks/mlflow", receive, methods=["POST"])


def _verify(secret: str, headers, body: bytes) -> str | None:
    signature = headers.get("x-mlflow-signature")
    delivery_id, timestamp = headers.get("x-mlflow-delivery-id"), headers.get("x-mlflow-timestamp")
    if not (signature and delivery_id and timestamp):
        return "missing X-MLflow-Signature, X-MLflow-Delivery-Id or X-MLflow-Timestamp"
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > _MAX_SKEW_SECONDS:
        return f"timestamp {timestamp!r} is more than {_MAX_SKEW_SECONDS} s from now"
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if not hmac.compare_digest(signature, signature_of(secret, delivery_id, timestamp, text)):
        return "the signature does not match the body (wrong secret, or the body was changed)"
    return None
