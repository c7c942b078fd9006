"""Bind input columns to a model's signature by name, and refuse inputs the model cannot score."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.models import ModelSignature
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lifecycle.errors import UserInputError

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC = (*_INTEGRAL, T.FloatType, T.DoubleType, T.DecimalType)
# signature type (MLflow DataType name) -> Spark input types that convert to it without losing information
_ACCEPTED = {
    "double": _NUMERIC,
    "float": _NUMERIC,
    "long": _INTEGRAL,
    "integer": (T.ByteType, T.ShortType, T.IntegerType),
    "boolean": (T.BooleanType,),
    "string": (T.StringType,),
    "binary": (T.BinaryType,),
    "datetime": (T.TimestampType, T.TimestampNTZType, T.DateType),
}


@dataclass(frozen=True)
class FeatureBinding:
    features: list[str]  # the signature's input columns, in the signature's order
    passthrough: list[str]  # every other input column (ids), in input order
    feature_columns: list[Column]  # each input column cast to its signature type, by name

    def select(self, df: DataFrame) -> DataFrame:
        return df.select(*[F.col(c) for c in self.passthrough], *self.feature_columns)


def bind_features(df: DataFrame, signature: ModelSignature | None, model_label: str) -> FeatureBinding:
    """Check every signature column against `df`; report all problems at once, naming column and types."""
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        raise UserInputError(f"model {model_label} has no named input signature; log it with a signature to score it")
    fields = {f.name: f.dataType for f in df.schema.fields}
    problems, casts = [], []
    for spec in signature.inputs.inputs:
        expected = spec.type.name
        found = fields.get(spec.name)
        if found is None:
            if spec.required:
                problems.append(f"column {spec.name!r} is missing (expected {expected})")
            else:  # an optional input the model accepts as null
                casts.append(F.lit(None).cast(spec.type.to_spark()).alias(spec.name))
        elif not isinstance(found, _ACCEPTED.get(expected, ())):
            problems.append(f"column {spec.name!r}: expected {expected}, found {found.simpleString()}")
        else:
            casts.append(F.col(spec.name).cast(spec.type.to_spark()).alias(spec.name))
    if problems:
        raise UserInputError(f"input does not match the signature of model {model_label}: " + "; ".join(problems))
    features = signature.inputs.input_names()
    passthrough = [name for name in df.columns if name not in set(features)]
    return FeatureBinding(features, passthrough, casts)
