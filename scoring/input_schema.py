"""Bind input columns to a model's signature by name, and refuse inputs the model cannot score."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.models import ModelSignature
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.errors import UserInputError

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC = (*_INTEGRAL, T.FloatType, T.DoubleType, T.DecimalType)
# target Spark type -> input Spark types that convert to it without losing information
_CONVERTS_TO = {
    T.DoubleType: _NUMERIC,
    T.FloatType: _NUMERIC,
    T.LongType: _INTEGRAL,
    T.IntegerType: (T.ByteType, T.ShortType, T.IntegerType),
    T.BooleanType: (T.BooleanType,),
    T.StringType: (T.StringType,),
    T.BinaryType: (T.BinaryType,),
    T.TimestampType: (T.TimestampType, T.TimestampNTZType, T.DateType),
}


def converts(found: T.DataType, target: T.DataType) -> bool:
    """Whether a column of type `found` converts to `target` without losing information."""
    allowed = _CONVERTS_TO.get(type(target))
    return isinstance(found, allowed) if allowed else found == target


def require_named_signature(signature: ModelSignature | None, model_label: str) -> ModelSignature:
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        raise UserInputError(f"model {model_label} has no named input signature; log it with a signature to score it")
    return signature


@dataclass(frozen=True)
class FeatureBinding:
    features: list[str]  # the signature's input columns, in the signature's order
    passthrough: list[str]  # every other input column (ids), in input order, plus features kept in the output
    present: frozenset[str]  # features the input has (the others are optional inputs, given as null)
    types: tuple[T.DataType, ...]  # the signature's Spark type of each feature

    @property
    def feature_columns(self) -> list[Column]:
        """Each input column cast to its signature type, by name (an absent optional input as a typed null). Built
        when asked for: a Column needs a running Spark, and binding alone (the `files` strategy) does not."""
        return [
            (col(name) if name in self.present else F.lit(None)).cast(spark_type).alias(name)
            for name, spark_type in zip(self.features, self.types, strict=True)
        ]

    def select(self, df: DataFrame) -> DataFrame:
        """Pass-through columns, then the features; a feature kept in the output is selected once (cast)."""
        kept = set(self.features)
        return df.select(*[col(c) for c in self.passthrough if c not in kept], *self.feature_columns)


def bind_features(df, signature: ModelSignature | None, model_label: str, keep: tuple[str, ...] = ()) -> FeatureBinding:
    """Check every signature column against `df` (a DataFrame, or anything with its `schema` and `columns`);
    report all problems at once, naming column and types.
    `keep`: features that also go to the output (a per-group model's group column identifies its rows)."""
    require_named_signature(signature, model_label)
    fields = {f.name: f.dataType for f in df.schema.fields}
    problems, present = [], set()
    for spec in signature.inputs.inputs:
        expected = spec.type.name
        found = fields.get(spec.name)
        if found is None:
            if spec.required:
                problems.append(f"column {spec.name!r} is missing (expected {expected})")
        elif not converts(found, spec.type.to_spark()):
            problems.append(f"column {spec.name!r}: expected {expected}, found {found.simpleString()}")
        else:
            present.add(spec.name)
    if problems:
        raise UserInputError(f"input does not match the signature of model {model_label}: " + "; ".join(problems))
    features = signature.inputs.input_names()
    passthrough = [name for name in df.columns if name not in set(features) or name in keep]
    types = tuple(spec.type.to_spark() for spec in signature.inputs.inputs)
    return FeatureBinding(features, passthrough, frozenset(present), types)


def expand_features_column(df: DataFrame, column: str, names: list[str]) -> DataFrame:
    """One array<number> or MLlib vector column holding the features in the signature's order -> one named column
    per feature, so wide models (300+ features) need no 300 columns in the input and bind like any other."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT

    if column not in df.columns:
        raise UserInputError(f"features column {column!r} is not in the input; columns: {', '.join(df.columns)}")
    found = df.schema[column].dataType
    if isinstance(found, VectorUDT):
        values = vector_to_array(col(column), "float64")
    elif isinstance(found, T.ArrayType) and isinstance(found.elementType, _NUMERIC):
        values = col(column)
    else:
        raise UserInputError(
            f"features column {column!r}: expected an array of numbers or an MLlib vector, found {found.simpleString()}"
        )
    clash = [name for name in names if name in df.columns]
    if clash:
        raise UserInputError(f"input has features column {column!r} and also named feature column(s) {clash[:5]}")
    n = len(names)
    # A row of the wrong length fails the job naming the column; only the first feature checks (Spark evaluates a
    # projection's columns in order), the others read with `get`, which returns null past the end.
    size = F.coalesce(F.size(values).cast("string"), F.lit("no"))  # a null array holds no values
    message = F.concat(F.lit(f"features column {column!r} holds "), size, F.lit(f" values; {n} expected"))
    wrong_length = F.raise_error(message)
    first = F.when(F.size(values) == n, F.get(values, 0)).otherwise(wrong_length).alias(names[0])
    rest = [F.get(values, i).alias(name) for i, name in enumerate(names) if i]
    return df.select(*[col(c) for c in df.columns if c != column], first, *rest)
