"""A saved MLlib PipelineModel (as training.mllib.pipeline builds them) -> one ONNX graph + its feed description.

Read from the saved files only (no JVM): the spark flavor logs the pipeline under `<model dir>/sparkml`, next to the
`MLmodel` file whose signature gives the raw input columns' types and the prediction's output type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto

from common.onnx_model import FEED_FILE, FEED_FORMAT, MODEL_FILE, NULL_STRING
from training.mllib_onnx import feature_stages, linear_models, tree_ensembles, xgboost_trees
from training.mllib_onnx.graph import Column, GraphBuilder
from training.mllib_onnx.saved_stages import SavedStage, UnsupportedPipeline, read_pipeline

_NUMBER_TYPES = {"double", "float", "long", "integer", "short", "byte"}
_FEATURE_STAGES = {
    "StringIndexerModel": feature_stages.string_indexer,
    "OneHotEncoderModel": feature_stages.one_hot_encoder,
    "SQLTransformer": feature_stages.sql_casts,
    "ImputerModel": feature_stages.imputer,
}
CLASSIFIERS = (
    "RandomForestClassificationModel", "GBTClassificationModel", "LogisticRegressionModel",
    xgboost_trees.XGBOOST_CLASSIFIER,
)  # fmt: skip
REGRESSORS = (
    "RandomForestRegressionModel",
    "GBTRegressionModel",
    "LinearRegressionModel",
    xgboost_trees.XGBOOST_REGRESSOR,
)


@dataclass(frozen=True)
class ColumnTypes:
    """The signature: raw input column -> type name (mlflow's: string, long, integer, double, float, boolean), in
    order, and the prediction's type name."""

    inputs: dict[str, str]
    output: str

    @classmethod
    def of_logged_model(cls, model_dir: str | Path) -> ColumnTypes:
        from mlflow.models import Model

        signature = Model.load(str(model_dir)).signature
        if signature is None:
            raise UnsupportedPipeline(f"the model in {model_dir} has no signature")
        inputs = {spec.name: spec.type.name for spec in signature.inputs.inputs}
        return cls(inputs, signature.outputs.inputs[0].type.name)

    @classmethod
    def of_spark_schema(cls, schema, output: str) -> ColumnTypes:
        """From a Spark schema of exactly the input columns (Spark's type names are mlflow's for these types)."""
        return cls({f.name: f.dataType.typeName() for f in schema.fields}, output)


@dataclass
class ConvertedPipeline:
    model: onnx.ModelProto
    feed: dict
    stages: list[str]  # "Class (uid)" of every stage converted, in order
    edge_values: list[tuple[str, float]] = field(default_factory=list)  # (raw column, a tree threshold on it)

    @property
    def is_classifier(self) -> bool:
        return self.feed["classes"] is not None

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        onnx.save_model(self.model, str(directory / MODEL_FILE))
        (directory / FEED_FILE).write_text(json.dumps(self.feed, indent=2, sort_keys=True))
        return directory


def convert_pipeline(sparkml_dir: str | Path, column_types: ColumnTypes | None = None) -> ConvertedPipeline:
    """Convert the pipeline saved in `sparkml_dir`; `column_types` default: the signature in `../MLmodel`.
    Raises UnsupportedPipeline naming the stage it cannot convert exactly."""
    sparkml_dir = Path(sparkml_dir)
    types = column_types or ColumnTypes.of_logged_model(sparkml_dir.parent)
    stages = read_pipeline(sparkml_dir)
    graph = GraphBuilder()
    columns: dict[str, Column] = {}
    for name, type_name in types.inputs.items():
        if type_name == "string":
            columns[name] = Column(graph.add_input(name, "string"), "string", spark_type="string")
        elif type_name in _NUMBER_TYPES or type_name == "boolean":
            raw_source = name if type_name in _NUMBER_TYPES else None
            columns[name] = Column(
                graph.add_input(name, "number"), "number", spark_type=type_name, raw_source=raw_source
            )
        # other types (dates, binary) get no input: a stage reading them is refused as reading an unknown column

    pre_step = None
    sources: list[str | None] | None = None
    estimator = None
    classes = None
    for position, stage in enumerate(stages):
        kind = stage.short_class
        if estimator is not None:
            if kind != "IndexToString":
                raise stage.refuse("only IndexToString may follow the estimator")
            classes = _index_to_string(stage, estimator)
        elif kind == feature_stages.TITLE_STAGE:
            pre_step = feature_stages.title_pre_step(stage, columns, graph, first=position == 0)
        elif kind in _FEATURE_STAGES:
            _FEATURE_STAGES[kind](stage, columns, graph)
        elif kind == "VectorAssembler":
            sources = feature_stages.vector_assembler(stage, columns, graph)
        elif kind in CLASSIFIERS + REGRESSORS:
            estimator = stage
        else:
            raise stage.refuse("this stage has no ONNX converter")
    if estimator is None:
        raise UnsupportedPipeline("the pipeline has no supported estimator stage")
    features = columns.get(estimator.param("featuresCol"))
    if features is None or sources is None:
        raise estimator.refuse(f"its features column {estimator.param('featuresCol')!r} is not a VectorAssembler's")

    outputs, thresholds, n_classes = _estimator(estimator, graph, features)
    if n_classes is not None and classes is None:
        classes = _numeric_classes(n_classes, types.output)
    if classes is not None and len(classes) != n_classes:
        raise UnsupportedPipeline(f"IndexToString names {len(classes)} classes; the estimator has {n_classes}")

    used = {name for node in graph.nodes for name in node.input}
    graph.inputs = [i for i in graph.inputs if i.name in used]
    graph_inputs = []
    for value_info in graph.inputs:
        column = columns.get(value_info.name)
        entry = {"name": value_info.name, "column": value_info.name, "kind": column.kind}
        if column.kind == "number":
            entry["spark_type"] = column.spark_type
        graph_inputs.append(entry)
    stage_labels = [s.label for s in stages]
    feed = {
        "format": FEED_FORMAT,
        "input_columns": list(types.inputs),
        "column_types": dict(types.inputs),
        "pre_step": pre_step,
        "graph_inputs": graph_inputs,
        "null_string": NULL_STRING,
        "task": "classification" if n_classes is not None else "regression",
        "classes": classes,
        "output_type": types.output,
        "outputs": outputs,
        "stages": stage_labels,
        "doc": "Each graph input is [N, 1]: strings (null -> null_string), or float64 (numbers; booleans 1.0/0.0; "
        "null -> NaN). The pre-step, when present, runs first in Python and fills the columns it names.",
    }
    edge_values = [(sources[index], value) for index, value in thresholds if sources[index] is not None]
    model = graph.model(doc="Spark MLlib pipeline: " + " -> ".join(stage_labels))
    return ConvertedPipeline(model, feed, stage_labels, sorted(set(edge_values)))


def _estimator(stage: SavedStage, graph: GraphBuilder, features: Column):
    """Adds the estimator; returns (graph outputs, tree thresholds, number of classes or None)."""
    kind = stage.short_class
    n_features = stage.metadata.get("numFeatures", features.width)
    if n_features != features.width:
        raise stage.refuse(f"expects {n_features} features; the assembler gives {features.width}")
    if kind in CLASSIFIERS:
        if stage.is_set("thresholds"):
            raise stage.refuse("per-class thresholds are not supported")
        if kind == "RandomForestClassificationModel":
            n_classes = int(stage.metadata["numClasses"])
            probability, index, thresholds = tree_ensembles.random_forest_classifier(
                stage, graph, features.tensor, n_classes
            )
        elif kind == "GBTClassificationModel":
            n_classes = 2
            probability, index, thresholds = tree_ensembles.gbt_classifier(stage, graph, features.tensor)
        elif kind == xgboost_trees.XGBOOST_CLASSIFIER:
            probability, index, thresholds, n_classes = xgboost_trees.xgboost_classifier(
                stage, graph, features.tensor, features.width
            )
        else:
            probability, index, n_classes = linear_models.logistic_regression(
                stage, graph, features.tensor, features.width
            )
            thresholds = []
        graph.add_output(probability, "probability", TensorProto.DOUBLE, [None, n_classes])
        graph.add_output(index, "prediction_index", TensorProto.INT64, [None])
        return {"probability": "probability", "prediction_index": "prediction_index"}, thresholds, n_classes
    if kind == "RandomForestRegressionModel":
        prediction, thresholds = tree_ensembles.random_forest_regressor(stage, graph, features.tensor)
    elif kind == "GBTRegressionModel":
        prediction, thresholds = tree_ensembles.gbt_regressor(stage, graph, features.tensor)
    elif kind == xgboost_trees.XGBOOST_REGRESSOR:
        prediction, thresholds = xgboost_trees.xgboost_regressor(stage, graph, features.tensor, features.width)
    else:
        prediction, thresholds = linear_models.linear_regression(stage, graph, features.tensor, features.width), []
    graph.add_output(prediction, "prediction", TensorProto.DOUBLE, [None, 1])
    return {"prediction": "prediction"}, thresholds, None


def _index_to_string(stage: SavedStage, estimator: SavedStage) -> list[str]:
    if stage.param("inputCol") != estimator.param("predictionCol"):
        raise stage.refuse(f"reads {stage.param('inputCol')!r}, not the estimator's prediction column")
    labels = stage.param("labels")
    if not labels:
        raise stage.refuse("has no labels of its own (labels from column metadata are not supported)")
    return list(labels)


def _numeric_classes(n_classes: int, output_type: str) -> list:
    """A numeric label's classes are 0..k-1 (MLlib predicts them as doubles; scoring casts to the label's type)."""
    if output_type == "string":
        return [str(float(i)) for i in range(n_classes)]  # Spark's CAST(1.0 AS STRING)
    if output_type in ("double", "float"):
        return [float(i) for i in range(n_classes)]
    return list(range(n_classes))
