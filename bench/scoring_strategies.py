"""Every way to score a scikit-learn model on Spark, side by side, against the in-process limit.

    python -m bench.scoring_strategies            # 1M x 20 and 200k x 300 features (tens of minutes)
    python -m bench.scoring_strategies --quick    # 100k x 20 and 20k x 300 (a few minutes)

For a logistic regression and a 100-tree forest: rows/s, and the fraction of the in-process limit (two plain
Python processes: Parquet in -> predict -> Parquet out), of a per-row UDF (on a sample), a grouped collect_list
over row groups, applyInPandas over row groups, mapInPandas, mlflow.pyfunc.spark_udf, and each of our strategies. Every
path reads the same Parquet folder on local[2] and writes Parquet. Each is warmed up on a small sample first;
then every path is timed once per round, two rounds interleaved, and the faster counts (paths slower than 15 s
run once).

What a timed run includes:
- the baselines and `ours: arrow / pandas / grouped / spark_udf`: Spark writing the scored DataFrame as Parquet
  (reading, scoring and writing; the model resolved, shipped and the plan made before the clock starts).
- `ours: files`: scoring.files.strategy.run_files on a plan made before the clock starts (input listed, footers read,
  slices cut, model shipped), i.e. the tasks reading, scoring and writing their parts, the driver's row checks and
  the staging folder's tidying; not the commit (one rename).
- `score_batch job: files / arrow`: the whole of score_batch's `run` on the running session (model resolved,
  input listed / counted, the tracking run and its logging, the write, the rows-out check, the commit).
- the in-process limit: two warm plain Python processes, each reading its half of the files with pyarrow,
  predict_proba on NumPy, writing Parquet (id, prediction, probability; the Spark paths also write the model's name
  and version).

Then the scaling of our paths (logistic regression, 20 features) at 1x, 5x and 10x the rows: for the DataFrame
default (`arrow`), 5x the rows should cost at most 5.25x the time; for `files`, 10x the rows at most 10.5x the time;
the Python driver's memory (RSS after each run) flat.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bench import _baselines as baselines
from bench._common import bench_settings, print_table, synthetic_classification, workdir, write_parquet_files
from bench._inprocess import InProcessScorer
from common.model_uri import resolve_model_uri
from common.spark import build_spark
from scoring.batch import score_batch
from scoring.batch.dataframe import model_info, score_dataframe
from scoring.batch.plan import arrow_batch_rows
from scoring.files.slices import list_parquet_input
from scoring.files.strategy import plan_files, run_files
from training.sklearn.model import log_sklearn_model

MODELS = {
    "LR": lambda: LogisticRegression(max_iter=1000),
    "RF100": lambda: RandomForestClassifier(n_estimators=100, max_depth=8, n_jobs=1, random_state=0),
}
OUR_STRATEGIES = ("arrow", "pandas", "grouped", "spark_udf")
FILES = "ours: files (run_files)"
ARROW = "ours: arrow (auto)"
SPARK_UDF = "mlflow.pyfunc.spark_udf (positional)"
LIMIT = "in-process limit (2 processes)"
JOB_STRATEGIES = ("files", "arrow")  # timed through score_batch's whole `run`
_SLOW_SECONDS = 15.0


@dataclass(frozen=True)
class Shape:
    rows: int
    features: int
    files: int

    @property
    def label(self) -> str:
        rows = f"{self.rows // 1_000_000}M" if self.rows % 1_000_000 == 0 else f"{self.rows // 1000}k"
        return f"{rows}x{self.features}"


class Bench:
    def __init__(self, spark, settings, folder: Path, udf_rows: int, udf_rows_forest: int):
        self.spark, self.settings, self.folder = spark, settings, folder
        self.udf_rows = {"LR": udf_rows, "RF100": udf_rows_forest}

    def time_write(self, frame, rows: int, repeats: int = 2, batch_rows: int | None = None) -> float:
        """rows/s of writing `frame` as Parquet (the best of `repeats`, one for slow paths)."""
        best = float("inf")
        for attempt in range(repeats):
            best = min(best, self.write_seconds(frame, batch_rows))
            if attempt == 0 and best > _SLOW_SECONDS:
                break
        return rows / best

    def write_seconds(self, frame, batch_rows: int | None = None) -> float:
        out = self.folder / "out"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        with arrow_batch_rows(self.spark, batch_rows):
            frame.write.parquet(str(out))
        return time.perf_counter() - started

    def files_plan(self, uri: str, source: Path, slice_rows: int | None = None):
        """The `files` strategy's plan for `source`, written into <folder>/files-out: listing, footers, slices,
        the model shipped. `slice_rows` cuts other slices than the strategy would (a warm-up on a sample that
        reaches every Python worker instead of being scored in the driver)."""
        resolved = resolve_model_uri(mlflow.MlflowClient(), uri)
        info = model_info(mlflow.get_tracking_uri(), resolved.load_uri)
        files = list_parquet_input(str(source))
        return plan_files(self.spark, files, resolved, info, str(self.folder / "files-out"), slice_rows)

    def files_seconds(self, planned) -> float:
        out = self.folder / "files-out"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        rows = run_files(self.spark, planned)
        seconds = time.perf_counter() - started
        if rows != planned.input.rows:
            raise RuntimeError(f"files: {rows} rows out of {planned.input.rows}")
        return seconds

    def job_seconds(self, uri: str, source: Path, strategy: str) -> float:
        """score_batch's whole `run` on the running session (overwrite, so every run has the same work)."""
        params = score_batch.ScoreBatchParams(
            model_uri=uri,
            input=str(source),
            output=str(self.folder / f"job-{strategy}"),
            overwrite=True,
            strategy=strategy,
        )
        started = time.perf_counter()
        result = score_batch.run(self.spark, self.settings, params)
        seconds = time.perf_counter() - started
        if result.rows_out != result.rows_in:
            raise RuntimeError(f"job {strategy}: {result.rows_out} rows out of {result.rows_in}")
        return seconds

    def measure_rounds(self, paths: list[tuple[str, Callable[[], float], int]], rounds: int = 2) -> dict[str, float]:
        """rows/s per path: every path once per round, the fastest round counting. Interleaved rather than
        back to back, so a burst of other work on a shared machine does not land on one path's every run."""
        best: dict[str, float] = {}
        for round_ in range(rounds):
            for label, timed, _ in paths:
                if round_ and (label not in best or best[label] > _SLOW_SECONDS):
                    continue  # failed, or slow enough that one run is plenty
                try:
                    best[label] = min(best.get(label, float("inf")), timed())
                except Exception as exc:  # noqa: BLE001 - a path that fails is reported in the table, not fatal
                    print(f"  {label} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
        return {label: rows / best[label] if label in best else float("nan") for label, _, rows in paths}


def _prepare(folder: Path, shape: Shape, udf_rows: int):
    data = synthetic_classification(shape.rows, shape.features)
    features = [c for c in data.columns if c.startswith("f")]
    train = data.sample(min(20_000, shape.rows), random_state=0)
    source = write_parquet_files(data.drop(columns="label"), folder / f"in-{shape.label}", shape.files)
    sample = write_parquet_files(data.drop(columns="label").head(udf_rows), folder / f"sample-{shape.label}", 4)
    del data
    gc.collect()
    return train, features, source, sample


def run_shape(bench: Bench, shape: Shape, results: dict) -> None:
    spark = bench.spark
    train, features, source_path, sample_path = _prepare(bench.folder, shape, max(bench.udf_rows.values()))
    source, sample = spark.read.parquet(str(source_path)), spark.read.parquet(str(sample_path))
    for model_label, factory in MODELS.items():
        column = f"{model_label} {shape.label}"
        print(f"{column}: training and logging", flush=True)
        name = f"bench_{model_label}_{shape.features}".lower()
        model = factory().fit(train[features], train["label"])
        with mlflow.start_run():
            log_sklearn_model(model, train[features], registered_model_name=name)
        uri = f"models:/{name}/1"
        figures = results.setdefault(column, {})

        limit = InProcessScorer(mlflow.artifacts.download_artifacts(uri, dst_path=str(bench.folder / name)))
        limit.score(sample_path, bench.folder / "limit-warm")

        def limit_seconds(limit=limit) -> float:
            started = time.perf_counter()
            limit.score(source_path, bench.folder / "limit-out")
            return time.perf_counter() - started

        n_udf = bench.udf_rows[model_label]
        udf_sample = sample.limit(n_udf).repartition(2).cache()  # both cores, and no limit in the timed plan
        udf_sample.count()
        builders = [
            ("per-row UDF (on a sample, see below)", baselines.per_row_udf(spark, model, features), None),
            (
                "grouped collect_list (row groups)",
                baselines.grouped_collect_list(spark, model, features, shape.rows),
                None,
            ),
            ("applyInPandas over row groups", baselines.grouped_apply_in_pandas(spark, model, features), None),
            ("mapInPandas (model once per task)", baselines.map_in_pandas(spark, model, features), None),
            ("mlflow.pyfunc.spark_udf (positional)", baselines.mlflow_spark_udf(spark, uri, features), None),
        ]
        for strategy in OUR_STRATEGIES:
            label = f"ours: {strategy}" + (" (auto)" if strategy == "arrow" else "")
            batch_rows = score_dataframe(spark, source, uri, strategy=strategy).batch_rows

            def build(df, strategy=strategy, uri=uri):
                return score_dataframe(spark, df, uri, strategy=strategy).frame

            builders.append((label, build, batch_rows))
        paths = [(LIMIT, limit_seconds, shape.rows)]
        for label, build, batch_rows in builders:
            per_row = label.startswith("per-row")
            print(f"{column}: warming up {label}", flush=True)
            try:  # worker start and model load on a small input, before anything is timed
                bench.write_seconds(build(sample.limit(200) if per_row else sample), batch_rows)
            except Exception as exc:  # noqa: BLE001 - measure_rounds reports it
                print(f"  warm-up of {label} failed: {type(exc).__name__}", flush=True)
            frame = build(udf_sample if per_row else source)
            paths.append(
                (
                    label,
                    lambda frame=frame, b=batch_rows: bench.write_seconds(frame, b),
                    n_udf if per_row else shape.rows,
                )
            )
        paths += _files_paths(bench, column, uri, source_path, sample_path, shape.rows)
        print(f"{column}: timing {len(paths)} paths, interleaved", flush=True)
        figures.update(bench.measure_rounds(paths))
        limit.close()
        print(f"{column}: " + ", ".join(f"{k} {v:,.0f}" for k, v in figures.items()), flush=True)


def _files_paths(bench: Bench, column: str, uri: str, source: Path, sample: Path, rows: int) -> list:
    """`files` through run_files on a ready plan, and score_batch's whole job with `files` and with `arrow`."""
    print(f"{column}: warming up {FILES}", flush=True)
    paths = []
    try:  # the sample in four slices: every Python worker loads the model before anything is timed
        quarter = -(-list_parquet_input(str(sample)).rows // 4)
        bench.files_seconds(bench.files_plan(uri, sample, slice_rows=quarter))
        planned = bench.files_plan(uri, source)
        print(f"  {FILES}: {len(planned.slices)} slice(s) of {[s.rows for s in planned.slices]} rows", flush=True)
        paths.append((FILES, lambda: bench.files_seconds(planned), rows))
    except Exception as exc:  # noqa: BLE001 - reported, the other paths go on
        print(f"  {FILES} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
    for strategy in JOB_STRATEGIES:
        label = f"score_batch job: {strategy}"
        print(f"{column}: warming up {label}", flush=True)
        try:
            bench.job_seconds(uri, sample, strategy)
        except Exception as exc:  # noqa: BLE001 - measure_rounds reports it
            print(f"  warm-up of {label} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
        paths.append((label, lambda strategy=strategy: bench.job_seconds(uri, source, strategy), rows))
    return paths


SCALES = (1, 5, 10)


def run_scaling(bench: Bench, rows: int, features: int = 20) -> list[list[object]]:
    """`arrow` (the DataFrame default, Spark writing) and `files` (run_files) at 1x, 5x and 10x `rows`: the time
    ratios, and the driver's memory after each run. Each size is warmed up once, then the faster of two runs."""
    spark, table = bench.spark, []
    data = synthetic_classification(rows * SCALES[-1], features, seed=1)
    features_list = [c for c in data.columns if c.startswith("f")]
    model = LogisticRegression(max_iter=1000).fit(data[features_list].head(20_000), data["label"].head(20_000))
    with mlflow.start_run():
        log_sklearn_model(model, data[features_list].head(20_000), registered_model_name="bench_scaling")
    uri = "models:/bench_scaling/1"
    folders = {  # 25k rows per file at every size, as 8 files at 1x
        scale: write_parquet_files(
            data.drop(columns="label").head(rows * scale), bench.folder / f"scale-{scale}", 8 * scale
        )
        for scale in SCALES
    }
    del data
    gc.collect()
    seconds: dict[tuple[str, int], float] = {}
    for scale, path in folders.items():
        n = rows * scale
        scored = score_dataframe(spark, spark.read.parquet(str(path)), uri)
        bench.time_write(scored.frame, n, repeats=1, batch_rows=scored.batch_rows)  # warm-up
        rate = bench.time_write(scored.frame, n, batch_rows=scored.batch_rows)
        seconds["arrow", scale] = n / rate
        table.append([f"arrow {scale}x: {n:,} rows", rate, n / rate, "", _rss_mib("self"), _rss_mib(_jvm_pid(spark))])
        planned = bench.files_plan(uri, path)
        bench.files_seconds(planned)  # warm-up
        seconds["files", scale] = min(bench.files_seconds(planned) for _ in range(2))
        table.append(
            [
                f"files {scale}x: {n:,} rows",
                n / seconds["files", scale],
                seconds["files", scale],
                len(planned.slices),
                _rss_mib("self"),
                _rss_mib(_jvm_pid(spark)),
            ]
        )
    for path, scale, goal in (("arrow", 5, 5.25), ("arrow", 10, None), ("files", 5, None), ("files", 10, 10.5)):
        label = f"time ratio {path} {scale}x / 1x" + (f" (goal <= {goal})" if goal else "")
        table.append([label, float("nan"), seconds[path, scale] / seconds[path, 1], "", "", ""])
    return table


def _jvm_pid(spark) -> int:
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())


def _rss_mib(pid) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return -1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k x 20 and 20k x 300: a few minutes")
    parser.add_argument("--udf-rows", type=int, default=None, help="per-row UDF sample (default 20k, quick 2k)")
    parser.add_argument("--udf-rows-forest", type=int, default=None, help="the forest's sample (default 4k)")
    args = parser.parse_args(argv)
    shapes = [Shape(100_000, 20, 8), Shape(20_000, 300, 8)] if args.quick else [Shape(1_000_000, 20, 16)]
    if not args.quick:
        shapes.append(Shape(200_000, 300, 16))
    udf_rows = args.udf_rows or (2_000 if args.quick else 20_000)
    udf_rows_forest = args.udf_rows_forest or (500 if args.quick else 4_000)

    folder = workdir()
    settings = bench_settings(folder)
    spark = build_spark(settings, app_name="bench-scoring-strategies")
    bench = Bench(spark, settings, folder, udf_rows, udf_rows_forest)
    results: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for shape in shapes:
        run_shape(bench, shape, results)
    # quick: 100k rows at 1x, so that `files` makes two slices (Spark tasks) there too, as at 10x
    scaling = run_scaling(bench, 100_000 if args.quick else 200_000)
    spark.stop()
    shutil.rmtree(folder, ignore_errors=True)
    _print(results, scaling)
    print(f"\nper-row UDF timed on a sample: {udf_rows:,} rows (LR), {udf_rows_forest:,} rows (RF100)")
    print(f"whole benchmark: {time.perf_counter() - started:,.0f} s (data, training and warm-ups included)")


def _print(results: dict[str, dict[str, float]], scaling: list[list[object]]) -> None:
    columns = list(results)
    paths = list(dict.fromkeys(p for figures in results.values() for p in figures))
    paths = [p for p in paths if p != LIMIT] + [LIMIT]
    header = ["path"] + [h for c in columns for h in (f"{c} rows/s", "of limit")]
    rows = []
    for path in paths:
        row = [path]
        for column in columns:
            rate = results[column].get(path, float("nan"))
            row += [rate, rate / results[column].get(LIMIT, float("nan"))]
        rows.append(row)
    for label, numerator, denominator in (
        ("ours (auto) / spark_udf (positional)", ARROW, SPARK_UDF),
        ("files / spark_udf (goal >= 3)", FILES, SPARK_UDF),
        ("files / ours: arrow", FILES, ARROW),
        ("files of limit (goal >= 0.8 LR, 0.9 RF100)", FILES, LIMIT),
    ):
        ratio = [label]
        for column in columns:
            figures = results[column]
            ratio += [figures.get(numerator, float("nan")) / figures.get(denominator, float("nan")), ""]
        rows.append(ratio)
    title = "Scoring on local[2], rows/s and fraction of the in-process limit (Parquet in, Parquet out)"
    print_table(title, header, rows)
    print_table(
        "Scaling (logistic regression, 20 features) and driver memory",
        ["run", "rows/s", "seconds", "slices", "python driver RSS MiB", "JVM RSS MiB"],
        scaling,
    )


if __name__ == "__main__":
    main()
