"""Load training data: a Parquet/CSV path, or the name of a real data set shipped inside an installed package."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lifecycle.errors import UserInputError

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


# name -> loader; each returns a frame whose label column is DEFAULT_LABEL.
BUNDLED: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": _sklearn_loader("load_breast_cancer"),  # binary classification, 569 rows x 30 features
    "wine": _sklearn_loader("load_wine"),  # 3 classes, 178 rows x 13 features
    "diabetes": _sklearn_loader("load_diabetes"),  # regression, 442 rows x 10 features
}


def load_table(data: str) -> Table:
    """`data` is a bundled set's name or a path to Parquet (file or folder) or CSV."""
    if data in BUNDLED:
        loader = BUNDLED[data]
        return Table(loader(), loader.source, data, bundled=True)
    path = Path(data)
    if not path.exists():
        raise UserInputError(
            f"data {data!r} is neither an existing path nor a bundled data set; bundled: {', '.join(sorted(BUNDLED))}"
        )
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
