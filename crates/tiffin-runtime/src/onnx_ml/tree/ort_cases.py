"""Prints onnxruntime's outputs for the hand-built tree ensembles of tests.rs.

The tests of onnxruntime's binary-classifier and aggregation rules compare tiffin with the
values this script prints (onnxruntime 1.32, one thread). Run from the repository root:

    fixtures/.venv/bin/python crates/tiffin-runtime/src/onnx_ml/tree/ort_cases.py

Where onnxruntime leaves a score column unwritten (PROBIT on one column, or one base value with
class 0 alone) it prints whatever was in memory; tiffin writes 0 there.
"""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper


def model(op, attrs, n_out, label_type=TensorProto.INT64, in_type=TensorProto.FLOAT):
    outputs = ["label", "scores"] if op == "TreeEnsembleClassifier" else ["scores"]
    node = helper.make_node(op, ["X"], outputs, domain="ai.onnx.ml", **attrs)
    out_info = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, n_out])]
    if op == "TreeEnsembleClassifier":
        out_info.insert(0, helper.make_tensor_value_info("label", label_type, [None]))
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", in_type, [None, 1])], out_info
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets)


def run(m, xs, dtype=np.float32):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"X": np.array(xs, dtype=dtype).reshape(-1, 1)})


STUMP = dict(
    nodes_treeids=[0, 0, 0],
    nodes_nodeids=[0, 1, 2],
    nodes_featureids=[0, 0, 0],
    nodes_values=[0.5, 0.0, 0.0],
    nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
    nodes_truenodeids=[1, 0, 0],
    nodes_falsenodeids=[2, 0, 0],
)


def stump_classifier(votes, labels, **extra):
    """x <= 0.5 reaches leaf 1, otherwise leaf 2; votes are (leaf, class id, weight)."""
    attrs = dict(
        STUMP,
        class_treeids=[0] * len(votes),
        class_nodeids=[v[0] for v in votes],
        class_ids=[v[1] for v in votes],
        class_weights=[v[2] for v in votes],
        **extra,
    )
    if isinstance(labels[0], str):
        attrs["classlabels_strings"] = labels
        return model("TreeEnsembleClassifier", attrs, len(labels), TensorProto.STRING)
    attrs["classlabels_int64s"] = labels
    return model("TreeEnsembleClassifier", attrs, len(labels))


def two_tree_regressor(votes, n_targets, **extra):
    """Two copies of the stump; votes are (tree, leaf, target, weight)."""
    attrs = {k: v + v for k, v in STUMP.items()}
    attrs["nodes_treeids"] = [0, 0, 0, 1, 1, 1]
    attrs.update(
        target_treeids=[v[0] for v in votes],
        target_nodeids=[v[1] for v in votes],
        target_ids=[v[2] for v in votes],
        target_weights=[v[3] for v in votes],
        n_targets=n_targets,
        **extra,
    )
    return model("TreeEnsembleRegressor", attrs, n_targets)


one_column = [(1, 0, 0.3), (2, 0, 0.7)]
gbt = [(1, 0, -0.3), (2, 0, 0.7)]
two_columns = [(1, 0, 0.7), (2, 1, 0.3), (1, 0, 0.2), (2, 1, 0.8)]
classifiers = {
    "random forest": stump_classifier(one_column, [0, 1]),
    "gradient boosting": stump_classifier(gbt, [0, 1], base_values=[0.1], post_transform="LOGISTIC"),
    "gradient boosting, labels 5 and 7": stump_classifier(
        gbt, [5, 7], base_values=[0.1], post_transform="LOGISTIC"
    ),
    "class 1 only": stump_classifier([(1, 1, 0.3), (2, 1, 0.7)], [0, 1]),
    "class 1 only, two base values": stump_classifier(
        [(1, 1, 0.3), (2, 1, 0.7)], [0, 1], base_values=[0.1, 0.2]
    ),
    "class 0 only, two base values": stump_classifier(one_column, [0, 1], base_values=[0.1, 0.2]),
    "two columns, labels 5 and 7": stump_classifier(two_columns, [5, 7]),
    "one column, softmax": stump_classifier(gbt, [0, 1], post_transform="SOFTMAX"),
    "two columns, one base value": stump_classifier(
        [(1, 0, 0.7), (2, 1, -0.3), (1, 0, 0.2), (2, 1, 0.8)], [0, 1], base_values=[0.5]
    ),
    "one column, probit": stump_classifier(one_column, [0, 1], post_transform="PROBIT"),
    "string labels": stump_classifier(two_columns, ["no", "yes"]),
    "three string labels": stump_classifier([(1, 1, 0.5), (1, 2, 0.5), (2, 2, 1.0)], ["a", "b", "c"]),
}
for name, m in classifiers.items():
    label, scores = run(m, [0.0, 1.0])
    print(f"{name}: labels {label.tolist()}, scores {scores.ravel().tolist()}")

single = [(0, 1, 0, 1.0), (0, 2, 0, 2.0), (1, 1, 0, 10.0), (1, 2, 0, 20.0)]
several = [(0, 1, 0, 1.0), (0, 2, 1, 2.0), (1, 1, 0, 10.0), (1, 2, 1, 20.0)]
base3 = dict(base_values=[0.5, 0.25, 7.0])
regressors = {
    "sum": two_tree_regressor(single, 1),
    "average, base 100": two_tree_regressor(single, 1, aggregate_function="AVERAGE", base_values=[100.0]),
    "min, base 100": two_tree_regressor(single, 1, aggregate_function="MIN", base_values=[100.0]),
    "max": two_tree_regressor(single, 1, aggregate_function="MAX"),
    "one target, logistic": two_tree_regressor(single, 1, post_transform="LOGISTIC"),
    "one target, probit, base -10.8": two_tree_regressor(
        single, 1, post_transform="PROBIT", base_values=[-10.8]
    ),
    "two weights on one leaf": two_tree_regressor(
        [(0, 1, 0, 1.0), (0, 1, 0, 5.0), (0, 2, 0, 2.0), (1, 1, 0, 10.0), (1, 2, 0, 20.0)], 1
    ),
    "3 targets, sum": two_tree_regressor(several, 3, **base3),
    "3 targets, average": two_tree_regressor(several, 3, aggregate_function="AVERAGE", **base3),
    "3 targets, min": two_tree_regressor(several, 3, aggregate_function="MIN", **base3),
    "3 targets, max": two_tree_regressor(several, 3, aggregate_function="MAX"),
    "3 targets, softmax": two_tree_regressor(several, 3, post_transform="SOFTMAX"),
    "3 targets, softmax zero": two_tree_regressor(several, 3, post_transform="SOFTMAX_ZERO"),
    "3 targets, logistic": two_tree_regressor(several, 3, post_transform="LOGISTIC"),
}
for name, m in regressors.items():
    (scores,) = run(m, [0.0, 1.0])
    print(f"{name}: {scores.ravel().tolist()}")

# f64 inputs are compared in f64: 0.1000000016 is above the f32 threshold 0.1 as an f64 only.
m = stump_classifier(one_column, [0, 1])
for node_attr in m.graph.node[0].attribute:
    if node_attr.name == "nodes_values":
        node_attr.floats[0] = 0.1
for dtype, in_type in [(np.float32, TensorProto.FLOAT), (np.float64, TensorProto.DOUBLE)]:
    m.graph.input[0].type.tensor_type.elem_type = in_type
    label, _ = run(m, [0.1, 0.1000000016], dtype)
    print(f"threshold 0.1, {np.dtype(dtype).name} input [0.1, 0.1000000016]: labels {label.tolist()}")
