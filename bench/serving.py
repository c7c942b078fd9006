"""Real-time serving: our scoring server (`python -m scoring.serving.serve`) side by side with `mlflow models serve`.

    python -m bench.serving                        # full request counts (about 20 minutes on 2 cores)
    python -m bench.serving --quick                # fewer requests (about 7 minutes, half of it training)
    python -m bench.serving --quick --workdir DIR  # keep DIR (store, server logs); a second run trains nothing

In a throw-away folder with its own SQLite store, trains and registers through the project's entry points (`mlflow
run <repo> -e ... --env-manager local`) the Titanic MLlib pipeline (`titanic`), a 100-tree scikit-learn forest
(`forest`, twice: versions 1 and 2, two seeds) and a logistic regression (`logreg`). For each model both servers run
side by side, one worker each, on loopback: after /ping answers and a warm-up, the same single-row bodies (real rows
of the bundled data, label dropped; Titanic rows with their names and missing ages) are sent to both, predictions
compared, then measured over keep-alive connections (bench.http_load): latency p50 / p99 at concurrency 1 and
requests/s at concurrency 8, ours and mlflow's interleaved (two rounds, the better counts; one with --quick). A
server that answers one request at a time slower than the time budget allows (MLlib through mlflow models serve: a
Spark job per request) gets fewer requests (at least 30). Then, against our server only: 10,000 requests at
concurrency 16 on `models:/forest/1`, and 10,000 on `models:/forest@champion` (`--reload-seconds 1`) while the alias
moves from version 1 to 2 (2,000 and 3,000 with --quick); every answer says which version gave it (X-Model-Version).
Prints one table of side-by-side ratios and the goals next to what was measured. Every server runs in a process
group of its own, stopped on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from bench._common import bench_settings, print_table, workdir
from bench.http_load import LoadResult, run_load
from common.datasets import load_table

REPO = Path(__file__).resolve().parent.parent
JSON = "application/json"
BODY_ROWS = 64  # distinct single-row bodies per model, sent in turn
PARITY_ROWS = 32


@dataclass(frozen=True)
class ModelSpec:
    name: str
    entry_point: str
    data: str
    label: str
    params: dict[str, str]
    mllib: bool = False


FOREST_PARAMS = {"estimator": "random_forest", "hyperparams": '{"n_estimators": 100}'}
MODELS = (
    ModelSpec("titanic", "train_mllib", "titanic", "survived", {"title_from": "name"}, mllib=True),
    ModelSpec("forest", "train_sklearn", "breast_cancer", "target", FOREST_PARAMS),
    ModelSpec("logreg", "train_sklearn", "breast_cancer", "target", {"estimator": "logistic_regression"}),
)
SECOND_FOREST_SEED = "7"


@dataclass(frozen=True)
class Counts:
    budget_seconds: float  # a measurement sends fewer requests when a serial server would take longer
    warmup: int
    single: int  # concurrency 1
    rate: int  # concurrency 8
    mllib_mlflow_single: int  # MLlib through mlflow models serve: a Spark job per request
    mllib_mlflow_rate: int
    stress: int  # concurrency 16, ours
    swap: int
    rounds: int

    def for_server(self, model: ModelSpec, server: str, seconds_each: float = 0.0) -> tuple[int, int, int]:
        """(warm-up, concurrency-1, concurrency-8) request counts; at `seconds_each` per request (the warm-up's p50),
        no more than the time budget allows, if the server answered one request at a time (at least 30)."""
        if model.mllib and server == "mlflow":
            warmup, single, rate = 10, self.mllib_mlflow_single, self.mllib_mlflow_rate
        else:
            warmup, single, rate = self.warmup, self.single, self.rate
        cap = max(30, int(self.budget_seconds / seconds_each)) if seconds_each > 0 else single + rate
        return warmup, min(single, cap), min(rate, cap)


FULL = Counts(
    budget_seconds=90, warmup=200, single=2_000, rate=4_000, mllib_mlflow_single=200, mllib_mlflow_rate=200,
    stress=10_000, swap=10_000, rounds=2,
)  # fmt: skip
QUICK = Counts(
    budget_seconds=20, warmup=50, single=300, rate=600, mllib_mlflow_single=30, mllib_mlflow_rate=40,
    stress=2_000, swap=3_000, rounds=1,
)  # fmt: skip
RATE_CONCURRENCY = 8
STRESS_CONCURRENCY = 16


# --- processes ----------------------------------------------------------------------------------------------------


def job_env(tracking_uri: str) -> dict[str, str]:
    """What a job or server process sees: this bench's store, a small local Spark, the venv's `python` first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_EXPERIMENT_NAME="bench",
        SPARK_MASTER="local[2]",
        SPARK_SHUFFLE_PARTITIONS="2",
        SPARK_DRIVER_MEMORY="1g",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    return env


def train(model: ModelSpec, tracking_uri: str, folder: Path, seed: str | None = None) -> float:
    """`mlflow run <repo> -e <entry point> --env-manager local`, as a user runs it; the seconds it took."""
    params = {"data": model.data, "label": model.label, **model.params, "model_name": model.name}
    if seed is not None:
        params["seed"] = seed
    command = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", model.entry_point, "--env-manager", "local"]
    command += ["--experiment-name", "bench"]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    print(f"training {model.name}{f' (seed {seed})' if seed else ''}: {model.entry_point}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=job_env(tracking_uri), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"training {model.name} failed (exit {done.returncode}):\n{tail}")
    return time.perf_counter() - started


@dataclass
class Server:
    label: str
    process: subprocess.Popen
    port: int
    log: Path
    started: float  # time.perf_counter() when the process was started

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def invocations(self) -> str:
        return f"{self.base}/invocations"

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Servers:
    """Every server this bench starts, each in a process group of its own; all stopped when the block ends."""

    def __init__(self, tracking_uri: str, folder: Path, env: dict[str, str] | None = None):
        self.tracking_uri, self.folder = tracking_uri, folder
        self.env = env or {}  # more for every server's environment (a team server's credentials, a webhook secret)
        self.running: list[Server] = []
        self._started = 0

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc) -> None:
        for server in list(self.running):
            self.stop(server)

    def ours(
        self,
        model_uri: str,
        reload_seconds: float = 5.0,
        extra: tuple[str, ...] = (),
        port: int | None = None,
        workers: int = 1,
    ) -> Server:
        port = port or _free_port()
        args = ["-m", "scoring.serving.serve", "--model-uri", model_uri, "--port", str(port), "--host", "127.0.0.1"]
        args += ["--workers", str(workers), "--reload-seconds", f"{reload_seconds:g}", *extra]
        return self._start(f"ours {model_uri}", args, port)

    def mlflow(self, model_uri: str) -> Server:
        port = _free_port()
        args = ["-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local", "-p", str(port)]
        args += ["--host", "127.0.0.1", "--workers", "1"]
        return self._start(f"mlflow {model_uri}", args, port)

    def _start(self, label: str, args: list[str], port: int) -> Server:
        self._started += 1
        log = self.folder / f"server-{self._started}-{label.split()[0]}-{port}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=REPO,
                env=job_env(self.tracking_uri) | self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: uvicorn's workers and a JVM go with it
            )
        server = Server(label, process, port, log, time.perf_counter())
        self.running.append(server)
        return server

    def stop(self, server: Server) -> None:
        if server in self.running:
            self.running.remove(server)
        if server.process.poll() is None:
            _signal_group(server.process, signal.SIGTERM)
            try:
                server.process.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(server.process, signal.SIGKILL)
                server.process.wait(10)
        _signal_group(server.process, signal.SIGKILL)  # whatever of the group outlived its leader (a JVM)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the group id is the leader's pid (start_new_session)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(server: Server, timeout: float = 300.0) -> float:
    """Seconds from the server's start until GET /ping answers 200; the server's log tail in the error if it exits
    or never answers."""
    started = server.started
    while time.perf_counter() - started < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.label} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.base}/ping", timeout=5) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{server.label} did not answer /ping within {timeout:.0f} s:\n{server.log_tail()}")


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": JSON}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")[:300]}


