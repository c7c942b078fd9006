"""How many trees and how deep, from the number of rows, when the user does not say (0 = sized here), and how many
features a forest's split weighs.

A fixed depth underfits a large table and overfits a small one: a tree of depth d splits the rows into up to 2^d
leaves, so the depth grows with log2 of the rows, keeping leaves of some tens of rows on a small table and letting
a large one use more interactions. Boosted trees add up many shallow trees, so their depth grows half as fast and
stops lower. The counts are what the tables in bench/model_quality.py showed to be enough: more trees did not move
held-out metrics there, and each tree is paid for in training, model size and ONNX conversion time.

How many features a forest's split weighs (forest_features): for classification every one, not MLlib's "auto" (their
square root); for regression a third, as "auto", but never fewer than two. On the benchmark's held-out rows, every
feature took mpg_class (10 features) from 0.868 to 0.925 accuracy and forensic glass from 0.714 to 0.735, and kept
the other classification tables within 3 % of their anchors; for regression it cost Superstore Profit (11 features,
heavy-tailed) R² 0.598 -> 0.34-0.45, where a third of them keeps the trees apart. But a third of two features is one:
on the emissions table (country, year) each split saw one of them, often the year, and R² was 0.898 against 0.952
with both."""

from __future__ import annotations

import math

from training.tasks import CLASSIFICATION

FOREST_TREES = 100
BOOSTING_ROUNDS = 100
_FOREST_DEPTH = (4, 12)  # (shallowest, deepest)
_BOOSTING_DEPTH = (3, 6)


def sized_trees(estimator: str, n_rows: int, num_trees: int = 0, max_depth: int = 0) -> tuple[int, int]:
    """(trees or boosting rounds, depth): the user's values where given (> 0), else sized for `n_rows`."""
    bits = math.log2(max(n_rows, 2))
    if estimator == "random_forest":
        low, high = _FOREST_DEPTH
        depth = round(bits) - 2
        trees = FOREST_TREES
    else:
        low, high = _BOOSTING_DEPTH
        depth = round(bits / 2)
        trees = BOOSTING_ROUNDS
    return (num_trees if num_trees > 0 else trees), (max_depth if max_depth > 0 else min(high, max(low, depth)))


def forest_features(task: str, n_features: int) -> str:
    """A forest's featureSubsetStrategy for `n_features` assembled features."""
    if task == CLASSIFICATION:
        return "all"
    return str(max(2, math.ceil(n_features / 3)))  # MLlib caps a count above the features at their number
