"""An `xgboost.spark` model stage as one ai.onnx.ml TreeEnsemble node, read from the booster's own JSON model (the
stage's `model/part-00000`, written by xgboost.spark): no XGBoost and no JVM needed to convert.

What makes it exact: XGBoost compares float32(x) < float32(threshold), so the features are rounded to float32 (and
back) before the trees and every split is BRANCH_LT on the float32 threshold; a missing value follows the node's
default branch (`default_left`). Each tree adds its leaf value to the class `tree_info` names; the base margin is
learner_model_param.base_score, in probability space for binary:logistic (its logit is the margin) and in margin
space for multi:softprob and reg:squarederror (checked against Booster.predict(output_margin=True)). Objectives
with another link, categorical splits and boosters other than gbtree are refused by name.
"""

from __future__ import annotations

import json
import math

import numpy as np
from onnx import TensorProto, numpy_helper

from training.mllib_onnx.graph import GraphBuilder
from training.mllib_onnx.saved_stages import SavedStage

XGBOOST_CLASSIFIER = "SparkXGBClassifierModel"
XGBOOST_REGRESSOR = "SparkXGBRegressorModel"
_LT, _SUM = 1, 1
_OBJECTIVES = {"binary:logistic", "multi:softprob", "reg:squarederror"}


def read_booster(stage: SavedStage) -> dict:
    parts = sorted((stage.path / "model").glob("part-*"))
    if not parts:
        raise stage.refuse("its booster (model/part-*) is missing")
    learner = json.loads("".join(p.read_text() for p in parts))["learner"]
    objective = learner["objective"]["name"]
    if objective not in _OBJECTIVES:
        raise stage.refuse(f"objective {objective!r}; supported: {', '.join(sorted(_OBJECTIVES))}")
    if learner["gradient_booster"]["name"] != "gbtree":
        raise stage.refuse(f"booster {learner['gradient_booster']['name']!r}; only 'gbtree' is supported")
    return learner


def _base_margins(learner: dict, n_targets: int) -> np.ndarray:
    text = learner["learner_model_param"]["base_score"]
    values = [float(v) for v in text.strip("[]").split(",")]
    if learner["objective"]["name"] == "binary:logistic":
        values = [math.log(p / (1.0 - p)) for p in values]
    margins = np.asarray(values * n_targets if len(values) == 1 else values, dtype=np.float64)
    return margins.reshape(1, n_targets)


def _ensemble(stage: SavedStage, learner: dict, graph: GraphBuilder, features: str, width: int, n_targets: int):
    """The trees' margin per target, [N, n_targets] float64, and (feature index, threshold) of every split."""
    model = learner["gradient_booster"]["model"]
    if int(learner["learner_model_param"]["num_feature"]) != width:
        raise stage.refuse(f"its booster expects {learner['learner_model_param']['num_feature']} features; got {width}")
    a: dict[str, list] = {k: [] for k in ("feat", "split", "miss", "t_id", "t_leaf", "f_id", "f_leaf")}
    roots: list[int] = []
    leaf_targets, leaf_weights, found = [], [], set()
    for tree, target in zip(model["trees"], model["tree_info"], strict=True):
        if any(tree["split_type"]):
            raise stage.refuse("a tree has categorical splits")
        left, right = tree["left_children"], tree["right_children"]
        conditions = tree["split_conditions"]
        inner = [n for n in range(len(left)) if left[n] != -1]
        position = {n: len(a["feat"]) + i for i, n in enumerate(inner)}
        leaves = [n for n in range(len(left)) if left[n] == -1]
        leaf_position = {n: len(leaf_weights) + i for i, n in enumerate(leaves)}
        leaf_weights += [float(np.float32(conditions[n])) for n in leaves]
        leaf_targets += [int(target)] * len(leaves)
        if not inner:  # one leaf: a node whose two branches are that leaf
            roots.append(len(a["feat"]))
            only = leaf_position[0]
            for key, value in zip(a, (0, 0.0, 0, only, 1, only, 1), strict=True):
                a[key].append(value)
            continue
        roots.append(position[0])
        for n in inner:
            threshold = float(np.float32(conditions[n]))
            a["feat"].append(int(tree["split_indices"][n]))
            a["split"].append(threshold)
            a["miss"].append(int(tree["default_left"][n]))
            found.add((int(tree["split_indices"][n]), threshold))
            for side, child in (("t", left[n]), ("f", right[n])):
                is_leaf = left[child] == -1
                a[f"{side}_id"].append(leaf_position[child] if is_leaf else position[child])
                a[f"{side}_leaf"].append(int(is_leaf))
    # XGBoost reads features as float32: round them, and compare as it does.
    as_float32 = graph.op("Cast", [features], "features_f32", to=TensorProto.FLOAT)
    rounded = graph.op("Cast", [as_float32], "features_rounded", to=TensorProto.DOUBLE)
    trees = graph.op(
        "TreeEnsemble", [rounded], "tree_margin", domain="ai.onnx.ml", n_targets=n_targets, aggregate_function=_SUM,
        post_transform=0, tree_roots=roots, nodes_featureids=a["feat"],
        nodes_splits=numpy_helper.from_array(np.asarray(a["split"], dtype=np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(len(a["feat"]), _LT, dtype=np.uint8)),
        nodes_missing_value_tracks_true=a["miss"], nodes_truenodeids=a["t_id"], nodes_trueleafs=a["t_leaf"],
        nodes_falsenodeids=a["f_id"], nodes_falseleafs=a["f_leaf"], leaf_targetids=leaf_targets,
        leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
    )  # fmt: skip
    margin = graph.op("Add", [trees, graph.const("base_margin", _base_margins(learner, n_targets))], "margin")
    return margin, sorted(found)


def xgboost_classifier(stage: SavedStage, graph: GraphBuilder, features: str, width: int):
    """binary:logistic: p = sigmoid(margin), probability [1 - p, p], class 1 iff p > 0.5; multi:softprob:
    softmax(margins), the first class with the highest probability (XGBoost's argmax)."""
    learner = read_booster(stage)
    n_classes = max(2, int(learner["learner_model_param"]["num_class"]))
    if n_classes == 2:
        margin, found = _ensemble(stage, learner, graph, features, width, 1)
        p1 = graph.op("Sigmoid", [margin], "p1")
        p0 = graph.op("Sub", [graph.const("one", 1.0), p1], "p0")
        probability = graph.op("Concat", [p0, p1], "probability", axis=1)
    else:
        margin, found = _ensemble(stage, learner, graph, features, width, n_classes)
        probability = graph.op("Softmax", [margin], "probability", axis=1)
    index = graph.op("ArgMax", [probability], "prediction_index", axis=1, keepdims=0, select_last_index=0)
    return probability, index, found, n_classes


def xgboost_regressor(stage: SavedStage, graph: GraphBuilder, features: str, width: int):
    learner = read_booster(stage)
    return _ensemble(stage, learner, graph, features, width, 1)