def health(server: Server) -> dict:
    try:
        with urllib.request.urlopen(f"{server.base}/health", timeout=10) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return {}


# --- bodies and parity --------------------------------------------------------------------------------------------


def single_row_bodies(model: ModelSpec, rows: int = BODY_ROWS) -> list[bytes]:
    """`rows` real rows of the model's data, label dropped, one `dataframe_split` body each (missing values null)."""
    frame = load_table(model.data).frame.drop(columns=[model.label])
    sample = frame.sample(n=min(rows, len(frame)), random_state=0)
    cleaned = sample.astype(object).where(pd.notna(sample), None)
    columns = list(cleaned.columns)
    return [
        json.dumps({"dataframe_split": {"columns": columns, "data": [list(row)]}}, default=_json_default).encode()
        for row in cleaned.itertuples(index=False, name=None)
    ]


def _json_default(value):
    return value.item() if hasattr(value, "item") else str(value)


def agreement(ours: Server, theirs: Server, bodies: list[bytes]) -> str:
    """How many single-row predictions the two servers agree on (numbers compared as numbers)."""
    same, problems = 0, []
    for body in bodies:
        (status_a, a), (status_b, b) = post(ours.invocations, body), post(theirs.invocations, body)
        if status_a != 200 or status_b != 200:
            problems.append(f"ours {status_a} {str(a)[:200]} / mlflow {status_b} {str(b)[:200]}")
            continue
        same += _same_prediction(a.get("predictions"), b.get("predictions"))
    for problem in problems[:3]:
        print(f"  parity request failed: {problem}", flush=True)
    return f"{same}/{len(bodies)}"


