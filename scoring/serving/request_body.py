"""Read a scoring request's body as the wire gives it: its content type checked as MLflow's scoring server checks
it, then the JSON, CSV or Parquet parsed into named values (`ParsedRequest`), or a `RequestError` naming what is
wrong. Binding those values to a model's signature is scoring.serving.signature_columns' part: nothing here knows
a model.

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

import io
import json
from dataclasses import dataclass, field

import pandas as pd

JSON, CSV, PARQUET = "application/json", "text/csv", "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
_JSON_FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_PLAIN_SPLIT = {"columns", "data"}


class RequestError(Exception):
    """A request the server refuses: `status` and a message that says what was wrong, never a stack trace."""

    def __init__(self, status: int, message: str, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


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


def first_line(exc: BaseException) -> str:
    """An exception's first line, bounded: what a client or a log line shows instead of a stack trace."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
