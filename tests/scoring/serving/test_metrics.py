"""GET /metrics: Prometheus' text format, read back by prometheus-client's own parser, with exact counts after
known requests; a scrape during a swap answers, and the swap shows in the counts and the model gauge.

In-process (one worker, the app's own registry); the multiprocess mode is exercised by the end-to-end swap test in
test_server.py, which scrapes a two-worker server."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from scoring.serving.app import build_app
from scoring.serving.model_holder import ModelHolder
from scoring.serving.served_model import load_served_model
from tests.asgi import call, post_json
from tests.scoring.serving.conftest import FEATURES, split_body
from tests.shapes.conftest import using_store


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels without pid): value}, summed over worker processes."""
    found: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            found[(sample.name, labels)] = found.get((sample.name, labels), 0.0) + sample.value
    return found


def _scrape(app) -> dict[tuple, float]:
    reply = call(app, "GET", "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    return samples(reply.body.decode())


def test_counts_after_known_requests(app_for):
    app = app_for("models:/cancer/1")

    for n in (1, 2, 5):
        assert post_json(app, split_body(FEATURES.head(n))).status == 200
    assert post_json(app, {"dataframe_records": [{"mean_radius": 1.0}]}).status == 400
    assert call(app, "GET", "/ping").status == 200
    assert call(app, "GET", "/nowhere").status == 404
    found = _scrape(app)

    def requests(endpoint, status):
        return found.get(("serving_requests_total", (("endpoint", endpoint), ("status", status))))

    assert (requests("/invocations", "200"), requests("/invocations", "400")) == (3.0, 1.0)
    assert (requests("/ping", "200"), requests("other", "404")) == (1.0, 1.0)
    assert found[("serving_request_seconds_count", (("endpoint", "/invocations"),))] == 4.0
    assert found[("serving_request_rows_count", ())] == 3.0 and found[("serving_request_rows_sum", ())] == 8.0
    assert found[("serving_batch_rows_sum", ())] == 8.0  # requests one at a time: one batch each
    assert found[("serving_batch_requests_count", ())] == 3.0
    assert found[("serving_model_info", (("model_name", "cancer"), ("model_version", "1")))] == 1.0
    assert found[("serving_swaps_total", (("outcome", "done"),))] == 0.0
    assert found[("serving_inference_log_dropped_rows_total", ())] == 0.0


def test_a_scrape_during_a_swap_answers_and_the_swap_is_counted(store, tmp_path):
    from scoring.serving.inference_log import InferenceLog

    loading, release = threading.Event(), threading.Event()

    def slow_loader(client, resolved):
        if resolved.model_version == "2":
            loading.set()
            release.wait(60)
        return load_served_model(client, resolved)

    with using_store(store):
        import mlflow

        mlflow.MlflowClient().set_registered_model_alias("cancer", "metrics_test", "1")
        holder = ModelHolder.load("models:/cancer@metrics_test", 60, loader=slow_loader)
        log = InferenceLog(tmp_path / "log", queue_rows=1)
        app = build_app(holder, 2**20, log)
        assert post_json(app, split_body(FEATURES.head(3))).status == 200  # 3 rows > the log's queue: dropped
        mlflow.MlflowClient().set_registered_model_alias("cancer", "metrics_test", "2")
        swap = threading.Thread(target=holder.check_once)
        swap.start()
        assert loading.wait(60)
        during = _scrape(app)  # v2 is loading: the scrape answers meanwhile
        release.set()
        swap.join(60)
    after = _scrape(app)

    v1 = ("serving_model_info", (("model_name", "cancer"), ("model_version", "1")))
    v2 = ("serving_model_info", (("model_name", "cancer"), ("model_version", "2")))
    assert during[v1] == 1.0 and during[("serving_swaps_total", (("outcome", "done"),))] == 0.0
    assert (after[v1], after[v2]) == (0.0, 1.0)
    assert after[("serving_swaps_total", (("outcome", "done"),))] == 1.0
    assert after[("serving_inference_log_dropped_rows_total", ())] == 3.0


def test_with_batching_off_every_request_is_predicted_alone(store):
    import asyncio

    from tests.asgi import call_async

    with using_store(store):
        app = build_app(ModelHolder.load("models:/cancer/1", 60), 2**20, batching=False)
    body = split_body(FEATURES.head(1))

    async def all_at_once():
        import json

        encoded = json.dumps(body).encode()
        return await asyncio.gather(
            *[call_async(app, "POST", "/invocations", encoded, "application/json") for _ in range(12)]
        )

    replies = asyncio.run(all_at_once())
    found = _scrape(app)

    assert [r.status for r in replies] == [200] * 12
    assert found[("serving_batch_requests_count", ())] == 12.0 and found[("serving_batch_requests_sum", ())] == 12.0