def _same_prediction(a, b) -> bool:
    a, b = _first(a), _first(b)
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    except (TypeError, ValueError):
        return a == b


def _first(predictions):
    value = predictions[0] if isinstance(predictions, list) and predictions else predictions
    if isinstance(value, dict):  # a pyfunc returning a frame: {"prediction": ...}
        value = value.get("prediction", next(iter(value.values()), None))
    return value


# --- measuring ----------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One (model, server): the better round at concurrency 1 (lower p50) and at 8 (higher req/s)."""

    single: LoadResult | None = None
    rate: LoadResult | None = None
    errors: int = 0
    agree: str = "-"
    backend: str = ""  # ours: onnx, python or spark (its /health)
    how: str = ""

    def add(self, single: LoadResult, rate: LoadResult) -> None:
        self.errors += single.error_count + rate.error_count
        if self.single is None or single.p50_ms < self.single.p50_ms:
            self.single = single
        if self.rate is None or rate.requests_per_second > self.rate.requests_per_second:
            self.rate = rate


def load(server: Server, bodies: list[bytes], requests: int, concurrency: int) -> LoadResult:
    result = run_load(server.invocations, bodies, JSON, requests, concurrency, timeout=120)
    print(f"  {server.label}: {result.summary()}", flush=True)
    if result.errors:
        print(f"  log tail of {server.label}:\n{server.log_tail(10)}", flush=True)
    return result


def compare(model: ModelSpec, servers: Servers, counts: Counts) -> dict[str, Figures]:
    """Both servers on one model, side by side: started together, warmed up, compared, measured interleaved."""
    uri = f"models:/{model.name}/1"
    started = {"ours": servers.ours(uri), "mlflow": servers.mlflow(uri)}
    try:
        for server in started.values():
            print(f"{model.name}: {server.label} ready after {wait_ready(server):.1f} s", flush=True)
        bodies = single_row_bodies(model)
        figures = {kind: Figures() for kind in started}
        state = health(started["ours"])
        figures["ours"].backend, figures["ours"].how = state.get("backend", "?"), state.get("how", "?")
        seconds_each = {}
        for kind, server in started.items():
            warmed = load(server, bodies, counts.for_server(model, kind)[0], 1)  # not counted
            seconds_each[kind] = warmed.p50_ms / 1000 if warmed.ok else 0.0
        agree = agreement(started["ours"], started["mlflow"], bodies[:PARITY_ROWS])
        figures["ours"].agree = figures["mlflow"].agree = agree
        for round_ in range(counts.rounds):
            print(f"{model.name}: round {round_ + 1} of {counts.rounds}", flush=True)
            results = {}
            for concurrency, position in ((1, 1), (RATE_CONCURRENCY, 2)):
                for kind, server in started.items():
                    requests = counts.for_server(model, kind, seconds_each[kind])[position]
                    results[kind, concurrency] = load(server, bodies, requests, concurrency)
            for kind in started:
                figures[kind].add(results[kind, 1], results[kind, RATE_CONCURRENCY])
        return figures
    finally:
        for server in started.values():
            servers.stop(server)


