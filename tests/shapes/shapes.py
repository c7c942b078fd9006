"""The data shapes of the matrix: real data shipped in installed packages (scikit-learn's bundled sets, the Palmer
penguins, bokeh's Titanic passengers), reshaped along one or two axes each. Nothing is downloaded.

Every shape is one table: id column(s), features, the label. Training reads it from a file (Parquet, or CSV for the
CSV shape) with the ids excluded; scoring reads the same rows, label included, so ids and the label are the
pass-through columns a scorer must keep.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa

from common.datasets import load_table

CLASSIFICATION, REGRESSION = "classification", "regression"
SITE = "site"  # the group column added for train_per_group
SITES = ("north", "south", "east")


@dataclass(frozen=True)
class Shape:
    id: str
    build: Callable[[], pd.DataFrame]  # ids + features + label, rows in a fixed order
    label: str
    ids: tuple[str, ...]  # not features: excluded from training, kept through scoring
    task: str  # what the jobs must resolve the label to
    fmt: str = "parquet"  # the file format of the training data and the scoring input
    # trainer -> the UserInputError it must raise before any run (the shape cannot work with that trainer).
    must_refuse: dict[str, str] = field(default_factory=dict)
    mllib_kwargs: dict = field(default_factory=dict)
    model_of: str | None = None  # scored with the models trained on that shape (same features), not trained again
    # Columns every trainer leaves out of the features with a warning (one value for every row, id-like strings): not
    # in the signature, carried through scoring like the ids.
    left_out: tuple[str, ...] = ()
    left_out_by: dict[str, tuple[str, ...]] = field(default_factory=dict)  # trainer -> columns only it leaves out

    @property
    def key(self) -> str:
        """The column that identifies a row (the first id)."""
        return self.ids[0]

    def frame(self) -> pd.DataFrame:
        return _cached(self.id).copy()

    def features(self, frame: pd.DataFrame | None = None) -> list[str]:
        frame = self.frame() if frame is None else frame
        return [c for c in frame.columns if c != self.label and c not in (*self.ids, *self.left_out) and c != SITE]

    def per_group_frame(self) -> pd.DataFrame:
        """The table with a string group column (three sites, round robin) after the ids."""
        frame = self.frame()
        frame.insert(len(self.ids), SITE, [SITES[i % 3] for i in range(len(frame))])
        return frame

    def refusal_for(self, trainer: str) -> tuple[str | None, bool]:
        """(pattern, required): the refusal `trainer` must give for this shape, if any."""
        pattern = self.must_refuse.get(trainer)
        return pattern, pattern is not None


def _with_row_id(frame: pd.DataFrame, name: str = "row_id") -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.insert(0, name, np.arange(len(frame), dtype="int64"))
    return frame


def _cancer(n_features: int = 8) -> pd.DataFrame:
    frame = load_table("breast_cancer").frame
    return frame[[*frame.columns[:n_features], "target"]]


# --- string / categorical columns -----------------------------------------------------------------------------


def no_strings_binary01() -> pd.DataFrame:
    """Numbers only; label 0/1."""
    return _with_row_id(_cancer(10))


def one_string_regression() -> pd.DataFrame:
    """Known defect 1's shape: x1, x2 (numbers), color (three values), label y. The penguins' bill and flipper
    lengths, their island as the colour, and a regression label with a long tail: exp(body mass / 700) spans
    47 .. 8103 with skew 2.6 (two penguins were never weighed: no label)."""
    p = load_table("penguins").frame
    frame = pd.DataFrame(
        {
            "x1": p["bill_length_mm"],
            "x2": p["flipper_length_mm"],
            "color": p["island"].map({"Biscoe": "blue", "Dream": "green", "Torgersen": "red"}),
            "y": np.exp(p["body_mass_g"] / 700.0),
        }
    )
    return _with_row_id(frame)


def several_strings_multiclass() -> pd.DataFrame:
    """Penguins as shipped: island and sex (strings, sex with gaps), measurements (two rows all missing), year
    (an integer with three values); label species, three classes as strings."""
    return _with_row_id(load_table("penguins").frame)


def bool_int_constant_string_label() -> pd.DataFrame:
    """A boolean column, an integer column with four values, a constant column; label 'malignant' / 'benign'."""
    frame = _cancer(8)
    frame = frame.assign(
        large=frame["mean_area"] > frame["mean_area"].median(),
        texture_grade=pd.qcut(frame["mean_texture"], 4, labels=False).astype("int64"),
        constant=1.0,
        diagnosis=frame["target"].map({0: "malignant", 1: "benign"}),
    ).drop(columns="target")
    return _with_row_id(frame)


# --- labels ---------------------------------------------------------------------------------------------------


def boolean_label() -> pd.DataFrame:
    frame = _cancer(8)
    frame = frame.assign(benign=frame["target"].astype(bool)).drop(columns="target")
    return _with_row_id(frame)


def multiclass_int_missing_values() -> pd.DataFrame:
    """Wine (three classes 0, 1, 2) with gaps: alcohol missing in every 5th row, magnesium in every 6th, and a
    string column (the colour intensity's band) missing in every 7th."""
    frame = load_table("wine").frame
    rows = np.arange(len(frame))
    frame.loc[rows % 5 == 1, "alcohol"] = np.nan
    frame.loc[rows % 6 == 2, "magnesium"] = np.nan
    band = pd.qcut(frame["color_intensity"], 3, labels=["pale", "medium", "deep"]).astype(object)
    band[rows % 7 == 3] = None
    frame.insert(3, "color_band", band)
    return _with_row_id(frame)


# --- column names ---------------------------------------------------------------------------------------------

ODD_NAMES = {
    "mean_radius": "mean radius",  # space
    "mean_texture": "mean-texture",  # hyphen
    "mean_perimeter": "mean.perimeter",  # dot
    "mean_area": "area/size",  # slash
    "mean_smoothness": "1st_smoothness",  # leading digit
    "mean_compactness": "kompaktheit_größe",  # non-ASCII
    "mean_concavity": "凹度",  # non-ASCII, not Latin
}


def odd_names() -> pd.DataFrame:
    frame = _cancer(7).rename(columns=ODD_NAMES)
    frame["size class"] = pd.qcut(frame["area/size"], 3, labels=["small", "medium", "large"]).astype(str)
    frame = frame.rename(columns={"target": "diagnóstico"})
    return _with_row_id(frame, "patient id")


def output_named_features() -> pd.DataFrame:
    """Features named like the columns scoring adds."""
    frame = _cancer(6).rename(
        columns={"mean_radius": "prediction", "mean_texture": "probability", "mean_area": "model_version"}
    )
    return _with_row_id(frame)


# --- an empty column ----------------------------------------------------------------


def all_null_column() -> pd.DataFrame:
    frame = _cancer(8)
    frame.insert(3, "empty", np.full(len(frame), np.nan))
    return _with_row_id(frame)


# --- size -----------------------------------------------------------------------------------------------------


def tiny_rare_class() -> pd.DataFrame:
    """20 iris flowers: 9 setosa, 9 versicolor, 2 virginica (fewer than 3 cross-validation folds)."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    iris.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
    parts = [iris[iris["target"] == k].head(n) for k, n in ((0, 9), (1, 9), (2, 2))]
    return _with_row_id(pd.concat(parts).sample(frac=1.0, random_state=3))


# --- CSV ------------------------------------------------------------------------------------------------------

_TITLES = ("Mr", "Miss", "Mrs", "Master")


def csv_quoted_commas() -> pd.DataFrame:
    """Titanic passengers as CSV: `honorific` ("Mrs, 1st") holds a comma in every value, so every value is written
    quoted; the passenger's name (commas, and one with double quotes) passes through as an id."""
    t = load_table("titanic").frame
    title = t["name"].str.extract(r"^[^,]*,\s*([A-Za-z]+)")[0]
    title = title.where(title.isin(_TITLES), "Other")
    frame = pd.DataFrame(
        {
            "passenger_id": np.arange(len(t), dtype="int64"),
            "name": t["name"],
            "honorific": title + ", " + t["class"].replace("*", "unknown"),
            "sex": t["sex"],
            "age": t["age"],
            "survived": t["survived"],
        }
    )
    return frame


# --- time and decimal columns ------------------------------------------------------------------------------------


def time_columns() -> pd.DataFrame:
    """no_strings_binary01's rows with the columns every scoring table carries, as pandas writes them: a datetime
    (Parquet TIMESTAMP(NANOS), pandas' default), a time-zone-aware one, a date, a decimal amount (an id), and the
    mean area as a decimal. The three time columns are left out by every trainer with a warning (not features; the
    user does not exclude them here) and carried through scoring unchanged (the same instants: Spark holds
    microseconds, see README); the decimal mean area is a number feature; the amount passes through as a decimal."""
    frame = no_strings_binary01()
    n = len(frame)
    times = pd.Timestamp("2024-03-30 22:15:00.123456") + pd.to_timedelta(np.arange(n) * 3_601_000_007, unit="us")
    frame.insert(1, "event_time", pd.Series(times, dtype="datetime64[ns]"))
    frame.insert(2, "event_local", frame["event_time"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    frame.insert(3, "day", [datetime.date(2023, 12, 31) + datetime.timedelta(days=i) for i in range(n)])
    frame.insert(4, "amount", [decimal.Decimal(i * 37 % 100_000) / 100 for i in range(n)])
    frame["mean_area"] = [decimal.Decimal(f"{v:.2f}") for v in frame["mean_area"]]
    return frame


TIME_COLUMNS = ("event_time", "event_local", "day")

SHAPES = [
    Shape("no_strings_binary01", no_strings_binary01, "target", ("row_id",), CLASSIFICATION),
    Shape("one_string_regression", one_string_regression, "y", ("row_id",), REGRESSION),
    Shape("several_strings_multiclass", several_strings_multiclass, "species", ("row_id",), CLASSIFICATION),
    Shape(
        "bool_int_constant_string_label",
        bool_int_constant_string_label,
        "diagnosis",
        ("row_id",),
        CLASSIFICATION,
        left_out=("constant",),
    ),
    Shape("boolean_label", boolean_label, "benign", ("row_id",), CLASSIFICATION),
    Shape("multiclass_int_missing_values", multiclass_int_missing_values, "target", ("row_id",), CLASSIFICATION),
    Shape(
        "odd_names",
        odd_names,
        "diagnóstico",
        ("patient id",),
        CLASSIFICATION,
        # Spark ML stages read a dot as a struct field: MLlib refuses the dotted name; every other job takes it.
        must_refuse={"mllib": r"column\(s\) 'mean\.perimeter' have a dot in their name"},
    ),
    Shape(
        "output_named_features",
        output_named_features,
        "target",
        ("row_id",),
        CLASSIFICATION,
        # The MLlib pipeline adds columns of these names itself; scikit-learn models take them as features.
        must_refuse={"mllib": r"feature column\(s\) 'prediction', 'probability' have the name of a column"},
    ),
    Shape(
        "all_null_column",
        all_null_column,
        "target",
        ("row_id",),
        CLASSIFICATION,
        must_refuse={"mllib": r"feature column\(s\) 'empty' hold no values"},  # scikit-learn's imputer drops it
        left_out_by={"sklearn": ("empty",)},  # train_sklearn leaves out a column with one value (none) in every row
    ),
    Shape(
        "tiny_rare_class",
        tiny_rare_class,
        "target",
        ("row_id",),
        CLASSIFICATION,
        must_refuse={
            "hyperopt": r"cv_folds=3 needs every class of 'target' at least 3 times",
            "joblib": r"cv_folds=3 needs every class of 'target' at least 3 times",
        },
        mllib_kwargs={"cv_folds": 3},  # MLlib's k-fold does not stratify: a rare class is no reason to refuse
    ),
    Shape(
        "csv_quoted_commas",
        csv_quoted_commas,
        "survived",
        ("passenger_id", "name"),
        CLASSIFICATION,
        fmt="csv",
    ),
    Shape("time_columns", time_columns, "target", ("row_id", "amount"), CLASSIFICATION, left_out=TIME_COLUMNS),
]
BY_ID = {shape.id: shape for shape in SHAPES}


@cache
def _cached(shape_id: str) -> pd.DataFrame:
    return BY_ID[shape_id].build()


def spark_ddl_type(values: pd.Series) -> str:
    """The Spark SQL type of a pandas column as Parquet / Spark's CSV inference gives it."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "TIMESTAMP"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "TIMESTAMP_NTZ"  # a naive datetime: Spark reads it as wall-clock time
    first = values.dropna().iloc[0] if values.notna().any() else None
    if isinstance(first, datetime.date):
        return "DATE"
    if isinstance(first, decimal.Decimal):
        inferred = pa.array(values.dropna().tolist()).type  # as pandas' Parquet writer infers it
        return f"DECIMAL({inferred.precision}, {inferred.scale})"
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    return "STRING"


def ddl(frame: pd.DataFrame, columns: list[str]) -> str:
    """`ids` for score_stream: the columns, back-quoted (names may hold spaces, dots, non-ASCII letters)."""
    return ", ".join(f"`{c}` {spark_ddl_type(frame[c])}" for c in columns)
