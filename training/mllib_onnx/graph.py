"""A small builder over `onnx.helper`: the stage converters add nodes to one graph and track, per DataFrame column,
the tensor that holds it. Every number in the graph is float64, as Spark computes in doubles (float32 thresholds
would flip decisions at the boundary)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ONNX_OPSET = 21
ML_OPSET = 5  # ai.onnx.ml: TreeEnsemble (set membership for categorical splits) is opset 5


@dataclass
class Column:
    """A DataFrame column inside the graph: `tensor` is `[N, width]`, strings (width 1) or float64."""

    tensor: str
    kind: str  # "string" or "number"
    width: int = 1
    spark_type: str = "double"
    raw_source: str | None = None  # the raw numeric input column whose value this is unchanged (edge rows use it)


@dataclass
class GraphBuilder:
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    _count: int = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}__{self._count}"

    def add_input(self, name: str, kind: str) -> str:
        elem = TensorProto.STRING if kind == "string" else TensorProto.DOUBLE
        self.inputs.append(helper.make_tensor_value_info(name, elem, [None, 1]))
        return name

    def const(self, hint: str, value) -> str:
        name = self.fresh(hint)
        array = np.asarray(value)
        if array.dtype.kind == "f":
            array = array.astype(np.float64)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, domain: str | None = None, **attrs) -> str:
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(op_type), domain=domain, **attrs))
        return out

    def add_output(self, tensor: str, name: str, elem_type: int, shape: list) -> None:
        self.nodes.append(helper.make_node("Identity", [tensor], [name], name=self.fresh("output")))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "mllib_pipeline", self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
            producer_name="spark-model-lifecycle",
            doc_string=doc,
        )
        model.ir_version = 10  # onnxruntime 1.31 reads IR 10; onnx 1.23 would write a newer one by default
        onnx.checker.check_model(model, full_check=True)
        return model
