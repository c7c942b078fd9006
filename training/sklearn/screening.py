"""Which of a table's columns become features: a string column whose values are nearly all distinct (a passenger's
name, an order id) identifies rows rather than describing them, and a column with one value for every row tells
nothing. A model given either fits the training rows and nothing else (Titanic's 1,310 names as categories), so
both are left out with a warning naming them, like `exclude`d columns: not in the model's signature, so scoring
neither needs them nor sees them. The thresholds are parameters a user can override. Time columns, left out when
the table is split (training.column_kinds), are listed with them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from common.errors import UserInputError
from training.tasks import LabeledData

_logger = logging.getLogger(__name__)

DEFAULT_ID_LIKE_RATIO = 0.9  # distinct values / values at or above which a string column is an identifier


@dataclass(frozen=True)
class ScreenedColumns:
    data: LabeledData  # the features without the left-out columns
    left_out: dict[str, str]  # column -> why

    def describe(self) -> str:
        """One line for the run's `dropped_columns` parameter: `name (id-like: 1310 of 1313 distinct); ...`."""
        return "; ".join(f"{column} ({why})" for column, why in self.left_out.items())


def check_thresholds(id_like_ratio: float, max_categories: int) -> None:
    if not id_like_ratio > 0:
        raise UserInputError(f"id_like_ratio must be above 0 (above 1: keep every string column), got {id_like_ratio}")
    if max_categories < 2:
        raise UserInputError(f"max_categories must be at least 2 (one kept value and 'other'), got {max_categories}")


def screen_columns(data: LabeledData, id_like_ratio: float, max_categories: int) -> ScreenedColumns:
    """Leave out constant columns, and string columns with more than `max_categories` values of which at least
    `id_like_ratio` of the present values are distinct (fewer values fit under the category cap anyway).

    Decided on every labelled row, before the split: which columns exist is a property of the table, and the
    model's signature must be the same whatever rows the split drew. No label is looked at."""
    left_out = dict(data.left_out_times)  # already said when the table was split
    for column in data.features.columns:
        values = data.features[column]
        distinct = values.nunique(dropna=True)
        present = int(values.notna().sum())
        if values.nunique(dropna=False) <= 1:
            left_out[column] = "no values" if present == 0 else "one value for every row"
        elif column in data.categorical_features and distinct > max_categories and distinct >= id_like_ratio * present:
            left_out[column] = f"id-like: {distinct} distinct of {present} values"
    if len(left_out) == len(data.left_out_times):
        return ScreenedColumns(data, left_out)
    kept = [c for c in data.features.columns if c not in left_out]
    if not kept:
        raise UserInputError(
            "no feature columns left after leaving out "
            + "; ".join(f"{c} ({why})" for c, why in left_out.items())
            + " (id_like_ratio above 1 keeps string columns whatever their values)"
        )
    for column, why in left_out.items():
        if column in data.left_out_times:
            continue
        _logger.warning("left out column %r: %s (not a feature; see id_like_ratio / exclude)", column, why)
    screened = replace(
        data,
        features=data.features[kept],
        numeric_features=[c for c in data.numeric_features if c in kept],
        categorical_features=[c for c in data.categorical_features if c in kept],
    )
    return ScreenedColumns(screened, left_out)
