"""Files through pyarrow.fs, for work that runs without a JVM: the same operations as common.hadoop_fs.HadoopFS,
so a result is committed the same way whichever side wrote it.

pyarrow finds a file system from a path as Spark's readers do from theirs: a plain path is local, `hdfs://` goes
through libhdfs (HADOOP_HOME / CLASSPATH, as Hadoop's own clients), `s3://` and `gs://` through the usual credential
chains (environment variables, the ~/.aws or gcloud files, an instance's role).
"""

from __future__ import annotations

import os
import posixpath

import pyarrow.fs as pafs


def filesystem_and_path(location: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system for a path or URI; a plain path is local and made absolute (pyarrow wants it so).
    Hadoop's way of writing a local URI, `file:/tmp/x`, is understood too."""
    if location.startswith("file:") and not location.startswith("file://"):
        location = location[len("file:") :]
    if "://" not in location:
        return pafs.LocalFileSystem(), os.path.abspath(location)
    return pafs.FileSystem.from_uri(location)


class ArrowFS:
    """The file system of `root`, with the operations a staged result needs (see scoring.batch.output)."""

    def __init__(self, root: str):
        self._fs, path = filesystem_and_path(root)
        self.root = path.rstrip("/") or "/"
        if isinstance(self._fs, pafs.LocalFileSystem):
            self._prefix = "file:"
        else:  # what the URI had before the path: s3:// or hdfs://host:port
            self._prefix = root[: len(root.rstrip("/")) - len(self.root)]

    def path(self, *parts: str) -> str:
        """`root/part/...`."""
        return posixpath.join(self.root, *parts)

    def sibling(self, path: str, name: str) -> str:
        return posixpath.join(posixpath.dirname(path), name)

    def name(self, path: str) -> str:
        return posixpath.basename(path)

    def uri(self, path: str) -> str:
        return f"{self._prefix}{path}"

    def exists(self, path: str) -> bool:
        return self._fs.get_file_info(path).type != pafs.FileType.NotFound

    def rename(self, source: str, target: str) -> bool:
        try:
            self._fs.move(source, target)
        except OSError:
            return False
        return True

    def delete(self, path: str) -> None:
        kind = self._fs.get_file_info(path).type
        if kind == pafs.FileType.Directory:
            self._fs.delete_dir(path)
        elif kind != pafs.FileType.NotFound:
            self._fs.delete_file(path)

    def mkdirs(self, path: str) -> None:
        self._fs.create_dir(path, recursive=True)

    def children(self, path: str) -> list[str]:
        return [info.path for info in self._infos(path)]

    def listing(self, path: str) -> list[tuple[str, str, int]]:
        """(name, URI, modification time in ms) of each entry in a folder; none when it does not exist."""
        return [(info.base_name, self.uri(info.path), int(info.mtime_ns // 1_000_000)) for info in self._infos(path)]

    def _infos(self, path: str) -> list:
        if not self.exists(path):
            return []
        return self._fs.get_file_info(pafs.FileSelector(path))

    def read_text(self, path: str) -> str | None:
        if not self.exists(path):
            return None
        with self._fs.open_input_stream(path) as stream:
            return stream.read().decode("utf-8")

    def write_text_atomically(self, path: str, text: str) -> None:
        """Write beside `path`, then rename: a reader sees the old content or the new, never half of it."""
        temporary = self.sibling(path, f".{self.name(path)}.tmp")
        self.mkdirs(posixpath.dirname(path))
        with self._fs.open_output_stream(temporary) as stream:
            stream.write(text.encode("utf-8"))
        self.delete(path)
        if not self.rename(temporary, path):
            raise OSError(f"could not write {self.uri(path)}")

    def copy_into(self, source: str, folder: str) -> None:
        """Copy the file at URI `source` (any file system pyarrow reaches) into `folder`, keeping its name."""
        source_fs, source_path = filesystem_and_path(source)
        self.mkdirs(folder)
        target = posixpath.join(folder, posixpath.basename(source_path))
        pafs.copy_files(source_path, target, source_filesystem=source_fs, destination_filesystem=self._fs)
