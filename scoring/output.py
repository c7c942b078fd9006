"""Write a result so that a failed job never leaves a partial result, nor loses an earlier one, at the target.

Spark writes into a hidden sibling folder; only a complete, checked result is renamed onto the target (through
Hadoop's FileSystem API, so the same code works for local paths, HDFS and object stores that support rename).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession

from lifecycle.errors import UserInputError

_logger = logging.getLogger(__name__)


class StagedOutput:
    def __init__(self, spark: SparkSession, target: str, overwrite: bool):
        jvm = spark._jvm
        self._spark = spark
        self._path_cls = jvm.org.apache.hadoop.fs.Path
        self.target = self._path_cls(target)
        self._fs = self.target.getFileSystem(spark._jsc.hadoopConfiguration())
        self.target = self._fs.makeQualified(self.target)
        if self._fs.exists(self.target) and not overwrite:
            raise UserInputError(f"output {target} already exists; choose another path or pass overwrite=true")
        self.staging = self._sibling("incomplete")

    def _sibling(self, kind: str):
        # Not hidden (no leading '.' or '_'): Spark's readers skip hidden paths, and the staged result is read
        # back to count its rows before it is committed.
        return self._path_cls(self.target.getParent(), f"{self.target.getName()}.{kind}-{uuid.uuid4().hex[:12]}")

    def write(self, df: DataFrame, writer: Callable[[DataFrame, str], None]) -> str:
        try:
            writer(df, self.staging.toString())
        except Exception:
            self.abort()
            raise
        return self.staging.toString()

    def commit(self) -> str:
        """Swap the staged result in; an earlier result is only deleted once the new one is in place."""
        backup = None
        if self._fs.exists(self.target):
            backup = self._sibling("old")
            if not self._fs.rename(self.target, backup):
                self.abort()
                raise OSError(f"could not move the previous output {self.target} aside")
        if not self._fs.rename(self.staging, self.target):
            if backup is not None:
                self._fs.rename(backup, self.target)
            self.abort()
            raise OSError(f"could not move the new output into {self.target}")
        if backup is not None:
            self._fs.delete(backup, True)
        return self.target.toString()

    def abort(self) -> None:
        if self._fs.exists(self.staging):
            self._fs.delete(self.staging, True)
            _logger.info("removed the incomplete output %s", self.staging)
