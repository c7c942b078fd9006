"""Load training data: a Parquet/CSV path, or the name of a real data set shipped inside an installed package."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.errors import UserInputError

DEFAULT_LABEL = "target"


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    source: str  # an absolute path, or the loader a bundled set came from
    name: str
    bundled: bool = False

    def to_mlflow_dataset(self, targets: str | None = None):
        """The table as an MLflow dataset (digest, schema, source) for `mlflow.log_input`."""
        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        if self.bundled:
            source = CodeDatasetSource(tags={"loader": self.source})
        else:
            with warnings.catch_warnings():
                # MLflow registers its local-file source twice and warns that a path is ambiguous between the two.
                warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
                source = resolve_dataset_source(self.source)
        return mlflow.data.from_pandas(self.frame, source=source, name=self.name, targets=targets)


def _snake_case(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def _sklearn_loader(loader_name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, loader_name)(as_frame=True)
        frame = bunch.frame.rename(columns=_snake_case)
        return frame.rename(columns={"target": DEFAULT_LABEL})

    load.source = f"sklearn.datasets.{loader_name}"
    return load


def _titanic() -> pd.DataFrame:
    """1,313 real Titanic passengers: name, class, age (with gaps), sex, survived (0/1)."""
    from bokeh_sampledata import package_csv

    return package_csv("titanic_all.csv")


_titanic.source = "bokeh_sampledata:titanic_all.csv"


def _penguins() -> pd.DataFrame:
    """344 Palmer penguins: species, island, sex (strings), bill/flipper measurements, body mass, year."""
    from palmerpenguins import load_penguins

    return load_penguins()


_penguins.source = "palmerpenguins.load_penguins"


def _iot_devices() -> pd.DataFrame:
    """9,630 generated hourly readings of 50 IoT devices (seeded, no download): `device_id`, sensor readings, and
    `failure` within 24 h; three devices too new or too healthy to train a model of their own."""
    from common.iot_devices import generate

    return generate()


_iot_devices.source = "common.iot_devices.generate"

# name -> loader. The scikit-learn sets name their label DEFAULT_LABEL; titanic's is `survived`, and the penguins'
# body mass (`body_mass_g`) is the usual regression target.
BUNDLED: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": _sklearn_loader("load_breast_cancer"),  # binary classification, 569 rows x 30 features
    "wine": _sklearn_loader("load_wine"),  # 3 classes, 178 rows x 13 features
    "diabetes": _sklearn_loader("load_diabetes"),  # regression, 442 rows x 10 features
    "titanic": _titanic,
    "penguins": _penguins,
    "iot_devices": _iot_devices,  # per-group training: group by device_id, label failure
}


def _unknown_data(data: str) -> UserInputError:
    return UserInputError(
        f"data {data!r} is neither an existing path nor a bundled data set; bundled: {', '.join(sorted(BUNDLED))}"
    )


def load_table(data: str) -> Table:
    """`data` is a bundled set's name or a path to Parquet (file or folder) or CSV."""
    if data in BUNDLED:
        loader = BUNDLED[data]
        return Table(loader(), loader.source, data, bundled=True)
    path = Path(data)
    if not path.exists():
        raise _unknown_data(data)
    frame = read_frame(path)
    if frame.empty:
        raise UserInputError(f"data {data!r} has no rows")
    return Table(frame, str(path.resolve()), path.stem)


def read_frame(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix == ".parquet" or path.is_dir():
        return pd.read_parquet(path)
    raise UserInputError(f"{path}: unsupported file type {suffix!r}; use Parquet (.parquet or a folder) or .csv")


# CSV as pandas and spreadsheets write it (RFC 4180): a header, and a quote inside a quoted value doubled. Spark's
# default escape is a backslash, which would leave `"Molly"" Tobin"` half-quoted.
CSV_OPTIONS = {"header": "true", "escape": '"'}


def read_spark_table(spark, path: str, fmt: str = "auto"):
    """Read Parquet (file or folder), CSV (with a header; types inferred) or JSON with Spark."""
    from pyspark.errors import AnalysisException

    fmt = spark_format(path, fmt)
    reader = spark.read
    if fmt == "csv":
        reader = reader.options(**CSV_OPTIONS).option("inferSchema", "true")
    try:
        if fmt == "parquet":  # nanosecond timestamps (pandas' default) read as microseconds, not refused
            from common.parquet_time import read_parquet

            return read_parquet(spark, path)
        return reader.format(fmt).load(path)
    except AnalysisException as exc:
        raise UserInputError(f"cannot read input {path!r} as {fmt}: {exc.getMessage().splitlines()[0]}") from exc


SPARK_FORMATS = ("parquet", "csv", "json")


def spark_format(path: str, fmt: str = "auto") -> str:
    if fmt != "auto":
        if fmt not in SPARK_FORMATS:
            raise UserInputError(f"unknown input format {fmt!r}; choose auto or one of: {', '.join(SPARK_FORMATS)}")
        return fmt
    name = path.rstrip("/").rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return suffix if suffix in SPARK_FORMATS else "parquet"


def load_spark_table(spark, data: str):
    """`data` as a Spark DataFrame: a bundled set (NaN turned into null, as Spark readers give missing values), or
    a path read by Spark itself, so large inputs never pass through the driver. Returns (DataFrame, source)."""
    from pyspark.sql import functions as F

    from common.columns import col

    if data in BUNDLED:
        frame = BUNDLED[data]()
        df = spark.createDataFrame(frame)
        floats = {c: t for c, t in df.dtypes if t in ("double", "float")}
        df = df.select(
            *[F.nanvl(col(c), F.lit(None).cast(floats[c])).alias(c) if c in floats else col(c) for c in df.columns]
        )
        return df, BUNDLED[data].source
    if not Path(data).exists() and "://" not in data:
        raise _unknown_data(data)
    return read_spark_table(spark, data), data
