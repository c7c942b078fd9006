"""What a Spark job's `main` does once its parameters are parsed: settings from the environment, one
SparkSession, the job's `run`, and its summary on standard output."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pyspark.sql import SparkSession

from common.settings import Settings
from common.spark import build_spark
from common.tracking import job_settings

P = TypeVar("P")
R = TypeVar("R")


def run_spark_job(run: Callable[[SparkSession, Settings, P], R], params: P, app_name: str) -> R:
    settings = job_settings()
    result = run(build_spark(settings, app_name=app_name), settings, params)
    print(result.summary())
    return result
