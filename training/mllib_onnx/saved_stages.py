"""Read a saved PipelineModel's stages as plain files, without a JVM: each stage is `stages/<i>_<uid>/` with
`metadata/part-*` (one JSON line: class, uid, paramMap, defaultParamMap, ...) and, for fitted stages, `data/`
(and `treesMetadata/` for ensembles) as Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


class UnsupportedPipeline(Exception):
    """A stage, or a setting of one, the ONNX export cannot reproduce exactly; the message names the stage."""


@dataclass(frozen=True)
class SavedStage:
    class_name: str  # e.g. org.apache.spark.ml.feature.StringIndexerModel
    uid: str
    metadata: dict
    path: Path

    @property
    def short_class(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        """How error messages name the stage."""
        return f"{self.short_class} ({self.uid})"

    def param(self, name: str, default=None):
        """A param as the stage used it: set explicitly, else its default."""
        if name in self.metadata.get("paramMap", {}):
            return self.metadata["paramMap"][name]
        return self.metadata.get("defaultParamMap", {}).get(name, default)

    def is_set(self, name: str) -> bool:
        return name in self.metadata.get("paramMap", {})

    def rows(self, part: str = "data") -> list[dict]:
        return pq.read_table(self.path / part).to_pylist()

    def refuse(self, why: str) -> UnsupportedPipeline:
        return UnsupportedPipeline(f"stage {self.label}: {why}")


def read_metadata(directory: Path) -> dict:
    (part,) = sorted((directory / "metadata").glob("part-*"))
    return json.loads(part.read_text().splitlines()[0])


def read_pipeline(sparkml_dir: str | Path) -> list[SavedStage]:
    """The stages of a saved PipelineModel, in order."""
    root = Path(sparkml_dir)
    if not (root / "metadata").is_dir():
        raise UnsupportedPipeline(f"{root} is not a saved Spark ML model (no metadata/ folder)")
    metadata = read_metadata(root)
    if metadata["class"].rsplit(".", 1)[-1] != "PipelineModel":
        raise UnsupportedPipeline(f"the saved model is a {metadata['class']}, not a PipelineModel")
    folders = {p.name.split("_", 1)[1]: p for p in (root / "stages").iterdir() if p.is_dir()}
    stages = []
    for uid in metadata["paramMap"]["stageUids"]:
        stage_meta = read_metadata(folders[uid])
        stages.append(SavedStage(stage_meta["class"], uid, stage_meta, folders[uid]))
    return stages


def vector_values(vector: dict) -> np.ndarray:
    """An MLlib vector as Spark's VectorUDT writes it (type 0 sparse, 1 dense) -> a dense float64 array."""
    if vector["type"] == 1:
        return np.asarray(vector["values"], dtype=np.float64)
    dense = np.zeros(vector["size"], dtype=np.float64)
    dense[np.asarray(vector["indices"], dtype=np.int64)] = vector["values"]
    return dense


def matrix_values(matrix: dict) -> np.ndarray:
    """An MLlib matrix as MatrixUDT writes it (type 0 sparse CSC/CSR, 1 dense column- or row-major) -> dense 2-D."""
    rows, cols, transposed = matrix["numRows"], matrix["numCols"], matrix["isTransposed"]
    values = np.asarray(matrix["values"], dtype=np.float64)
    if matrix["type"] == 1:
        return values.reshape(rows, cols) if transposed else values.reshape(cols, rows).T
    dense = np.zeros((rows, cols), dtype=np.float64)
    pointers, indices = matrix["colPtrs"], matrix["rowIndices"]
    # Not transposed: compressed sparse columns; transposed: compressed sparse rows.
    for outer in range(len(pointers) - 1):
        for k in range(pointers[outer], pointers[outer + 1]):
            if transposed:
                dense[outer, indices[k]] = values[k]
            else:
                dense[indices[k], outer] = values[k]
    return dense
