"""XGBoost's scikit-learn classifier for labels that are not 0..k-1. XGBoost only learns classes numbered 0..k-1
(it refuses `['loss', 'profit']`); this one numbers the labels itself, in sorted order as scikit-learn's
classifiers do, and answers with the labels, so predictions and `classes_` read like any other estimator's. Labels
already 0..k-1 use XGBoost's own class (a model that loads wherever xgboost is installed).

Saved with skops like every scikit-learn model: the booster travels as XGBoost's own model bytes, never a pickle."""

from __future__ import annotations

import numpy as np
from xgboost import XGBClassifier

from common.errors import UserInputError


def labels_are_indices(y) -> bool:
    """True when `y` holds integers 0..k-1 with every one present: XGBoost takes them as they are."""
    values = np.unique(np.asarray(y))
    return values.dtype.kind in "iu" and np.array_equal(values, np.arange(len(values)))


class LabelIndexedXGBClassifier(XGBClassifier):
    """XGBClassifier fitted on the indices of the sorted labels; `predict` and `classes_` give the labels."""

    def fit(self, X, y, **kwargs):
        self.__dict__.pop("labels_", None)  # a refit numbers the new labels afresh
        try:
            labels, indices = np.unique(np.asarray(y), return_inverse=True)
        except TypeError as exc:  # e.g. numbers and strings mixed in one column
            raise UserInputError(f"estimator xgboost cannot order the label's values ({exc}); use one type") from exc
        super().fit(X, indices, **kwargs)
        self.labels_ = labels
        return self

    def predict(self, X, **kwargs):
        indices = super().predict(X, **kwargs)
        return indices if kwargs.get("output_margin") else self.labels_[np.asarray(indices, dtype=int)]

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return labels if labels is not None else np.arange(self.n_classes_)