def stress(servers: Servers, requests: int) -> LoadResult:
    """Our server on the forest's version 1: `requests` at concurrency 16."""
    server = servers.ours("models:/forest/1")
    try:
        print(f"stress: {server.label} ready after {wait_ready(server):.1f} s", flush=True)
        bodies = single_row_bodies(MODELS[1])
        load(server, bodies, 100, STRESS_CONCURRENCY)  # warm-up
        return load(server, bodies, requests, STRESS_CONCURRENCY)
    finally:
        servers.stop(server)


@dataclass
class SwapOutcome:
    result: LoadResult
    moved_at_s: float  # when the alias moved, seconds after the load started
    health: dict


def swap(servers: Servers, requests: int, expected_rps: float) -> SwapOutcome:
    """Our server on `models:/forest@champion` (polling every second) under load while the alias moves 1 -> 2."""
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("forest", "champion", "1")
    server = servers.ours("models:/forest@champion", reload_seconds=1)
    try:
        print(f"swap: {server.label} ready after {wait_ready(server):.1f} s", flush=True)
        bodies = single_row_bodies(MODELS[1])
        load(server, bodies, 100, STRESS_CONCURRENCY)  # warm-up
        # Move the alias about a fifth of the way in, so v1 and v2 both answer a good share of the requests.
        delay = max(1.0, 0.2 * requests / expected_rps) if expected_rps > 0 else 2.0
        outcome: dict[str, LoadResult] = {}
        worker = threading.Thread(
            target=lambda: outcome.setdefault("result", load(server, bodies, requests, STRESS_CONCURRENCY)),
            name="swap-load",
            daemon=True,
        )
        started = time.perf_counter()
        worker.start()
        time.sleep(delay)
        moved_at = time.perf_counter() - started
        client.set_registered_model_alias("forest", "champion", "2")
        print(f"swap: alias champion moved to version 2 at {moved_at:.1f} s", flush=True)
        worker.join()
        if "result" not in outcome:
            raise RuntimeError("the swap load did not finish (see above)")
        return SwapOutcome(outcome["result"], moved_at, health(server))
    finally:
        servers.stop(server)


# --- report -------------------------------------------------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator and not math.isnan(denominator) else float("nan")


def print_report(
    figures: dict[str, dict[str, Figures]], stressed: LoadResult | None, swapped: SwapOutcome | None, code: str
) -> None:
    hows = []
    header = ["model", "ours with", "agree", "p50 ms ours", "mlflow", "speed-up", "p99 ms ours", "mlflow",
              "req/s@8 ours", "mlflow", "ratio", "errors ours", "mlflow"]  # fmt: skip
    rows = []
    for name, pair in figures.items():
        ours, theirs = pair["ours"], pair["mlflow"]
        rows.append([
            name, ours.backend, ours.agree,
            ours.single.p50_ms, theirs.single.p50_ms, ratio(theirs.single.p50_ms, ours.single.p50_ms),
            ours.single.p99_ms, theirs.single.p99_ms,
            ours.rate.requests_per_second, theirs.rate.requests_per_second,
            ratio(ours.rate.requests_per_second, theirs.rate.requests_per_second),
            ours.errors, theirs.errors,
        ])  # fmt: skip
        hows.append(f"  {name}: {ours.how}")
    print_table(
        "Single-row requests over keep-alive HTTP, one worker each: ours (scoring.serving.serve) vs mlflow models "
        "serve (speed-up = mlflow p50 / ours p50; ratio = ours req/s / mlflow req/s)",
        header,
        rows,
    )
    print("how our server answers each (its /health):", *hows, sep="\n")
    loads = [("models:/forest/1", stressed)] if stressed else []
    loads += [("models:/forest@champion, alias 1 -> 2", swapped.result)] if swapped else []
    if loads:
        print_table(
            "Our server under load: the forest, concurrency 16",
            ["run", "requests", "errors", "req/s", "p50 ms", "p99 ms", "reconnects", "versions that answered"],
            [_load_row(label, result) for label, result in loads],
        )
    if swapped:
        first = swapped.result.first_seen_s
        print(
            f"\nswap: alias moved at {swapped.moved_at_s:.1f} s; version 2 first answered at "
            f"{first.get('2', float('nan')):.1f} s; /health after: version {swapped.health.get('model_version')}, "
            f"error {swapped.health.get('error')}"
        )
    titanic = figures.get("titanic")
    goals = []
    if titanic:
        p50 = titanic["ours"].single.p50_ms
        speed_up = ratio(titanic["mlflow"].single.p50_ms, p50)
        goals.append(["MLlib (titanic) single-row p50 < 2 ms", f"{p50:.2f} ms", _met(p50 < 2)])
        goals.append(["MLlib: >= 100x faster p50 than mlflow models serve", f"{speed_up:,.0f}x", _met(speed_up >= 100)])
    for name in ("forest", "logreg"):
        if name in figures:
            pair = figures[name]
            rps = ratio(pair["ours"].rate.requests_per_second, pair["mlflow"].rate.requests_per_second)
            goals.append([f"scikit-learn ({name}): >= 2x req/s of mlflow at concurrency 8", f"{rps:.2f}x",
                          _met(rps >= 2)])  # fmt: skip
    if stressed:
        goals.append([f"{stressed.requests:,} requests at concurrency 16, 0 errors", f"{stressed.error_count} errors",
                      _met(stressed.error_count == 0 and stressed.ok == stressed.requests)])  # fmt: skip
    if swapped:
        result = swapped.result
        both = {"1", "2"} <= set(result.versions)
        goals.append([f"{result.requests:,} requests during the swap, 0 errors, both versions answer",
                      f"{result.error_count} errors, versions {_versions(result)}",
                      _met(result.error_count == 0 and result.ok == result.requests and both)])  # fmt: skip
    print_table("Goals", ["goal", "measured", "met"], goals)
    now = code_state()
    print(f"\nwhen the first server started, {code}" + ("" if now == code else f"; at the end, {now}"))


