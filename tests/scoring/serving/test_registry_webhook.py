"""Swaps pushed by registry webhooks: a delivery signed as MLflow signs it (its own signing function and payload
shape) for the followed model starts loading the version the alias now names; a bad signature is a 401 and loads
nothing; an event about another model is acknowledged and ignored."""

from __future__ import annotations

import json
import time
import uuid

import mlflow
from mlflow.webhooks.delivery import _generate_hmac_signature

from scoring.serving.app import build_app
from scoring.serving.model_holder import ModelHolder
from scoring.serving.served_model import load_served_model
from tests.asgi import call
from tests.shapes.conftest import using_store

SECRET = "s3cret-for-tests"


def _delivery(data: dict, secret: str = SECRET, entity: str = "model_version_alias", action: str = "created"):
    body = json.dumps({"entity": entity, "action": action, "timestamp": "2026-12-07T00:00:00+00:00", "data": data})
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, timestamp, body),
    }
    return body.encode(), headers


def test_a_signed_alias_event_swaps_at_once_and_bad_or_foreign_events_load_nothing(store):
    loads = []

    def counting_loader(client, resolved):
        loads.append(resolved.model_version)
        return load_served_model(client, resolved)

    with using_store(store):
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("cancer", "webhook_test", "1")
        holder = ModelHolder.load("models:/cancer@webhook_test", 3600, loader=counting_loader)  # no poll will come
        app = build_app(holder, 2**20, webhook_secret=SECRET)
        client.set_registered_model_alias("cancer", "webhook_test", "2")
        event = {"name": "cancer", "alias": "webhook_test", "version": "2"}

        forged_body, forged_headers = _delivery(event, secret="not-the-secret")
        forged = call(app, "POST", "/webhooks/mlflow", forged_body, "application/json", headers=forged_headers)
        other_body, other_headers = _delivery({"name": "titanic", "alias": "champion", "version": "4"})
        other = call(app, "POST", "/webhooks/mlflow", other_body, "application/json", headers=other_headers)
        before = holder.event_thread
        body, headers = _delivery(event)
        accepted = call(app, "POST", "/webhooks/mlflow", body, "application/json", headers=headers)
        holder.event_thread.join(120)

    assert forged.status == 401 and "signature does not match" in forged.json()["error"]
    assert other.status == 200 and "titanic" in other.json()["ignored"]
    assert before is None  # neither the forged nor the foreign event started a check
    assert accepted.status == 202
    assert loads == ["1", "2"] and holder.current.version == "2"


def test_without_a_secret_there_is_no_webhook_endpoint(app_for):
    assert call(app_for("models:/cancer/1"), "POST", "/webhooks/mlflow", b"{}", "application/json").status == 404


def test_an_event_one_worker_receives_makes_the_others_swap_too(store, tmp_path):
    """Several workers share one event file: the worker a delivery reaches stamps it, the others (polling once an
    hour here) see the stamp change and check the registry at once."""
    shared = tmp_path / "registry-event"
    with using_store(store):
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("cancer", "shared_test", "1")
        receiving = ModelHolder.load("models:/cancer@shared_test", 3600, shared_events=shared)
        other = ModelHolder.load("models:/cancer@shared_test", 3600, shared_events=shared)
        other.start_following()
        try:
            client.set_registered_model_alias("cancer", "shared_test", "2")
            app = build_app(receiving, 2**20, webhook_secret=SECRET)
            body, headers = _delivery({"name": "cancer", "alias": "shared_test", "version": "2"})
            accepted = call(app, "POST", "/webhooks/mlflow", body, "application/json", headers=headers)
            receiving.event_thread.join(120)
            deadline = time.monotonic() + 120  # the other worker's check runs in its own thread: wait for it
            while other.current.version != "2" and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            other.stop()

    assert accepted.status == 202
    assert (receiving.current.version, other.current.version) == ("2", "2")
    assert other.status.error is None
