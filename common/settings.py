"""One frozen settings object for what varies between environments, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default store
DEFAULT_SPARK_MASTER = "local[*]"
DEFAULT_EXPERIMENT = "model-lifecycle"


@dataclass(frozen=True)
class Settings:
    """Where runs are tracked and where Spark runs. Job parameters are not here: they belong to the MLproject."""

    tracking_uri: str = DEFAULT_TRACKING_URI
    registry_uri: str | None = None
    spark_master: str = DEFAULT_SPARK_MASTER
    experiment_name: str = DEFAULT_EXPERIMENT
    shuffle_partitions: int = 8
    driver_memory: str = "2g"
    # A Spark Connect server (sc://host:port): the jobs run there through a thin client, and spark_master, driver
    # memory and shuffle partitions are the server's business. None: a classic session on spark_master.
    spark_remote: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI,
            registry_uri=env.get("MLFLOW_REGISTRY_URI") or None,
            spark_master=env.get("SPARK_MASTER") or DEFAULT_SPARK_MASTER,
            experiment_name=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
            shuffle_partitions=int(env.get("SPARK_SHUFFLE_PARTITIONS") or 8),
            driver_memory=env.get("SPARK_DRIVER_MEMORY") or "2g",
            spark_remote=env.get("SPARK_REMOTE") or None,
        )

    @property
    def spark_connection(self) -> str:
        """How jobs reach Spark: "connect" (a Spark Connect server) or "classic" (a SparkContext in the job)."""
        return "connect" if self.spark_remote else "classic"

    @property
    def spark_is_local(self) -> bool:
        return self.spark_remote is None and self.spark_master.startswith("local")
