"""The classes an MLlib estimator can take: GBT two, and XGBoost every class in the rows it is fitted on.

XGBoost's Spark classifier counts the distinct labels of the rows it is fitted on and takes that count for the
number of classes, so those very rows must hold labels 0..k-1: a class missing from the training split (or from a
cross-validation fold's training rows) leaves a label at or above the count, and the fit fails deep inside a
barrier task (`label must be in [0, num_class)`). MLlib's own trees have no such need.

So, for XGBoost only: the training split must hold every class (else the job is refused before any run, naming the
classes), and cross-validation folds are dealt per class, so that every fold's training rows hold every class; a
class with a single training row cannot be in all of them, and is refused by name."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.errors import UserInputError
from training.mllib.pipeline import LABEL_INDEX, MllibSpec
from training.tasks import CLASSIFICATION

FOLD = "__cv_fold"  # CrossValidator's foldCol: an integer in [0, folds)


def _class_counts(train: DataFrame) -> dict[int, int]:
    return {int(r[0]): int(r[1]) for r in train.groupBy(LABEL_INDEX).count().collect()}


def _names(indexes, label_classes: list[str] | None) -> str:
    return ", ".join(repr(label_classes[i]) if label_classes else str(i) for i in indexes)


def check_classes(spec: MllibSpec, train: DataFrame, label_classes: list[str] | None, n_classes: int) -> None:
    """Refuse, before any run, a label the estimator cannot learn from the training split."""
    label = spec.label
    if spec.task != CLASSIFICATION or spec.estimator not in ("gbt", "xgboost"):
        return
    if spec.estimator == "gbt" and n_classes != 2:
        raise UserInputError(f"gbt classifies two classes; {label!r} has {n_classes}: use random_forest")
    if spec.estimator != "xgboost":
        return
    counts = _class_counts(train)
    missing = [i for i in range(n_classes) if i not in counts]
    if missing:
        raise UserInputError(
            f"estimator xgboost needs every class of {label!r} in the training split; {_names(missing, label_classes)}"
            " drew no training rows (all went to the test split): use a smaller test_fraction, add rows of those "
            "classes, or choose another estimator"
        )


def stratified_folds(train: DataFrame, folds: int, seed: int, label: str, label_classes: list[str] | None) -> DataFrame:
    """`train` with FOLD: each class's rows dealt round-robin over the folds in a seeded hash order of the rows,
    so a class with at least two rows is in at least two folds, hence in every fold's training rows."""
    counts = _class_counts(train)
    single = sorted(i for i, n in counts.items() if n < 2)
    if single:
        raise UserInputError(
            f"cross-validation with estimator xgboost needs every class of {label!r} at least twice in the training "
            f"split (each fold trains without one fold's rows); {_names(single, label_classes)} has one: "
            "use cv_folds=0, add rows of it, or choose another estimator"
        )
    columns = [col(f.name) for f in train.schema.fields if not isinstance(f.dataType, T.MapType)]  # maps: no order
    order = Window.partitionBy(LABEL_INDEX).orderBy(F.xxhash64(F.lit(seed), *columns), *columns)
    return train.withColumn(FOLD, ((F.row_number().over(order) - 1) % folds).cast("int"))
