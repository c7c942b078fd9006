"""Turn a scoring request's body into a table of the model's input columns, bound by name and typed as its
signature says, or a `RequestError` naming what is wrong.

Bodies are those of MLflow's scoring protocol (`mlflow models serve`), so existing clients work unchanged:

    application/json   {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
                       {"dataframe_records": [{"col": value, ...}, ...]}
                       {"instances": [...]} / {"inputs": [...]}: a list of records, or {"col": [values, ...]}
                       each with an optional "params": {"probability": true}
    text/csv           a header line, then rows
    application/vnd.apache.parquet

Our extension: the plain split form `{"columns": [...], "data": [[...], ...]}` that Spark and Titanic tutorials
post (MLflow's own server answers it with 400).
"""

from __future__ import annotations

import functools
import io
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

JSON, CSV, PARQUET = "application/json", "text/csv", "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
_JSON_FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_PLAIN_SPLIT = {"columns", "data"}
_SHOWN = 8  # missing columns named in an error; a wide model's message names the first ones and counts the rest


class RequestError(Exception):
    """A request the server refuses: `status` and a message that says what was wrong, never a stack trace."""

    def __init__(self, status: int, message: str, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


@dataclass(frozen=True)
class InputColumn:
    """One column of a model's input signature: its name, MLflow type name (double, long, string, ...) and
    whether a request may leave it out."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class ParsedRequest:
    rows: list[dict] | None = None  # dataframe_records / instances as records
    columns: dict[str, list] | None = None  # column name -> values
    frame: pd.DataFrame | None = None  # CSV and Parquet: already a table
    params: dict = field(default_factory=dict)
    text: bool = False  # CSV: every value is text, converted to the signature's type by column


def content_type_of(header: str | None) -> str:
    """The media type of a Content-Type header, refused (415) exactly where MLflow's scoring server refuses it
    (`invocations` in mlflow/pyfunc/scoring_server/__init__.py): a parameter other than `charset` (even an empty
    one, as in `application/json;`), a charset other than `utf-8`, a media type not written as listed."""
    parts = [part.strip() for part in (header or "").split(";")]
    media, parameters = parts[0], dict(part.partition("=")[::2] for part in parts[1:])
    charset = parameters.get("charset", "utf-8").lower()
    if charset != "utf-8":
        raise RequestError(415, f"charset {charset!r} is not taken; send utf-8", "UNSUPPORTED_MEDIA_TYPE")
    unknown = sorted(set(parameters) - {"charset"})
    if unknown:
        raise RequestError(
            415,
            f"content type parameter(s) {', '.join(map(repr, unknown))} not recognized; only charset=utf-8 is taken",
            "UNSUPPORTED_MEDIA_TYPE",
        )
    if media not in CONTENT_TYPES:
        raise RequestError(
            415,
            f"content type {media or '(none)'!r} is not taken; use one of: {', '.join(CONTENT_TYPES)}",
            "UNSUPPORTED_MEDIA_TYPE",
        )
    return media


def parse_body(body: bytes, media: str) -> ParsedRequest:
    if media == CSV:
        return ParsedRequest(frame=_read_csv(body), text=True)
    if media == PARQUET:
        return ParsedRequest(frame=_read_parquet(body))
    return _parse_json(body)


def _read_csv(body: bytes) -> pd.DataFrame:
    try:
        # Everything as text: each column is converted to its signature type below, naming the column on failure.
        return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed CSV: {first_line(exc)}") from None


def _read_parquet(body: bytes) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(body)).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise RequestError(400, f"malformed Parquet: {first_line(exc)}") from None


def _parse_json(body: bytes) -> ParsedRequest:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError(400, f"the JSON body must be an object with one of the keys {', '.join(_JSON_FORMS)}")
    params = document.get("params") or {}
    if not isinstance(params, dict):
        raise RequestError(400, '"params" must be a JSON object')
    forms = [key for key in _JSON_FORMS if key in document]
    if not forms and document.keys() >= _PLAIN_SPLIT:
        return ParsedRequest(columns=_split_columns(document, "the body"), params=params)
    if len(forms) != 1:
        found = ", ".join(sorted(document)) or "none"
        raise RequestError(400, f"the JSON body needs exactly one of the keys {', '.join(_JSON_FORMS)}; found: {found}")
    form = forms[0]
    value = document[form]
    if form == "dataframe_split":
        if not isinstance(value, dict):
            raise RequestError(400, '"dataframe_split" must be an object with "columns" and "data"')
        return ParsedRequest(columns=_split_columns(value, '"dataframe_split"'), params=params)
    if isinstance(value, dict) and form != "dataframe_records":  # columnar: {"col": [values, ...]}
        return ParsedRequest(columns=_columnar(value, form), params=params)
    if isinstance(value, list) and all(isinstance(row, dict) for row in value):
        return ParsedRequest(rows=value, params=params)
    raise RequestError(400, f'"{form}" must be a list of records ({{"column": value}})' + _columnar_hint(form))


def _columnar_hint(form: str) -> str:
    return "" if form == "dataframe_records" else ' or an object of columns ({"column": [values]})'


def _split_columns(split: dict, where: str) -> dict[str, list]:
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(400, f'{where}: "columns" must be a list of column names')
    if not isinstance(data, list):
        raise RequestError(400, f'{where}: "data" must be a list of rows')
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise RequestError(400, f'{where}: row {number} of "data" must be a list of {len(columns)} values')
    return {name: [row[i] for row in data] for i, name in enumerate(columns)}


def _columnar(value: dict, form: str) -> dict[str, list]:
    lengths = {len(v) if isinstance(v, list) else None for v in value.values()}
    if None in lengths or len(lengths) > 1:
        raise RequestError(400, f'"{form}" as columns must map each column to a list of values, all of one length')
    return {str(name): values for name, values in value.items()}


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


def first_line(exc: BaseException) -> str:
    """An exception's first line, bounded: what a client or a log line shows instead of a stack trace."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