def code_state() -> str:
    """Which code our server ran: the commit, and whether scoring/ had changes not committed yet."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "scoring", "common")
    changed = f"; not committed in scoring/ and common/: {len(dirty.splitlines())} file(s)" if dirty else ""
    return f"our server's code: {git('rev-parse', '--short', 'HEAD') or '?'}{changed}"


def _load_row(label: str, result: LoadResult) -> list[object]:
    errors = ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "0"
    return [label, result.requests, errors, result.requests_per_second, result.p50_ms, result.p99_ms,
            result.reconnects, _versions(result)]  # fmt: skip


def _versions(result: LoadResult) -> str:
    return ", ".join(f"v{k}: {v:,}" for k, v in sorted(result.versions.items())) or "none"


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


# --- main ---------------------------------------------------------------------------------------------------------


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # SIGTERM unwinds like Ctrl-C: every server is stopped


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: a few minutes")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="use and keep this folder; models its store holds are not retrained"
    )
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _interrupt)

    folder = args.workdir.resolve() if args.workdir else workdir()
    folder.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(folder)
    print(f"work folder {folder}", flush=True)
    figures: dict[str, dict[str, Figures]] = {}
    stressed, swapped, code = None, None, "?"
    try:
        train_missing(settings.tracking_uri, folder)
        code = code_state()
        with Servers(settings.tracking_uri, folder) as servers:
            for model in MODELS:
                try:
                    figures[model.name] = compare(model, servers, counts)
                except RuntimeError as exc:  # a server that does not start: say so, go on with the next model
                    print(f"{model.name}: not measured: {exc}", flush=True)
            stressed = stress(servers, counts.stress)
            swapped = swap(servers, counts.swap, stressed.requests_per_second)
    finally:
        if figures:
            print_report(figures, stressed, swapped, code)
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)


def train_missing(tracking_uri: str, folder: Path) -> None:
    """Train what the store does not hold yet: version 1 of each model, and version 2 of the forest."""
    client = mlflow.MlflowClient()
    for model in MODELS:
        versions = len(client.search_model_versions(f"name='{model.name}'"))
        wanted = [None, SECOND_FOREST_SEED] if model.name == "forest" else [None]
        for seed in wanted[versions:]:
            print(f"  took {train(model, tracking_uri, folder, seed):.0f} s", flush=True)


if __name__ == "__main__":
    main()
