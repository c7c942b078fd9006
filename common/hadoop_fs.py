"""Files through Hadoop's FileSystem API, so the same code serves local paths, HDFS and object stores."""

from __future__ import annotations

from pyspark.sql import SparkSession


class HadoopFS:
    """The file system of `root`, with the few operations jobs need to commit results atomically."""

    def __init__(self, spark: SparkSession, root: str):
        self._jvm = spark._jvm
        path = self._jvm.org.apache.hadoop.fs.Path(root)
        self._fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        self.root = self._fs.makeQualified(path)

    def path(self, *parts: str):
        """`root/part/...` as a Hadoop Path."""
        path = self.root
        for part in parts:
            path = self._jvm.org.apache.hadoop.fs.Path(path, part)
        return path

    def name(self, path) -> str:
        return path.getName()

    def uri(self, path) -> str:
        return path.toString()

    def sibling(self, path, name: str):
        return self._jvm.org.apache.hadoop.fs.Path(path.getParent(), name)

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
        hadoop = self._jvm.org.apache.hadoop.fs
        conf = self._fs.getConf()
        source_path = hadoop.Path(source)
        source_fs = source_path.getFileSystem(conf)
        target = hadoop.Path(folder, source_path.getName())
        hadoop.FileUtil.copy(source_fs, source_path, self._fs, target, False, conf)
