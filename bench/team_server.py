"""Team mode's load figures, measured in one run: the same concurrent logging against the team stack's server
(basic-auth `mlflow server`, PostgreSQL behind it, artifacts proxied) and against one local SQLite file, with every
write read back; then rounds of concurrent promotions of one model on the server.

    python -m bench.team_server [--writers 8] [--steps 200] [--rounds 5]

Each writer is a process of its own (as separate jobs are): one run, 10 parameters, 4 metrics x `steps` steps in
batches of 50, one artifact. A lost write is a parameter, metric value or artifact the run does not hold afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

import mlflow

from bench._common import print_table
from lifecycle.team.registry_only import team_registry

METRICS = ("loss", "accuracy", "f1", "auc")
BATCH = 50


def write_one_run(tracking_uri: str, experiment: str, steps: int, seed: int) -> tuple[str | None, float, str]:
    """(run id, seconds, error or ''): one job's worth of writes."""
    started = time.perf_counter()
    try:
        mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient()
        experiment_id = _experiment_id(client, experiment)
        run = client.create_run(experiment_id)
        run_id = run.info.run_id
        client.log_batch(run_id, params=[mlflow.entities.Param(f"p{i}", str(seed * 100 + i)) for i in range(10)])
        values = [mlflow.entities.Metric(m, float(step), 0, step) for step in range(steps) for m in METRICS]
        for start in range(0, len(values), BATCH):
            client.log_batch(run_id, metrics=values[start : start + BATCH])
        client.log_text(run_id, f"writer {seed}\n", "notes/writer.txt")
        client.set_terminated(run_id)
        return run_id, time.perf_counter() - started, ""
    except Exception as exc:  # noqa: BLE001 - a benchmark counts failures rather than stopping at the first
        return None, time.perf_counter() - started, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


def _experiment_id(client: mlflow.MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except mlflow.exceptions.MlflowException:  # another writer created it first
        return client.get_experiment_by_name(name).experiment_id


def lost_writes(tracking_uri: str, run_id: str, steps: int) -> int:
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    lost = 10 - len(run.data.params)
    for metric in METRICS:
        lost += steps - len(client.get_metric_history(run_id, metric))
    files = [f.path for f in client.list_artifacts(run_id, "notes")]
    return lost + (0 if files == ["notes/writer.txt"] else 1)


def concurrent_logging(pool, tracking_uri: str, writers: int, steps: int) -> tuple[list[object], list[str]]:
    experiment = f"load-{time.time_ns()}"
    _experiment_id(mlflow.MlflowClient(tracking_uri), experiment)
    started = time.perf_counter()
    results = pool.starmap(write_one_run, [(tracking_uri, experiment, steps, seed) for seed in range(writers)])
    wall = time.perf_counter() - started
    errors = [error for _, _, error in results if error]
    lost = sum(lost_writes(tracking_uri, run_id, steps) for run_id, _, _ in results if run_id)
    writes = writers * (10 + steps * len(METRICS) + 1)
    return [writers, len(results) - len(errors), len(errors), lost, round(wall, 2), round(writes / wall)], errors


def promotion_round(pool, tracking_uri: str, versions: list[str]) -> tuple[int, int, float]:
    """(Production versions afterwards, promotions that won, seconds) for one round of all `versions` at once."""
    started = time.perf_counter()
    outcomes = pool.starmap(promote_one, [(tracking_uri, version) for version in versions])
    seconds = time.perf_counter() - started
    client = mlflow.MlflowClient(tracking_uri)
    production = [v for v in client.search_model_versions("name = 'race'") if v.current_stage == "Production"]
    return len(production), sum(outcomes), seconds


def promote_one(tracking_uri: str, version: str) -> bool:
    from common.errors import UserInputError
    from registry import promote

    os.environ.update(MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_EXPERIMENT_NAME="bench-promotions")
    try:
        promote.main(["--model-name", "race", "--version", version, "--stage", "production", "--force", "true",
                      "--reason", "bench"])  # fmt: skip
        return True
    except UserInputError:  # lost the race, and said so
        return False


def register_versions(tracking_uri: str, count: int) -> list[str]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("bench-promotions")
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with mlflow.start_run():
        first = log_sklearn_model(LogisticRegression().fit(X, [0, 1, 0, 1]), X, registered_model_name="race")
    source = mlflow.MlflowClient().get_model_version("race", first.registered_model_version).source
    return [first.registered_model_version] + [mlflow.register_model(source, "race").version for _ in range(count - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-team-"))
    try:
        with team_registry(root) as registry:
            _measure(args, root, registry.server.url, registry.env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(args, root: Path, server_url: str, admin_env: dict[str, str]) -> None:
    os.environ.update({k: v for k, v in admin_env.items() if k != "MLFLOW_TRACKING_URI"})
    sqlite = f"sqlite:///{root / 'local.db'}"
    mlflow.MlflowClient(sqlite).search_experiments()  # migrate before the writers race to
    with multiprocessing.get_context("spawn").Pool(args.writers) as pool:
        rows, failures = [], {}
        for store, uri in (("team server (PostgreSQL, basic-auth)", server_url), ("local SQLite file", sqlite)):
            row, errors = concurrent_logging(pool, uri, args.writers, args.steps)
            rows.append([store, *row])
            failures[store] = errors
        rows.append(["server / SQLite (writes/s)", "", "", "", "", "", f"{rows[0][-1] / rows[1][-1]:.2f}x"])
        print_table(f"Concurrent logging: {args.writers} writer processes, each 10 params, "
                    f"{len(METRICS)} metrics x {args.steps} steps, 1 artifact",
                    ["store", "writers", "ok", "errors", "lost writes", "seconds", "writes/s"], rows)  # fmt: skip
        for store, errors in failures.items():
            for error in sorted(set(errors)):
                print(f"  {store}: {errors.count(error)} x {error}")

        versions = register_versions(server_url, args.writers)
        rounds = [promotion_round(pool, server_url, versions) for _ in range(args.rounds)]
    print_table(f"Concurrent promotions on the team server: {len(versions)} at once, {args.rounds} rounds",
                ["round", "Production versions after", "promotions that won", "seconds"],
                [[i + 1, *r] for i, r in enumerate(rounds)])  # fmt: skip


if __name__ == "__main__":
    main()
