"""Spark's random forests and gradient-boosted trees as one ai.onnx.ml TreeEnsemble (opset 5) node.

Spark's tree data (`data/`: treeID, nodeData) holds each node: id (pre-order, root 0), prediction, impurityStats
(class counts for a classifier), leftChild/rightChild (-1 at a leaf), split{featureIndex,
leftCategoriesOrThreshold, numCategories}. A continuous split (numCategories -1) goes left iff x <= threshold:
BRANCH_LEQ on a float64 threshold. A categorical split goes left iff x is one of the left categories:
BRANCH_MEMBER, so categorical splits stay categorical (a `<=` on the first category would be wrong).
NaN never reaches the trees (the Imputer fills numbers, indexers give whole numbers); were it to, both Spark and
this graph send it right.

A TreeEnsemble leaf feeds one target, so a classifier's tree is written once per class, each copy's leaves
holding that class's weight.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, numpy_helper

from training.mllib_onnx.graph import GraphBuilder
from training.mllib_onnx.saved_stages import SavedStage

_LEQ, _MEMBER = 0, 6
_SUM = 1


@dataclass
class _Ensemble:
    """The TreeEnsemble attributes, appended tree by tree."""

    splits: list = field(default_factory=list)
    features: list = field(default_factory=list)
    modes: list = field(default_factory=list)
    true_ids: list = field(default_factory=list)
    true_leafs: list = field(default_factory=list)
    false_ids: list = field(default_factory=list)
    false_leafs: list = field(default_factory=list)
    members: list = field(default_factory=list)
    roots: list = field(default_factory=list)
    leaf_targets: list = field(default_factory=list)
    leaf_weights: list = field(default_factory=list)

    def add_tree(self, nodes: dict[int, dict], leaf_value, target: int) -> None:
        """`leaf_value(node)` -> the weight a leaf adds to `target`."""
        root = nodes[0]
        self.roots.append(len(self.modes))
        if root["leftChild"] < 0:  # a tree that is one leaf: a node whose two branches are that leaf
            leaf = self._leaf(leaf_value(root), target)
            self._node(_LEQ, 0, 0.0, None, (leaf, 1), (leaf, 1))
            return
        self._add(nodes, 0, leaf_value, target)

    def _add(self, nodes: dict[int, dict], node_id: int, leaf_value, target: int) -> tuple[int, int]:
        """Adds the subtree at `node_id`; returns (index, 1 if a leaf)."""
        node = nodes[node_id]
        if node["leftChild"] < 0:
            return self._leaf(leaf_value(node), target), 1
        split = node["split"]
        position = self._node(_LEQ, split["featureIndex"], 0.0, None, (0, 0), (0, 0))  # branches filled below
        if split["numCategories"] < 0:
            self.splits[position] = float(split["leftCategoriesOrThreshold"][0])
        else:
            self.modes[position] = _MEMBER
            self.members.extend([*map(float, split["leftCategoriesOrThreshold"]), np.nan])
        self.true_ids[position], self.true_leafs[position] = self._add(nodes, node["leftChild"], leaf_value, target)
        self.false_ids[position], self.false_leafs[position] = self._add(nodes, node["rightChild"], leaf_value, target)
        return position, 0

    def _node(self, mode, feature, split, _members, true_branch, false_branch) -> int:
        self.modes.append(mode)
        self.features.append(int(feature))
        self.splits.append(split)
        self.true_ids.append(true_branch[0])
        self.true_leafs.append(true_branch[1])
        self.false_ids.append(false_branch[0])
        self.false_leafs.append(false_branch[1])
        return len(self.modes) - 1

    def _leaf(self, weight: float, target: int) -> int:
        self.leaf_weights.append(float(weight))
        self.leaf_targets.append(target)
        return len(self.leaf_weights) - 1

    def node(self, graph: GraphBuilder, features: str, n_targets: int, hint: str) -> str:
        attrs = dict(
            n_targets=n_targets,
            aggregate_function=_SUM,
            post_transform=0,
            tree_roots=self.roots,
            nodes_featureids=self.features,
            nodes_splits=numpy_helper.from_array(np.asarray(self.splits, dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.asarray(self.modes, dtype=np.uint8)),
            nodes_truenodeids=self.true_ids,
            nodes_trueleafs=self.true_leafs,
            nodes_falsenodeids=self.false_ids,
            nodes_falseleafs=self.false_leafs,
            leaf_targetids=self.leaf_targets,
            leaf_weights=numpy_helper.from_array(np.asarray(self.leaf_weights, dtype=np.float64)),
        )
        if self.members:
            attrs["membership_values"] = numpy_helper.from_array(np.asarray(self.members, dtype=np.float64))
        return graph.op("TreeEnsemble", [features], hint, domain="ai.onnx.ml", **attrs)


def read_trees(stage: SavedStage) -> tuple[list[dict[int, dict]], list[float]]:
    """Each tree's nodes by id, in tree order, and each tree's weight (treesMetadata)."""
    by_tree: dict[int, dict[int, dict]] = defaultdict(dict)
    for row in stage.rows("data"):
        by_tree[row["treeID"]][row["nodeData"]["id"]] = row["nodeData"]
    weights = {row["_1"]: float(row["_3"]) for row in stage.rows("treesMetadata")}
    order = sorted(by_tree)
    if order != list(range(len(order))) or sorted(weights) != order:
        raise stage.refuse("its saved trees are not numbered 0..n-1")
    return [by_tree[i] for i in order], [weights[i] for i in order]


def thresholds(trees: list[dict[int, dict]]) -> list[tuple[int, float]]:
    """(feature index, threshold) of every continuous split: edge rows score values exactly at them."""
    found = set()
    for nodes in trees:
        for node in nodes.values():
            if node["leftChild"] >= 0 and node["split"]["numCategories"] < 0:
                found.add((node["split"]["featureIndex"], float(node["split"]["leftCategoriesOrThreshold"][0])))
    return sorted(found)


def random_forest_classifier(stage: SavedStage, graph: GraphBuilder, features: str, n_classes: int):
    """raw[c] = sum over trees of (leaf's class-c count / the leaf's total); probability = raw / sum(raw);
    prediction = the first class with the highest raw value (Spark's argmax over rawPrediction)."""
    trees, _ = read_trees(stage)
    ensemble = _Ensemble()
    for nodes in trees:
        for c in range(n_classes):
            ensemble.add_tree(nodes, lambda node, c=c: _class_share(node, c), c)
    raw = ensemble.node(graph, features, n_classes, "raw_prediction")
    total = graph.op("ReduceSum", [raw, graph.const("axes", np.array([1], dtype=np.int64))], "raw_total", keepdims=1)
    probability = graph.op("Div", [raw, total], "probability")
    index = graph.op("ArgMax", [raw], "prediction_index", axis=1, keepdims=0, select_last_index=0)
    return probability, index, thresholds(trees)


def _class_share(node: dict, c: int) -> float:
    counts = node["impurityStats"]
    total = sum(counts)
    return counts[c] / total if total != 0 else 0.0


def random_forest_regressor(stage: SavedStage, graph: GraphBuilder, features: str):
    """prediction = the mean of the trees' leaf predictions (summed in tree order, then divided)."""
    trees, _ = read_trees(stage)
    ensemble = _Ensemble()
    for nodes in trees:
        ensemble.add_tree(nodes, lambda node: node["prediction"], 0)
    total = ensemble.node(graph, features, 1, "tree_sum")
    prediction = graph.op("Div", [total, graph.const("n_trees", float(len(trees)))], "prediction")
    return prediction, thresholds(trees)


def _gbt_margin(stage: SavedStage, graph: GraphBuilder, features: str):
    """sum over trees of weight_i * leaf prediction_i (each product as Spark rounds it)."""
    trees, weights = read_trees(stage)
    ensemble = _Ensemble()
    for nodes, weight in zip(trees, weights, strict=True):
        ensemble.add_tree(nodes, lambda node, w=weight: node["prediction"] * w, 0)
    return ensemble.node(graph, features, 1, "margin"), thresholds(trees)


def gbt_regressor(stage: SavedStage, graph: GraphBuilder, features: str):
    return _gbt_margin(stage, graph, features)


def gbt_classifier(stage: SavedStage, graph: GraphBuilder, features: str):
    """Spark: rawPrediction = [-m, m]; P(0) = 1 / (1 + exp(2m)) (log loss), P(1) = 1 - P(0); prediction = 1 iff
    m > 0 (argmax of [-m, m], the first on a tie)."""
    if stage.param("lossType", "logistic") != "logistic":
        raise stage.refuse(f"lossType={stage.param('lossType')!r}; only 'logistic' is supported")
    margin, found = _gbt_margin(stage, graph, features)
    doubled = graph.op("Mul", [margin, graph.const("two", 2.0)], "doubled_margin")
    one = graph.const("one", 1.0)
    p0 = graph.op("Div", [one, graph.op("Add", [one, graph.op("Exp", [doubled], "exp")], "denominator")], "p0")
    p1 = graph.op("Sub", [one, p0], "p1")
    probability = graph.op("Concat", [p0, p1], "probability", axis=1)
    positive = graph.op("Greater", [margin, graph.const("zero", 0.0)], "positive")
    index = graph.op("Cast", [positive], "prediction_index_2d", to=TensorProto.INT64)
    index = graph.op("Reshape", [index, graph.const("flat", np.array([-1], dtype=np.int64))], "prediction_index")
    return probability, index, found
