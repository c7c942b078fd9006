"""The driver's side of the `files` strategy's input: list the input's Parquet files through pyarrow.fs, read their
footers (never their rows), and cut the rows into slices Spark schedules one task each.

Paths and URIs are read through pyarrow.fs (common.arrow_fs says how it finds file systems and credentials).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from common.arrow_fs import filesystem_and_path
from common.errors import UserInputError

# A slice is at most this many rows: bounds a task's run time on big inputs (a retried task redoes at most this
# much) while keeping the per-task cost (a Python worker's turn, a part file) small against the work.
MAX_SLICE_ROWS = 2_000_000
# ... and at least this many values (rows x columns; 50,000 rows of 20 columns): below it a Python worker's turn and
# its own copy of the model cost more than the rows take to read and score, so a small input is one slice (scored in
# the driver, see scoring.files.strategy). Counted in values, not rows: wide rows cost in proportion to their width.
MIN_SLICE_VALUES = 1_000_000


@dataclass(frozen=True)
class Piece:
    """Rows of one file: whole row groups, or one row group's rows [offset, offset + rows)."""

    path: str
    row_groups: tuple[int, ...]
    rows: int
    offset: int | None = None  # set when a large row group is split between slices


@dataclass(frozen=True)
class Slice:
    index: int
    pieces: tuple[Piece, ...]

    @property
    def rows(self) -> int:
        return sum(piece.rows for piece in self.pieces)


@dataclass(frozen=True)
class InputFiles:
    filesystem: pafs.FileSystem
    paths: tuple[str, ...]  # file paths in `filesystem`, sorted (as Spark lists them)
    row_groups: tuple[tuple[int, ...], ...]  # rows of each row group, per file
    schema: pa.Schema  # the first file's, as Spark takes one file's schema without mergeSchema
    stamps: tuple[tuple[int, int], ...] = ()  # (size, modification time in ns) per file, for the data's digest

    @property
    def rows(self) -> int:
        return sum(sum(groups) for groups in self.row_groups)

    @property
    def min_slice_rows(self) -> int:
        """The fewest rows worth a Spark task of their own (see MIN_SLICE_VALUES)."""
        return math.ceil(MIN_SLICE_VALUES / max(len(self.schema), 1))


class NotApplicable(Exception):
    """The input is not something the `files` strategy reads the way Spark would; the message says why."""


def list_parquet_input(location: str) -> InputFiles:
    """The input's data files and their row groups. Raises NotApplicable for layouts Spark reads differently
    (partition folders add columns; Spark's own hidden files '_…' and '.…' are skipped as Spark skips them)."""
    filesystem, root = filesystem_and_path(location)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise UserInputError(f"cannot read input {location!r}: it does not exist")
    if info.type == pafs.FileType.File:
        found = [info]
    else:
        entries = filesystem.get_file_info(pafs.FileSelector(root, recursive=False))
        visible = [e for e in entries if not e.base_name.startswith(("_", "."))]
        folders = [e.base_name for e in visible if e.type == pafs.FileType.Directory]
        if folders:
            raise NotApplicable(f"input folder has subfolders ({', '.join(sorted(folders)[:3])}): partitioned data")
        found = sorted((e for e in visible if e.type == pafs.FileType.File), key=lambda e: e.path)
        if not found:
            raise UserInputError(f"input folder {location!r} holds no data files")
    paths = [entry.path for entry in found]
    row_groups, schema = [], None
    for path in paths:
        metadata = read_footer(filesystem, path)
        row_groups.append(tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)))
        if schema is None:
            schema = metadata.schema.to_arrow_schema()
    stamps = tuple((entry.size, entry.mtime_ns or 0) for entry in found)
    return InputFiles(filesystem, tuple(paths), tuple(row_groups), schema, stamps)


def read_footer(filesystem: pafs.FileSystem, path: str) -> pq.FileMetaData:
    """A file's Parquet footer; a file that is not Parquet is named with pyarrow's reason."""
    try:
        with filesystem.open_input_file(path) as handle:
            return pq.ParquetFile(handle).metadata
    except FileNotFoundError as exc:
        raise UserInputError(f"input file {path} vanished while the input was listed") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserInputError(f"input file {path} is not a Parquet file: {exc}") from exc


def cut_slices(files: InputFiles, parallelism: int, slice_rows: int | None = None) -> list[Slice]:
    """`slice_rows` rows per slice when given; else about rows / parallelism (one slice per core at least), within
    [files.min_slice_rows, MAX_SLICE_ROWS]. Small row groups and small files are gathered into one slice (a task per
    tiny file would cost more than it scores); a row group larger than a slice is cut into row ranges."""
    by_cores = min(max(math.ceil(files.rows / max(parallelism, 1)), files.min_slice_rows), MAX_SLICE_ROWS)
    target = slice_rows or by_cores
    pieces: list[Piece] = []
    for path, groups in zip(files.paths, files.row_groups, strict=True):
        for group, rows in enumerate(groups):
            if rows > target:
                parts = math.ceil(rows / target)
                step = math.ceil(rows / parts)
                pieces += [Piece(path, (group,), min(step, rows - start), start) for start in range(0, rows, step)]
            elif rows:
                pieces.append(Piece(path, (group,), rows))
    slices: list[list[Piece]] = []
    filled = target  # start a new slice at the first piece
    for piece in pieces:
        if filled + piece.rows > target:
            slices.append([])
            filled = 0
        slices[-1].append(piece)
        filled += piece.rows
    return [Slice(index, tuple(_merged(group))) for index, group in enumerate(slices)]


def _merged(pieces: list[Piece]) -> list[Piece]:
    """Whole row groups of one file in one piece: the file is opened once per slice."""
    merged: list[Piece] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last and piece.offset is None and last.offset is None and last.path == piece.path:
            merged[-1] = Piece(last.path, last.row_groups + piece.row_groups, last.rows + piece.rows)
        else:
            merged.append(piece)
    return merged
