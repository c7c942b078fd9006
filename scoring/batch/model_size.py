"""How much memory a model takes in each Python worker, and whether the executors can afford it (a big forest is
copied into every Python worker).

Every Python worker holds its own copy of the model (one worker per task slot), and Python workers live outside the
JVM heap, in the memory the cluster manager grants on top of it. So the figure that matters is the model's size
times the workers per executor, against the executor's memory.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from common import spark_compat

_logger = logging.getLogger(__name__)

# Warn when the workers' model copies reach this fraction of an executor's memory. Spark's default overhead for
# non-heap memory is 10% of the executor's memory (at least 384 MiB); a quarter is well past that already.
DEFAULT_WARN_FRACTION = 0.25
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class _CountingSink:
    """A file-like object that only counts: the model is measured without a second copy in memory."""

    def __init__(self):
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


def model_size_bytes(model, model_dir: Path) -> int:
    """The model's size as pickled (its arrays dominate, and pickle writes them whole); a model that cannot be
    pickled (some pyfunc models hold handles) counts as its files on disk."""
    sink = _CountingSink()
    try:
        pickle.Pickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(model)
        return sink.size
    except Exception:  # noqa: BLE001 - any pickling failure means: measure the files instead
        return sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())


@dataclass(frozen=True)
class ExecutorMemory:
    python_workers: int  # concurrent tasks per executor, each with its own Python worker and model copy
    memory_bytes: int
    source: str  # which setting the memory came from, for the warning


def executor_memory(spark: SparkSession) -> ExecutorMemory:
    """Local mode: the driver is the executor (spark.driver.memory, one worker per local core). A cluster:
    spark.executor.memory and spark.executor.cores / spark.task.cpus (cores unset: all the application's cores)."""
    parallelism = spark_compat.default_parallelism(spark)
    task_cpus = int(spark_compat.setting(spark, "spark.task.cpus", "1"))
    if (spark_compat.master(spark) or "").startswith("local"):
        memory = spark_compat.setting(spark, "spark.driver.memory", "1g")
        return ExecutorMemory(max(parallelism // task_cpus, 1), parse_bytes(memory), "spark.driver.memory")
    cores = int(spark_compat.setting(spark, "spark.executor.cores", str(parallelism)))
    memory = spark_compat.setting(spark, "spark.executor.memory", "1g")
    return ExecutorMemory(max(cores // task_cpus, 1), parse_bytes(memory), "spark.executor.memory")


def parse_bytes(text: str) -> int:
    """Spark's size strings: '2g', '512m', '1024k', '4096' (bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*", text.lower())
    if not match:
        raise ValueError(f"not a memory size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def warn_if_large(size: int, memory: ExecutorMemory, label: str, fraction: float = DEFAULT_WARN_FRACTION) -> bool:
    """Log a warning (and return True) when the workers' copies of the model crowd the executor's memory."""
    total = size * memory.python_workers
    if total <= fraction * memory.memory_bytes:
        return False
    _logger.warning(
        "model %s takes %s in memory; %d Python workers per executor hold %s against %s of %s (warning above "
        "%.0f%%). Executors may run out of memory: give them more memory or fewer cores, or use a smaller model.",
        label,
        _human(size),
        memory.python_workers,
        _human(total),
        _human(memory.memory_bytes),
        memory.source,
        100 * fraction,
    )
    return True


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
