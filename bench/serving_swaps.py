"""Swap latency in team mode: how long after a registry alias moves the version it now names answers requests, when
the move is pushed to the server by a registry webhook and when the server finds it by polling alone.

    python -m bench.serving_swaps [--promotions 10] [--reload-seconds 10]

Starts the team stack's PostgreSQL and `mlflow server` (basic-auth, as `make team` runs them; no Spark cluster) in a
throw-away folder, registers a small scikit-learn model `2 x promotions + 1` times, then runs our server on
`models:/swaps@production` twice, one worker each, with the default `--reload-seconds`:

- webhook: started with SERVE_WEBHOOK_SECRET, a webhook on `model_version_alias.created` registered on the tracking
  server first (`MlflowClient().create_webhook`, the README's command);
- polling: no secret, so the same server finds each move at its next registry poll.

Each promotion moves the alias to the next version (`set_registered_model_alias`), then one client posts a single-row
request every 20 ms until an answer's X-Model-Version is the new version; the latency is from just before the alias
call to that answer. A random pause of 0.5-3 s between promotions keeps them from falling in step with the poll.
Goal: <= 2 s p50 with the webhook.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow

from bench._common import print_table
from bench.http_load import percentile
from bench.serving import Server, Servers, wait_ready
from lifecycle.team.processes import free_port
from lifecycle.team.registry_only import TeamRegistry, team_registry

MODEL, ALIAS = "swaps", "production"
BODY = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1.5]]}}).encode()
SECRET = "bench-serving-swaps"
PROBE_SECONDS = 0.02
GIVE_UP_SECONDS = 120.0
DEFAULT_RELOAD_SECONDS = 10.0  # serve's own default


def register_versions(count: int) -> list[str]:
    """`count` versions of one small logistic regression (logged once, registered `count` times)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    mlflow.set_experiment("bench-swaps")
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with mlflow.start_run():
        first = log_sklearn_model(LogisticRegression().fit(X, [0, 1, 0, 1]), X, registered_model_name=MODEL)
    source = mlflow.MlflowClient().get_model_version(MODEL, first.registered_model_version).source
    return [first.registered_model_version] + [mlflow.register_model(source, MODEL).version for _ in range(count - 1)]


def answering_version(server: Server) -> str | None:
    request = urllib.request.Request(server.invocations, BODY, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a local server
            return answer.headers.get("X-Model-Version")
    except (OSError, urllib.error.URLError):
        return None


def promote_and_time(
    client: mlflow.MlflowClient, server: Server, versions: list[str], rng: random.Random
) -> list[float]:
    """Seconds from each alias move to the first answer by the version it names (NaN after GIVE_UP_SECONDS)."""
    latencies = []
    for version in versions:
        time.sleep(rng.uniform(0.5, 3.0))
        started = time.perf_counter()
        client.set_registered_model_alias(MODEL, ALIAS, version)
        while answering_version(server) != version:
            if time.perf_counter() - started > GIVE_UP_SECONDS:
                print(f"  version {version} did not answer within {GIVE_UP_SECONDS:.0f} s:\n{server.log_tail(10)}")
                latencies.append(float("nan"))
                break
            time.sleep(PROBE_SECONDS)
        else:
            latencies.append(time.perf_counter() - started)
        print(f"  alias {ALIAS} -> v{version}: answered after {latencies[-1]:.2f} s", flush=True)
    return latencies


def measure(registry: TeamRegistry, folder: Path, promotions: int, reload_seconds: float) -> dict[str, list[float]]:
    """{"webhook": latencies, "polling": latencies}: the webhook run first, since the tracking server caches which
    webhooks an event has for a minute (an alias moved before the webhook exists would hide it that long)."""
    os.environ.update(registry.env)  # this process's client, as the admin
    mlflow.set_tracking_uri(registry.server.url)
    client = mlflow.MlflowClient()
    versions = register_versions(2 * promotions + 1)
    rng = random.Random(0)
    port = free_port()
    client.create_webhook(name="bench-serve", url=f"http://127.0.0.1:{port}/webhooks/mlflow",
                          events=["model_version_alias.created"], secret=SECRET)  # fmt: skip
    client.set_registered_model_alias(MODEL, ALIAS, versions[0])
    uri = f"models:/{MODEL}@{ALIAS}"
    results = {}
    runs = (("webhook", {"SERVE_WEBHOOK_SECRET": SECRET}, port, versions[1 : promotions + 1]),
            ("polling", {}, None, versions[promotions + 1 :]))  # fmt: skip
    for label, env, fixed_port, moves in runs:
        with Servers(registry.server.url, folder, env=registry.env | env) as servers:
            server = servers.ours(uri, reload_seconds=reload_seconds, port=fixed_port)
            print(f"{label}: {server.label} ready after {wait_ready(server):.1f} s", flush=True)
            results[label] = promote_and_time(client, server, moves, rng)
    return results


def report(results: dict[str, list[float]], reload_seconds: float) -> list[list[object]]:
    rows = []
    for label, latencies in results.items():
        answered = [s for s in latencies if s == s]  # NaN: never answered
        worst = max(answered, default=float("nan"))
        rows.append([f"{label} (reload_seconds {reload_seconds:g})", f"{len(answered)}/{len(latencies)}",
                     percentile(answered, 50), percentile(answered, 90), worst])  # fmt: skip
    print_table("Swap latency after an alias move, team mode (mlflow server on PostgreSQL), one worker",
                ["how the server learns of it", "answered", "p50 s", "p90 s", "max s"], rows)  # fmt: skip
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", type=int, default=10)
    parser.add_argument("--reload-seconds", type=float, default=DEFAULT_RELOAD_SECONDS)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-swaps-"))
    try:
        with team_registry(root) as registry:
            results = measure(registry, root, args.promotions, args.reload_seconds)
        report(results, args.reload_seconds)
        p50 = percentile([s for s in results["webhook"] if s == s], 50)
        print(f"webhook p50 {p50:.2f} s (goal <= 2 s): {'met' if p50 <= 2 else 'NOT met'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
