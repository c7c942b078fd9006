"""Every body form of MLflow's scoring protocol (and our plain split form) gives the same typed table, bound to the
signature by name; every malformed body gets a status and a message naming what is wrong."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.serving.request_body import (
    CSV,
    JSON,
    PARQUET,
    RequestError,
    content_type_of,
    parse_body,
)
from scoring.serving.signature_columns import InputColumn, bind_columns

SIGNATURE = (
    InputColumn("age", "double"),
    InputColumn("pclass", "long"),
    InputColumn("sex", "string"),
    InputColumn("alone", "boolean"),
    InputColumn("note", "string", required=False),
)
ROWS = [
    {"age": 22.5, "pclass": 3, "sex": "male", "alone": True},
    {"age": None, "pclass": 1, "sex": None, "alone": False},
]
# Columns in another order than the signature, and one the model does not know: binding is by name.
COLUMNS = ["sex", "extra", "alone", "pclass", "age"]
DATA = [[r["sex"], "x", r["alone"], r["pclass"], r["age"]] for r in ROWS]


def _bound(body: bytes, media: str = JSON) -> pd.DataFrame:
    return bind_columns(parse_body(body, media), SIGNATURE).frame


def _json(document) -> bytes:
    return json.dumps(document).encode()


def _expected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [22.5, np.nan],
            "pclass": np.array([3, 1], dtype="int64"),
            "sex": pd.Series(["male", None], dtype=object),
            "alone": [True, False],
            "note": pd.Series([None, None], dtype=object),
        }
    )


def _parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("body", "media"),
    [
        (_json({"dataframe_split": {"columns": COLUMNS, "data": DATA}}), JSON),
        (_json({"dataframe_split": {"columns": COLUMNS, "data": DATA, "index": [7, 8]}}), JSON),
        (_json({"dataframe_records": ROWS}), JSON),
        (_json({"instances": ROWS}), JSON),
        (_json({"inputs": {k: [r[k] for r in ROWS] for k in ROWS[0]}}), JSON),
        (_json({"columns": COLUMNS, "data": DATA}), JSON),  # our extension: the plain split form
        (b"sex,extra,alone,pclass,age\nmale,x,true,3,22.5\n,x,False,1,\n", CSV),
        (_parquet(pd.DataFrame(ROWS)), PARQUET),
    ],
    ids=["split", "split-with-index", "records", "instances", "inputs-columnar", "plain-split", "csv", "parquet"],
)
def test_every_body_form_binds_to_the_same_typed_table(body, media):
    pd.testing.assert_frame_equal(_bound(body, media), _expected())


def test_a_nullable_integer_column_arrives_as_floats_like_sparks_arrow_conversion():
    frame = _bound(_json({"dataframe_records": [{**ROWS[0], "pclass": None}, ROWS[1]]}))
    assert frame["pclass"].dtype == "float64" and np.isnan(frame["pclass"][0]) and frame["pclass"][1] == 1.0


def test_whole_floats_are_taken_for_integer_columns_and_ints_for_double_columns():
    frame = _bound(_json({"dataframe_records": [{**ROWS[0], "pclass": 2.0, "age": 30}]}))
    assert (frame["pclass"].dtype, frame["pclass"][0], frame["age"].dtype, frame["age"][0]) == (
        "int64",
        2,
        "float64",
        30.0,
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"dataframe_records": [{"age": 1.0, "sex": "f", "alone": True}]}, "missing column(s) 'pclass' (long)"),
        ({"dataframe_records": [{**ROWS[0], "age": "old"}]}, "column 'age': expected double, found str 'old'"),
        ({"dataframe_records": [{**ROWS[0], "pclass": 2.5}]}, "column 'pclass': expected long, found float 2.5"),
        ({"dataframe_records": [{**ROWS[0], "sex": 1}]}, "column 'sex': expected string, found int 1"),
        ({"dataframe_records": [{**ROWS[0], "alone": "yes"}]}, "column 'alone': expected boolean, found str 'yes'"),
        ({"dataframe_records": [{**ROWS[0], "age": True}]}, "column 'age': expected double, found bool True"),
        ({"dataframe_records": []}, "no rows"),
        ({"dataframe_split": {"columns": ["age"], "data": [[1.0, 2.0]]}}, "row 0 of \"data\" must be a list of 1"),
        ({"dataframe_split": [1, 2]}, '"dataframe_split" must be an object'),
        ({"instances": ROWS, "inputs": ROWS}, "exactly one of the keys"),
        ({"rows": ROWS}, "found: rows"),
        ({"inputs": {"age": [1.0], "sex": ["a", "b"]}}, "all of one length"),
        ({"dataframe_records": ROWS, "params": [1]}, '"params" must be a JSON object'),
    ],
    ids=[
        "missing", "string-for-double", "fraction-for-long", "number-for-string", "word-for-boolean",
        "bool-for-double", "no-rows", "short-row", "split-not-object", "two-forms", "unknown-form", "ragged-columns",
        "params-not-object",
    ],
)  # fmt: skip
def test_bad_json_is_refused_with_400_naming_what_is_wrong(document, message):
    with pytest.raises(RequestError) as refused:
        _bound(_json(document))
    assert refused.value.status == 400
    assert message in refused.value.message


def test_every_wrong_column_is_named_at_once():
    with pytest.raises(RequestError) as refused:
        _bound(_json({"dataframe_records": [{"age": "x", "pclass": 1.5, "sex": "m"}]}))
    message = refused.value.message
    assert (
        "'alone' (boolean)" in message and "'age': expected double" in message and "'pclass': expected long" in message
    )


@pytest.mark.parametrize(
    ("body", "media", "message"),
    [
        (b'{"dataframe_records": [', JSON, "malformed JSON"),
        (b"[1, 2]", JSON, "must be an object"),
        (b"\xff\xfe", JSON, "malformed JSON"),
        (b'age,pclass\n"unclosed,1\n', CSV, "malformed CSV"),
        (b"sex,alone,pclass,age\nm,true,3,old\n", CSV, "column 'age': expected double, found str 'old'"),
        (b"not parquet", PARQUET, "malformed Parquet"),
    ],
    ids=["truncated-json", "json-array", "not-utf8", "csv-unclosed-quote", "csv-word-for-number", "not-parquet"],
)
def test_malformed_bodies_are_refused_with_400(body, media, message):
    with pytest.raises(RequestError) as refused:
        _bound(body, media)
    assert refused.value.status == 400 and message in refused.value.message


@pytest.mark.parametrize(
    "header",
    [
        "text/plain",
        "application/xml",
        None,
        "application/json; charset=latin-1",
        "application/json; something=something",
        "Application/JSON",
    ],
)
def test_content_types_it_does_not_take_get_415(header):
    with pytest.raises(RequestError) as refused:
        content_type_of(header)
    assert refused.value.status == 415


@pytest.mark.parametrize("header", ["application/json", "application/json; charset=UTF-8", "text/csv; charset=utf-8"])
def test_content_types_are_read_like_mlflows_server(header):
    assert content_type_of(header) in (JSON, CSV)
