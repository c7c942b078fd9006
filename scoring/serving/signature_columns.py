"""A parsed request bound to the model's signature: the signature's columns, by name and in its order, each
converted to its type, or a `RequestError` naming every column that is missing or holds values of another type.

Apart from scoring.serving.request_body because the two answer different questions: that module knows the wire
(content types, MLflow's JSON forms, CSV, Parquet) and nothing of models; this one knows the signature and nothing of
the wire, so /invocations, the Open Inference Protocol's tensors and a version's probe on its own input example all
bind through it alike.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.serving.request_body import ParsedRequest, RequestError, first_line

_SHOWN = 8  # missing columns named in an error; a wide model's message names the first ones and counts the rest


@dataclass(frozen=True)
class InputColumn:
    """One column of a model's input signature: its name, MLflow type name (double, long, string, ...) and
    whether a request may leave it out."""

    name: str
    type: str
    required: bool = True


class Rows:
    """A request's rows as typed columns (name -> NumPy array, in the signature's order). A pandas DataFrame is
    built only for a model that needs one: for an ONNX forest, building it would cost more than the prediction."""

    def __init__(self, columns: dict[str, np.ndarray], n_rows: int):
        self.columns, self.n_rows = columns, n_rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        """Several requests' rows as one table (NumPy widens a column's type where parts differ, e.g. int -> float)."""
        names = parts[0].columns
        return cls({n: np.concatenate([p.columns[n] for p in parts]) for n in names}, sum(p.n_rows for p in parts))


def bind_columns(parsed: ParsedRequest, signature: tuple[InputColumn, ...]) -> Rows:
    """The signature's columns, in its order, each converted to its type. Extra columns are ignored; every problem
    (missing column, wrong type) is reported at once, by column."""
    if parsed.frame is not None:
        given, n_rows = {name: parsed.frame[name].tolist() for name in parsed.frame.columns}, len(parsed.frame)
    elif parsed.columns is not None:
        given = parsed.columns
        n_rows = len(next(iter(given.values()))) if given else 0
    else:
        rows = parsed.rows or []
        given = {spec.name: [row.get(spec.name) for row in rows] for spec in signature if _in_any(rows, spec.name)}
        n_rows = len(rows)
    if n_rows == 0:
        raise RequestError(400, "the request holds no rows to score")
    problems, converted, missing = [], {}, []
    for spec in signature:
        values = given.get(spec.name)
        if values is None:
            if spec.required:
                missing.append(f"{spec.name!r} ({spec.type})")
                continue
            values = [None] * n_rows
        try:
            converted[spec.name] = _convert(values, spec.type, parsed.text)
        except _WrongValue as wrong:
            problems.append(f"column {spec.name!r}: expected {spec.type}, found {wrong.found}")
    if missing:
        more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        problems.insert(0, f"missing column(s) {', '.join(missing[:_SHOWN])}{more}")
    if problems:
        raise RequestError(400, "input does not match the model's signature: " + "; ".join(problems))
    return Rows(converted, n_rows)


def _in_any(rows: list[dict], name: str) -> bool:
    return any(name in row for row in rows)


class _WrongValue(Exception):
    def __init__(self, found: str):
        self.found = found


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}"


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _convert(values: list, type_name: str, text: bool) -> np.ndarray:
    """JSON values (or CSV text) -> one column of the signature's type. Missing values stay missing: NaN for
    numbers, None otherwise, as Spark's Arrow conversion hands them to a model in batch scoring."""
    if text:
        values = [None if v == "" else v for v in values]
    if type_name in ("double", "float"):
        return np.array([_number(v, text) for v in values], dtype="float64" if type_name == "double" else "float32")
    if type_name in ("long", "integer"):
        numbers = [_integer(v, text) for v in values]
        if any(v is None for v in numbers):  # Arrow hands a nullable integer column to pandas as floats
            return np.array([np.nan if v is None else v for v in numbers], dtype="float64")
        return np.array(numbers, dtype="int64" if type_name == "long" else "int32")
    if type_name == "boolean":
        flags = [_boolean(v, text) for v in values]
        return np.array(flags, dtype=bool if None not in flags else object)
    if type_name == "string":
        bad = next((v for v in values if not (v is None or isinstance(v, str))), None)
        if bad is not None:
            raise _WrongValue(_describe(bad))
        return _objects(values)
    if type_name == "datetime":
        try:
            return pd.to_datetime(pd.Series(values), errors="raise").to_numpy()
        except (ValueError, TypeError) as exc:
            raise _WrongValue(first_line(exc)) from None
    raise _WrongValue(f"a type the server does not convert ({type_name})")


def _objects(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)  # np.array(values) would read equal-length lists as 2-D
    column[:] = values
    return column


def _number(value, text: bool) -> float:
    if _is_missing(value):
        return math.nan
    if text:
        try:
            return float(value)
        except ValueError:
            raise _WrongValue(_describe(value)) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _WrongValue(_describe(value))
    return float(value)


def _integer(value, text: bool) -> int | None:
    if _is_missing(value):
        return None
    number = _number(value, text)
    if not float(number).is_integer():
        raise _WrongValue(_describe(value))
    return int(number)


_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _boolean(value, text: bool) -> bool | None:
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if text and str(value).strip().lower() in _TRUE + _FALSE:
        return str(value).strip().lower() in _TRUE
    raise _WrongValue(_describe(value))
