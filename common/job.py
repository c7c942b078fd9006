"""The one shape of an entry point: a parameter dataclass in, a result with `.summary()` out, and a runner that does
the rest: parse the command line, refuse what the parameters alone show is wrong, read the settings, start Spark as
the entry point declares (eagerly, lazily or never), call `run`, print the summary, exit with the result's code.

    @dataclass(frozen=True)
    class HelloParams:
        name: str = param("world")

    def run(settings: Settings, params: HelloParams) -> HelloResult: ...   # NO_SPARK: run(settings, params)

    ENTRY_POINT = EntryPoint(HelloParams, run, spark=NO_SPARK)
    main = ENTRY_POINT.main

    if __name__ == "__main__":
        run_cli(main)

`run` takes what the runner starts first: `run(spark, settings, params)` with a SparkSession (EAGER_SPARK) or a
common.spark.SparkStarter (LAZY_SPARK: the job starts the JVM when, and only if, it needs one), and
`run(settings, params)` with NO_SPARK. Tests and other jobs call `run` directly with their own session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from common.params import entry_point_name, parse_params

# How the runner provides Spark. Spark itself is imported only when a job needs it: the scoring server's worker
# processes import their entry module and must answer a health check within seconds.
NO_SPARK = "never"
EAGER_SPARK = "eager"
LAZY_SPARK = "lazy"
SPARK_MODES = (NO_SPARK, EAGER_SPARK, LAZY_SPARK)

P = TypeVar("P")


class Result(Protocol):
    def summary(self) -> str:
        """The lines the command prints when the job ends (empty: nothing more to print)."""


R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class EntryPoint(Generic[P, R]):
    """An MLproject entry point: its parameter dataclass, its `run`, and how the runner gives it Spark.

    `check`: refusals decided from the parameters alone, made before the settings are read or Spark starts.
    `app_name`: the Spark application's name (default: the entry point's), or a function of the parameters."""

    params: type[P]
    run: Callable[..., R]
    spark: str = NO_SPARK
    check: Callable[[P], None] | None = None
    app_name: str | Callable[[P], str] | None = None

    def __post_init__(self):
        if self.spark not in SPARK_MODES:
            raise ValueError(f"spark must be one of {SPARK_MODES}, got {self.spark!r}")

    @property
    def name(self) -> str:
        return entry_point_name(self.params)

    def main(self, argv: Sequence[str] | None = None) -> R:
        """What `python -m <module>` runs (through common.cli.run_cli, which turns user errors into one line)."""
        params = parse_params(self.params, argv)
        if self.check is not None:
            self.check(params)
        result = self.call(params)
        summary = result.summary()
        if summary:
            print(summary, flush=True)
        code = getattr(result, "exit_code", 0)
        if code:
            sys.exit(code)
        return result

    def call(self, params: P) -> R:
        from common.tracking import job_settings

        settings = job_settings()
        if self.spark == NO_SPARK:
            return self.run(settings, params)
        from common.spark import SparkStarter, build_spark

        app_name = self._app_name(params)
        if self.spark == EAGER_SPARK:
            return self.run(build_spark(settings, app_name=app_name), settings, params)
        return self.run(SparkStarter(settings, app_name=app_name), settings, params)

    def _app_name(self, params: P) -> str:
        if callable(self.app_name):
            return self.app_name(params)
        return self.app_name or self.name


def spark_starter(spark):
    """The SparkStarter a LAZY_SPARK `run` works with: the runner's own, or one around the session a test or another
    job passes in."""
    from common.spark import SparkStarter

    return spark if isinstance(spark, SparkStarter) else SparkStarter.of(spark)
