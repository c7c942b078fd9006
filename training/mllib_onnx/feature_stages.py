"""Feature stages as graph nodes, each reproducing the Spark stage as this project's pipelines configure it.
Any other configuration is refused by name (`SavedStage.refuse`), never approximated."""

from __future__ import annotations

import json
import re

import numpy as np
from onnx import TensorProto

from common.onnx_model import NULL_STRING
from training.mllib_onnx.graph import Column, GraphBuilder
from training.mllib_onnx.saved_stages import SavedStage

TITLE_STAGE = "TitleAgeImputerModel"
_INTEGRAL = {"long", "integer", "short", "byte"}


def _in_out(stage: SavedStage) -> list[tuple[str, str]]:
    """(input column, output column) pairs of a stage with inputCol(s)/outputCol(s)."""
    if stage.is_set("inputCols"):
        return list(zip(stage.param("inputCols"), stage.param("outputCols"), strict=True))
    return [(stage.param("inputCol"), stage.param("outputCol"))]


def _column(stage: SavedStage, columns: dict[str, Column], name: str, kind: str) -> Column:
    column = columns.get(name)
    if column is None:
        raise stage.refuse(f"reads column {name!r}, which no input or earlier stage provides")
    if column.kind != kind or column.width != 1:
        raise stage.refuse(f"column {name!r} is not a single {kind} column")
    return column


def title_pre_step(stage: SavedStage, columns: dict[str, Column], graph: GraphBuilder, first: bool) -> dict:
    """The title stage (training.mllib.features) runs in Python before the graph (regular expressions have no
    exact ONNX equivalent); the graph gets the title as one more string input and the age already filled."""
    if not first:
        raise stage.refuse("the title stage is supported only as the pipeline's first stage")
    from training.mllib.features import _TITLE_PATTERN, UNKNOWN_TITLE  # the stage's own definitions

    name_col, age_col, title_col = (stage.param(p) for p in ("nameCol", "ageCol", "titleCol"))
    _column(stage, columns, name_col, "string")
    if title_col in columns:
        raise stage.refuse(f"its title column {title_col!r} is also an input column")
    age = _column(stage, columns, age_col, "number")
    columns[title_col] = Column(graph.add_input(title_col, "string"), "string")
    # The stage casts the age to double; the pre-step feeds the filled age in place of the raw one.
    columns[age_col] = Column(age.tensor, "number", spark_type="double", raw_source=age.raw_source)
    return {
        "kind": "title_age",
        "doc": "title = regexp group 1 of `pattern` on the name ('' -> unknown_title, null name -> null title); "
        "a missing age = title_means[title], else overall_mean. `pattern` is Spark's (Java) regex: \\s is ASCII "
        "whitespace only",
        "name_column": name_col,
        "age_column": age_col,
        "title_column": title_col,
        "pattern": _TITLE_PATTERN,
        "unknown_title": UNKNOWN_TITLE,
        "title_means": json.loads(stage.param("titleMeans")),
        "overall_mean": float(stage.param("overallMean")),
    }


def string_indexer(stage: SavedStage, columns: dict[str, Column], graph: GraphBuilder) -> None:
    """Label -> its position in the saved labels (Spark's index); unseen and null -> len(labels) ("keep")."""
    if stage.param("handleInvalid") != "keep":
        raise stage.refuse(f"handleInvalid={stage.param('handleInvalid')!r}; only 'keep' scores every row")
    (row,) = stage.rows()
    labels_array = row.get("labelsArray") or [row["labels"]]
    for (source, target), labels in zip(_in_out(stage), labels_array, strict=True):
        column = _column(stage, columns, source, "string")
        if NULL_STRING in labels:
            raise stage.refuse(f"column {source!r} has a label equal to the null marker")
        indexed = graph.op(
            "LabelEncoder",
            [column.tensor],
            f"{target}_int",
            domain="ai.onnx.ml",
            keys_strings=list(labels),
            values_int64s=list(range(len(labels))),
            default_int64=len(labels),
        )
        columns[target] = Column(graph.op("Cast", [indexed], target, to=TensorProto.DOUBLE), "number")


