"""The held-out metrics the training run logged (training/evaluation.py: accuracy, F1, log loss and ROC AUC for a
classifier; RMSE, MAE and R² for a regressor), per window, from Spark aggregates over the rows whose label arrived.

Every metric is an exact sum except ROC AUC, which ranks probabilities rounded to AUC_RESOLUTION: pairs of rows
within one step of each other count as ties (half), so it is within the share of such pairs of the exact figure.
F1 is the positive class's (classes[1]) for two classes and support-weighted for more, as training computes it;
log loss clips probabilities to [eps, 1 - eps] as scikit-learn does. A multiclass model's (probability: one array
element per class) ROC AUC is one-vs-rest, averaged over the classes, as training's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column, DataFrame, Row, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.profile import category_text
from monitoring.groups import GroupKey, group_key, grouped, partition_columns, whole_marker
from monitoring.inputs import VERSION
from monitoring.values import category_value, numeric_value

AUC_RESOLUTION = 1e-4
_EPS = float(np.finfo(float).eps)
PREDICTION, PROBABILITY = "prediction", "probability"


@dataclass(frozen=True)
class MetricSpec:
    task: str
    label: str
    classes: tuple[str, ...] | None  # as category text, in the order of the model's probabilities

    @classmethod
    def of(cls, profile: dict) -> MetricSpec:
        classes = profile.get("classes")
        return cls(profile["task"], profile["label"], tuple(map(category_text, classes)) if classes else None)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def aggregates(self, df: DataFrame) -> list[Column]:
        if self.regression:
            y, p = numeric_value(df, self.label), numeric_value(df, PREDICTION)
            both = y.isNotNull() & p.isNotNull()
            error = F.when(both, y - p)
            return [
                F.count_if(both).alias("m_n"),
                F.sum(error * error).alias("m_se"),
                F.sum(F.abs(error)).alias("m_ae"),
                F.sum(F.when(both, y)).alias("m_sy"),
                F.sum(F.when(both, y * y)).alias("m_syy"),
            ]
        y, p = category_value(df, self.label), category_value(df, PREDICTION)
        both = y.isNotNull() & p.isNotNull()
        out = [F.count_if(both).alias("m_n"), F.count_if(both & (y == p)).alias("m_correct")]
        for i, c in enumerate(self.classes or ()):
            out += [
                F.count_if(both & (y == c) & (p == c)).alias(f"m_tp{i}"),
                F.count_if(both & (p == c)).alias(f"m_pred{i}"),
                F.count_if(both & (y == c)).alias(f"m_true{i}"),
            ]
        true_class_probability = self._true_class_probability(df, y)
        if true_class_probability is not None:
            clipped = F.least(F.greatest(true_class_probability, F.lit(_EPS)), F.lit(1 - _EPS))
            out += [
                F.sum(F.when(both, -F.log(clipped))).alias("m_ll"),
                F.count_if(both & clipped.isNotNull()).alias("m_lln"),
            ]
        return out

    def _true_class_probability(self, df: DataFrame, y: Column) -> Column | None:
        if not self.classes or PROBABILITY not in df.columns:
            return None
        kind = df.schema[PROBABILITY].dataType
        if isinstance(kind, T.ArrayType):  # one probability per class, in the classes' order
            position = F.array_position(F.array(*[F.lit(c) for c in self.classes]), y)
            return F.when(position > 0, F.element_at(F.col(PROBABILITY), position.cast("int")))
        if len(self.classes) != 2:
            return None
        p1 = numeric_value(df, PROBABILITY)  # binary: P(classes[1])
        return F.when(y == self.classes[1], p1).when(y == self.classes[0], 1 - p1)

    def metrics(self, row: Row, auc: float | None) -> dict[str, float]:
        n = row["m_n"]
        if not n:
            return {}
        if self.regression:
            total = row["m_syy"] - row["m_sy"] ** 2 / n
            out = {"rmse": math.sqrt(row["m_se"] / n), "mae": row["m_ae"] / n}
            return out | ({"r2": 1 - row["m_se"] / total} if total > 0 else {})
        out = {"accuracy": row["m_correct"] / n}
        if self.classes:
            out["f1"] = _f1(row, len(self.classes))
        if "m_ll" in row.asDict() and row["m_lln"] == n:
            out["log_loss"] = row["m_ll"] / n
        if auc is not None:
            out["roc_auc"] = auc
        return out

    def roc_auc(self, df: DataFrame) -> dict[GroupKey, float]:
        """ROC AUC per group, as training computes it: for two classes, positives (classes[1]) ranked against
        negatives by P(classes[1]); for more, each class against the rest by its own probability, averaged over the
        classes (one-vs-rest, macro: roc_auc_score(multi_class="ovr")). Every class in one small aggregate."""
        if self.regression or not self.classes or PROBABILITY not in df.columns:
            return {}
        y = category_value(df, self.label)
        if isinstance(df.schema[PROBABILITY].dataType, T.ArrayType):
            if len(self.classes) < 3:
                return {}
            scores = [(c, F.element_at(F.col(PROBABILITY), i + 1).cast("double")) for i, c in enumerate(self.classes)]
        elif len(self.classes) == 2:
            scores = [(self.classes[1], numeric_value(df, PROBABILITY))]
        else:
            return {}
        pairs = [
            F.struct(F.lit(i).alias("__class"), p.alias("__p"), (y == c).cast("long").alias("__positive"))
            for i, (c, p) in enumerate(scores)
        ]
        keys = [c for c in df.columns if c.startswith("__monitor_") or c == VERSION]
        exploded = df.where(y.isNotNull()).select(*keys, F.inline(F.array(*pairs))).where(F.col("__p").isNotNull())
        bucket = F.round(F.col("__p") / AUC_RESOLUTION).cast("long")
        counts = grouped(exploded.withColumn("__bucket", bucket), "__class", "__bucket").agg(
            F.sum("__positive").alias("pos"), F.sum(1 - F.col("__positive")).alias("neg"), *whole_marker(exploded)
        )
        in_class = [*partition_columns(counts), "__class"]
        ranked = Window.partitionBy(*in_class).orderBy("__bucket")
        below = F.coalesce(F.sum("neg").over(ranked.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
        won = counts.withColumn("won", F.col("pos") * (below + F.col("neg") / 2))
        totals = won.groupBy(*in_class).agg(F.sum("won").alias("won"), F.sum("pos").alias("pos"), F.sum("neg"))
        per_class: dict[GroupKey, list[float | None]] = {}
        for r in totals.collect():
            auc = r["won"] / (r["pos"] * r["sum(neg)"]) if r["pos"] and r["sum(neg)"] else None
            per_class.setdefault(group_key(r), []).append(auc)
        # A class with no positive or no negative row has no ROC AUC, and scikit-learn refuses the average then.
        return {
            key: sum(aucs) / len(aucs)
            for key, aucs in per_class.items()
            if len(aucs) == len(scores) and None not in aucs
        }


def _f1(row: Row, classes: int) -> float:
    def f1(i: int) -> float:
        denominator = row[f"m_pred{i}"] + row[f"m_true{i}"]
        return 2 * row[f"m_tp{i}"] / denominator if denominator else 0.0

    if classes == 2:
        return f1(1)
    support = [row[f"m_true{i}"] for i in range(classes)]
    return sum(s * f1(i) for i, s in enumerate(support)) / sum(support) if sum(support) else 0.0
