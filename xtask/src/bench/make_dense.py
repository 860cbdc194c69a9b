"""Writes the dense ONNX model of `cargo xtask bench memory`: LAYERS MatMul+Relu layers of
WIDTH x WIDTH float32 weights (8192 and 4 make 1 GiB), input `x` [batch, WIDTH], output `y`."""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

path, width, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
nodes, weights = [], []
previous = "x"
for i in range(layers):
    w = (rng.standard_normal((width, width), dtype=np.float32) / np.sqrt(width)).astype(np.float32)
    weights.append(numpy_helper.from_array(w, name=f"w{i}"))
    out = "y" if i == layers - 1 else f"h{i}"
    nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"], name=f"matmul{i}"))
    nodes.append(helper.make_node("Relu", [f"m{i}"], [out], name=f"relu{i}"))
    previous = out
graph = helper.make_graph(
    nodes,
    "dense",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
    initializer=weights,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.save(model, path)