def one_hot_encoder(stage: SavedStage, columns: dict[str, Column], graph: GraphBuilder) -> None:
    """Index -> one-hot row. Spark: with "keep" an extra last category for invalid indices, dropped again by
    dropLast; an index past the vector (invalid, dropped) is all zeros. Indices here come from an indexer with
    "keep", so they are always below the category size."""
    handle_invalid = stage.param("handleInvalid")
    if handle_invalid not in ("keep", "error"):
        raise stage.refuse(f"handleInvalid={handle_invalid!r} is not supported")
    (row,) = stage.rows()
    drop_last = bool(stage.param("dropLast", True))
    for (source, target), size in zip(_in_out(stage), row["categorySizes"], strict=True):
        column = _column(stage, columns, source, "number")
        width = size + (handle_invalid == "keep") - drop_last
        positions = graph.const(f"{target}_positions", np.arange(width, dtype=np.float64).reshape(1, -1))
        hot = graph.op("Equal", [column.tensor, positions], f"{target}_hot")
        columns[target] = Column(graph.op("Cast", [hot], target, to=TensorProto.DOUBLE), "number", width=width)


# Exactly what training.mllib.pipeline writes for boolean columns: SELECT *, CAST(`b` AS DOUBLE) AS `b_number`, ...
_QUOTED = r"`((?:[^`]|``)+)`"
_CAST = rf"CAST\({_QUOTED} AS DOUBLE\) AS {_QUOTED}"
_STATEMENT = re.compile(rf"SELECT \*, ({_CAST}(?:, {_CAST})*) FROM __THIS__")


def sql_casts(stage: SavedStage, columns: dict[str, Column], graph: GraphBuilder) -> None:
    """Only the boolean-to-double casts this project writes; booleans are fed as 1.0 / 0.0 / NaN already, so a
    cast is the same tensor under the new name. Any other statement is refused."""
    statement = stage.param("statement") or ""
    match = _STATEMENT.fullmatch(statement.strip())
    if not match:
        raise stage.refuse(f"SQL statement {statement!r} is not a list of CAST(... AS DOUBLE) columns")
    for source, target in re.findall(_CAST, match.group(1)):
        source, target = source.replace("``", "`"), target.replace("``", "`")
        column = _column(stage, columns, source, "number")
        if target in columns:
            raise stage.refuse(f"its output {target!r} replaces an existing column")
        columns[target] = Column(column.tensor, "number", spark_type="double")


def imputer(stage: SavedStage, columns: dict[str, Column], graph: GraphBuilder) -> None:
    """Null and NaN -> the surrogate learned in training (its data Parquet). Spark casts the result back to the
    input column's type, so an integral column gets the surrogate truncated."""
    missing = stage.param("missingValue", "NaN")
    if not (isinstance(missing, str) and missing == "NaN") and not (isinstance(missing, float) and np.isnan(missing)):
        raise stage.refuse(f"missingValue={missing!r}; only NaN (with null) is supported")
    (surrogates,) = stage.rows()
    for source, target in _in_out(stage):
        column = _column(stage, columns, source, "number")
        surrogate = float(surrogates[source])
        if column.spark_type in _INTEGRAL:
            surrogate = float(np.trunc(surrogate))
        elif column.spark_type == "float":
            surrogate = float(np.float32(surrogate))
        is_missing = graph.op("IsNaN", [column.tensor], f"{target}_missing")
        filled = graph.op("Where", [is_missing, graph.const(f"{target}_surrogate", surrogate), column.tensor], target)
        columns[target] = Column(filled, "number", spark_type=column.spark_type, raw_source=column.raw_source)


def vector_assembler(stage: SavedStage, columns: dict[str, Column], graph: GraphBuilder) -> list[str | None]:
    """Columns side by side (NaN kept, as handleInvalid="keep" does). Returns, per feature, the raw numeric
    column it equals when it is one (to build edge rows at the trees' thresholds)."""
    if stage.param("handleInvalid") != "keep":
        raise stage.refuse(f"handleInvalid={stage.param('handleInvalid')!r}; only 'keep' is supported")
    parts, sources = [], []
    for name in stage.param("inputCols"):
        column = columns.get(name)
        if column is None or column.kind != "number":
            raise stage.refuse(f"input {name!r} is not a number or vector column of the pipeline")
        parts.append(column.tensor)
        sources += [column.raw_source] if column.width == 1 else [None] * column.width
    output = stage.param("outputCol")
    tensor = graph.op("Concat", parts, output, axis=1) if len(parts) > 1 else parts[0]
    columns[output] = Column(tensor, "number", width=len(sources))
    return sources
