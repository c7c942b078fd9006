"""Files through Hadoop's FileSystem API, so the same code serves local paths, HDFS and object stores."""

from __future__ import annotations

from pyspark.sql import SparkSession

from common import spark_compat
from common.arrow_fs import ArrowFS


class HadoopFS:
    """The file system of `root`, with the few operations jobs need to commit results atomically."""

    def __init__(self, spark: SparkSession, root: str):
        self._hadoop, configuration = spark_compat.hadoop(spark)  # the JVM's org.apache.hadoop.fs
        path = self._hadoop.Path(root)
        self._fs = path.getFileSystem(configuration)
        self.root = self._fs.makeQualified(path)

    def path(self, *parts: str):
        """`root/part/...` as a Hadoop Path."""
        path = self.root
        for part in parts:
            path = self._hadoop.Path(path, part)
        return path

    def name(self, path) -> str:
        return path.getName()

    def uri(self, path) -> str:
        return path.toString()

    def sibling(self, path, name: str):
        return self._hadoop.Path(path.getParent(), name)

    def exists(self, path) -> bool:
        return bool(self._fs.exists(path))

    def rename(self, source, target) -> bool:
        return bool(self._fs.rename(source, target))

    def delete(self, path) -> None:
        if self._fs.exists(path):
            self._fs.delete(path, True)

    def mkdirs(self, path) -> None:
        self._fs.mkdirs(path)

    def children(self, path) -> list:
        return [status.getPath() for status in self.statuses(path)]

    def statuses(self, path) -> list:
        """Hadoop FileStatus objects (path, length, modification time) of the entries in a folder."""
        if not self._fs.exists(path):
            return []
        return list(self._fs.listStatus(path))

    def listing(self, path) -> list[tuple[str, str, int]]:
        """(name, URI, modification time in ms) of each entry in a folder; none when it does not exist."""
        return [
            (s.getPath().getName(), s.getPath().toString(), int(s.getModificationTime())) for s in self.statuses(path)
        ]

    def read_text(self, path) -> str | None:
        if not self._fs.exists(path):
            return None
        stream = self._fs.open(path)
        try:
            return bytes(stream.readAllBytes()).decode("utf-8")
        finally:
            stream.close()

    def write_text_atomically(self, path, text: str) -> None:
        """Write beside `path`, then rename: a reader sees the old content or the new, never half of it."""
        temporary = self.sibling(path, f".{path.getName()}.tmp")
        stream = self._fs.create(temporary, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        self.delete(path)
        if not self._fs.rename(temporary, path):
            raise OSError(f"could not write {path.toString()}")

    def copy_into(self, source: str, folder) -> None:
        """Copy the file at URI `source` (any file system) into `folder`, keeping its name."""
        hadoop = self._hadoop
        conf = self._fs.getConf()
        source_path = hadoop.Path(source)
        source_fs = source_path.getFileSystem(conf)
        target = hadoop.Path(folder, source_path.getName())
        hadoop.FileUtil.copy(source_fs, source_path, self._fs, target, False, conf)


def files_for(spark: SparkSession | None, root: str) -> HadoopFS | ArrowFS:
    """Hadoop's FileSystem through a classic session's JVM; pyarrow.fs with no session, or through Spark Connect,
    whose client has no JVM (the path must then name storage this process reaches as the server does: a shared
    file system, HDFS, an object store)."""
    if spark is None or spark_compat.is_connect(spark):
        return ArrowFS(root)
    return HadoopFS(spark, root)
