"""Write a result so that a failed job never leaves a partial result, nor loses an earlier one, at the target.

Spark writes into a staging folder beside the target; only a complete result is renamed onto the target (through
Hadoop's FileSystem API, so the same code works for local paths, HDFS and object stores that support rename). A job
that runs without Spark (a small `files` job) stages and renames the same way through pyarrow.fs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession

from common.errors import UserInputError
from common.hadoop_fs import files_for

_logger = logging.getLogger(__name__)


class StagedOutput:
    def __init__(self, spark: SparkSession | None, target: str, overwrite: bool, hidden: bool = False):
        """`hidden`: stage under a name Spark's readers skip ('_…'), for targets inside a folder others read
        while the job runs (a stream's output). Not hidden, the staged result can be read back before commit.
        `spark` None or a Connect session: no JVM here; the files go through pyarrow.fs."""
        self._files = files_for(spark, target)
        self.target = self._files.root
        if self._files.exists(self.target) and not overwrite:
            raise UserInputError(f"output {target} already exists; choose another path or pass overwrite=true")
        self._hidden = hidden
        self.staging = self._sibling("incomplete")

    def _sibling(self, kind: str):
        name = f"{self._files.name(self.target)}.{kind}-{uuid.uuid4().hex[:12]}"
        return self._files.sibling(self.target, f"_{name}" if self._hidden else name)

    @property
    def staging_uri(self) -> str:
        return self._files.uri(self.staging)

    def write(self, df: DataFrame, writer: Callable[[DataFrame, str], None]) -> str:
        try:
            writer(df, self.staging_uri)
        except Exception:
            self.abort()
            raise
        return self.staging_uri

    def commit(self) -> str:
        """Swap the staged result in; an earlier result is only deleted once the new one is in place."""
        backup = None
        if self._files.exists(self.target):
            backup = self._sibling("old")
            if not self._files.rename(self.target, backup):
                self.abort()
                raise OSError(f"could not move the previous output {self.target} aside")
        if not self._files.rename(self.staging, self.target):
            if backup is not None:
                self._files.rename(backup, self.target)
            self.abort()
            raise OSError(f"could not move the new output into {self.target}")
        if backup is not None:
            self._files.delete(backup)
        return self._files.uri(self.target)

    def abort(self) -> None:
        if self._files.exists(self.staging):
            self._files.delete(self.staging)
            _logger.info("removed the incomplete output %s", self.staging_uri)
