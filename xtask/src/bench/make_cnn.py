"""Writes the convolution model of `cargo xtask bench server`'s batching table: the shape of the
Keras MNIST example (Conv 1->32 3x3, ReLU, MaxPool 2, Conv 32->64 3x3, ReLU, MaxPool 2, Flatten,
Dense 1600->128, ReLU, Dense 128->10), seeded random weights; input `image` [batch, 1, 28, 28],
output `logits` [batch, 10], the signature of the mnist_cnn fixture. About 14 times mnist_cnn's
multiply-adds, so that the model, not HTTP and JSON, is most of a request's cost."""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

path = sys.argv[1]
rng = np.random.default_rng(0)


def weight(name, shape, fan_in):
    w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    return numpy_helper.from_array(w.astype(np.float32), name=name)


initializers = [
    weight("conv1_w", (32, 1, 3, 3), 9),
    numpy_helper.from_array(np.zeros(32, np.float32), "conv1_b"),
    weight("conv2_w", (64, 32, 3, 3), 32 * 9),
    numpy_helper.from_array(np.zeros(64, np.float32), "conv2_b"),
    weight("fc1_w", (1600, 128), 1600),
    numpy_helper.from_array(np.zeros(128, np.float32), "fc1_b"),
    weight("fc2_w", (128, 10), 128),
    numpy_helper.from_array(np.zeros(10, np.float32), "fc2_b"),
]
nodes = [
    helper.make_node("Conv", ["image", "conv1_w", "conv1_b"], ["c1"], kernel_shape=[3, 3]),  # 26
    helper.make_node("Relu", ["c1"], ["r1"]),
    helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),  # 13
    helper.make_node("Conv", ["p1", "conv2_w", "conv2_b"], ["c2"], kernel_shape=[3, 3]),  # 11
    helper.make_node("Relu", ["c2"], ["r2"]),
    helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),  # 5
    helper.make_node("Flatten", ["p2"], ["f"], axis=1),
    helper.make_node("Gemm", ["f", "fc1_w", "fc1_b"], ["d1"]),
    helper.make_node("Relu", ["d1"], ["r3"]),
    helper.make_node("Gemm", ["r3", "fc2_w", "fc2_b"], ["logits"]),
]
graph = helper.make_graph(
    nodes,
    "cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    initializer=initializers,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, path)
