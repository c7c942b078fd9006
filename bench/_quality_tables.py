"""The real tables the model-quality benchmark trains on, all shipped inside packages the project already installs
(scikit-learn, palmerpenguins, bokeh_sampledata): nothing is downloaded at run time.

Each names its label, its task and the columns that are row ids (every model gets them in `exclude`); what else
a table holds (names, cities, gaps, heavy tails) is left for the product to handle, as a user would leave it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"


@dataclass(frozen=True)
class QualityTable:
    name: str
    kind: str  # BINARY, MULTICLASS or REGRESSION
    label: str
    load: Callable[[], pd.DataFrame]
    ids: tuple[str, ...] = ()  # row ids: not features for anyone
    covers: str = ""  # what makes the table worth having, printed beside it

    @property
    def task(self) -> str:
        return "regression" if self.kind == REGRESSION else "classification"


def _sklearn(loader: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        frame = getattr(datasets, loader)(as_frame=True).frame
        return frame.rename(columns=lambda c: str(c).replace(" ", "_"))

    return load


def _bokeh_csv(filename: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from bokeh_sampledata import package_path

        return pd.read_csv(package_path(filename))

    return load


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _superstore_loss() -> pd.DataFrame:
    """Will an order lose money? The same orders, Profit turned into the label (and so not a feature)."""
    frame = _bokeh_csv("SampleSuperstore.csv.gz")()
    return frame.assign(loss=(frame.pop("Profit") < 0).map({True: "loss", False: "profit"}))


def _movies() -> pd.DataFrame:
    """Films with their critics' average rating (Rotten Tomatoes) and what is known beside it: year, MPAA rating,
    runtime, genres, languages, countries, Oscars, Metacritic score (most missing), review count, box office."""
    from bokeh_sampledata import package_path

    with sqlite3.connect(package_path("movies.db")) as connection:
        return pd.read_sql(
            "SELECT o.imdbID AS imdb_id, o.Year AS year, o.Rating AS mpaa, o.Runtime AS runtime, o.Genre AS genre, "
            "o.Language AS language, o.Country AS country, o.Oscars AS oscars, o.Metacritic AS metacritic, "
            "t.Reviews AS reviews, t.BoxOffice AS box_office, t.Rating AS critics_rating "
            "FROM omdb o JOIN tomatoes t ON o.ID = t.ID ORDER BY o.ID",
            connection,
        )


TABLES: tuple[QualityTable, ...] = (
    QualityTable("breast_cancer", BINARY, "target", _sklearn("load_breast_cancer"), covers="30 numbers"),
    QualityTable(
        "titanic", BINARY, "survived", _bokeh_csv("titanic_all.csv"), covers="name: 1,310 of 1,313 distinct; age gaps"
    ),
    QualityTable(
        "superstore_loss", BINARY, "loss", _superstore_loss, covers="City 531 values, State 49, Country constant"
    ),
    QualityTable("wine", MULTICLASS, "target", _sklearn("load_wine"), covers="3 classes, 178 rows"),
    QualityTable("digits", MULTICLASS, "target", _sklearn("load_digits"), covers="10 classes, 64 pixels"),
    QualityTable("penguins", MULTICLASS, "species", _penguins, covers="strings with gaps"),
    QualityTable("forensic_glass", MULTICLASS, "type", _bokeh_csv("forensic_glass.csv"), covers="6 classes, 214 rows"),
    QualityTable(
        "mpg_class", MULTICLASS, "class", _bokeh_csv("auto-mpg2.csv"), ids=("Unnamed: 0",), covers="model: 38 values"
    ),
    QualityTable("diabetes", REGRESSION, "target", _sklearn("load_diabetes"), covers="442 rows"),
    QualityTable(
        "superstore_profit",
        REGRESSION,
        "Profit",
        _bokeh_csv("SampleSuperstore.csv.gz"),
        covers="heavy-tailed label; City 531 values; Country constant",
    ),  # fmt: skip
    QualityTable("auto_mpg", REGRESSION, "mpg", _bokeh_csv("auto-mpg.csv"), covers="name: 301 of 392 distinct"),
    QualityTable(
        "emissions", REGRESSION, "emissions", _bokeh_csv("emissions.csv.gz"), covers="heavy tail; country 201 values"
    ),
    QualityTable(
        "movies",
        REGRESSION,
        "critics_rating",
        _movies,
        ids=("imdb_id",),
        covers="17k rows; genre 1,188 values; metacritic 61% missing",
    ),  # fmt: skip
)
