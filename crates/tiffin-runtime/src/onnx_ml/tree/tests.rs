//! Tests of the tree ensemble operators: the scikit-learn fixtures against their onnxruntime
//! references, and hand-built nodes for every node mode, missing values, the binary and
//! aggregation rules, and the malformed attributes that must be refused at load time.
//!
//! The expected outputs of the hand-built models that exercise onnxruntime's quirks were
//! produced by onnxruntime 1.32 with `ort_cases.py` (beside this file); the others follow from
//! the ONNX definition of each mode.

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;

use super::spec::{self, Spec, TreeError, Which};
use super::{TreeEnsemble, tensor_values};
use crate::testutil::*;

// ---------------------------------------------------------------------------------------------
// The scikit-learn fixtures.

/// Runs a fixture at batch 1, 7 and 64 and compares every output with onnxruntime's: labels
/// exactly, floats within [`ORT`].
fn matches_onnxruntime(name: &str, outputs: &[&str]) {
    let r = reference(name);
    for rows in [1, 7, 64] {
        let input = head_rows(&r.inputs["X"], rows);
        let got = run_fixture(name, &[input]);
        assert_eq!(got.len(), outputs.len(), "{name}: number of outputs");
        for (g, output) in got.iter().zip(outputs) {
            let want = head_rows(&r.outputs[*output], rows);
            assert_close(&format!("{name} {output} ({rows} rows)"), g, &want, &ORT);
        }
    }
}

#[test]
fn binary_gradient_boosting_matches_onnxruntime() {
    matches_onnxruntime("breast_cancer_gbt", &["label", "probabilities"]);
}

#[test]
fn binary_random_forest_matches_onnxruntime() {
    matches_onnxruntime("breast_cancer_rf", &["label", "probabilities"]);
}

#[test]
fn multiclass_gradient_boosting_matches_onnxruntime() {
    matches_onnxruntime("iris_gbt", &["label", "probabilities"]);
}

#[test]
fn multiclass_random_forest_matches_onnxruntime() {
    matches_onnxruntime("iris_rf", &["label", "probabilities"]);
}

#[test]
fn forest_of_300_trees_matches_onnxruntime() {
    matches_onnxruntime("forest300", &["label", "probabilities"]);
}

#[test]
fn gradient_boosting_regressor_matches_onnxruntime() {
    matches_onnxruntime("diabetes_tree_reg", &["variable"]);
}

/// The model is typed and optimized once with a symbolic batch, then run at several sizes,
/// including an empty batch.
#[test]
fn a_symbolic_batch_plan_runs_at_any_size() {
    let mut onnx = tract_onnx::onnx();
    crate::onnx_ml::register(&mut onnx.op_register);
    let mut model = onnx
        .model_for_path(fixture("breast_cancer_rf").join("model.onnx"))
        .unwrap();
    let batch = model.sym("batch");
    model
        .set_input_fact(
            0,
            InferenceFact::dt_shape(f32::datum_type(), tvec!(batch.to_dim(), 30.to_dim())),
        )
        .unwrap();
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    let r = reference("breast_cancer_rf");
    for rows in [0, 1, 7, 64] {
        let x = crate::tract_io::to_tract(&head_rows(&r.inputs["X"], rows)).unwrap();
        let out = plan.run(tvec!(x.into_tvalue())).unwrap();
        let got: Vec<crate::Tensor> = out
            .iter()
            .map(|v| crate::tract_io::from_tract(v).unwrap())
            .collect();
        assert_close(
            "label",
            &got[0],
            &head_rows(&r.outputs["label"], rows),
            &ORT,
        );
        assert_close(
            "probabilities",
            &got[1],
            &head_rows(&r.outputs["probabilities"], rows),
            &ORT,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Building nodes by hand.

fn attr(name: &str, t: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: t as i32,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

fn floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

fn strings(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: v.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: v,
        ..attr(name, AttributeType::Int)
    }
}

fn doubles(name: &str, v: &[f64]) -> AttributeProto {
    let t = TensorProto {
        dims: vec![v.len() as i64],
        data_type: DataType::Double as i32,
        double_data: v.to_vec(),
        ..Default::default()
    };
    AttributeProto {
        t: Some(t),
        ..attr(name, AttributeType::Tensor)
    }
}

/// A node under construction; `with` replaces an attribute of the same name.
#[derive(Clone)]
struct Node(NodeProto, Which);

impl Node {
    fn new(which: Which) -> Node {
        let node = NodeProto {
            op_type: which.op_name().into(),
            domain: "ai.onnx.ml".into(),
            input: vec!["X".into()],
            ..Default::default()
        };
        Node(node, which)
    }

    fn with(mut self, a: AttributeProto) -> Node {
        self.0.attribute.retain(|b| b.name != a.name);
        self.0.attribute.push(a);
        self
    }

    fn without(mut self, name: &str) -> Node {
        self.0.attribute.retain(|b| b.name != name);
        self
    }

    fn parse(&self) -> Result<Spec, TreeError> {
        let load = |t: &TensorProto| -> Result<Vec<f64>, String> {
            let t = tract_onnx::tensor::load_tensor(&*tract_onnx::onnx().provider, t, None)
                .map_err(|e| e.to_string())?;
            tensor_values(&t)
        };
        spec::parse(&self.0, self.1, &load)
    }

    /// Types the node with a symbolic batch and `width` features, optimizes it and runs it.
    fn run(&self, x: Tensor) -> TractResult<TVec<TValue>> {
        let spec = self.parse()?;
        let mut model = InferenceModel::default();
        let batch = model.sym("N");
        let fact =
            InferenceFact::dt_shape(x.datum_type(), tvec!(batch.to_dim(), x.shape()[1].to_dim()));
        let source = model.add_source("X", fact)?;
        let op = tract_onnx::tract_hir::internal::expand(TreeEnsemble {
            spec: std::sync::Arc::new(spec),
        });
        let outputs = model.wire_node("trees", op, &[source])?;
        model.select_output_outlets(&outputs)?;
        model
            .into_optimized()?
            .into_runnable()?
            .run(tvec!(x.into_tvalue()))
    }

    fn load_error(&self) -> String {
        match self.parse() {
            Ok(_) => panic!("the node loaded, but should have been refused"),
            Err(e) => e.to_string(),
        }
    }
}

/// One feature per row.
fn column(xs: &[f32]) -> Tensor {
    tract_ndarray::Array2::from_shape_vec((xs.len(), 1), xs.to_vec())
        .unwrap()
        .into_tensor()
}

fn f32s(v: &TValue) -> Vec<f32> {
    v.to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn i64s(v: &TValue) -> Vec<i64> {
    v.to_plain_array_view::<i64>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn assert_all_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            ORT.allows(f64::from(*w), f64::from(*g)),
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

/// A regressor whose tree `k` compares feature 0 by `trees[k] = (mode, threshold, nan goes
/// true)` and yields `2^k` when the comparison holds, 0 otherwise: the sum tells which trees
/// went which way.
fn regressor_forest(trees: &[(&str, f32, i64)]) -> Node {
    let mut a: [Vec<i64>; 6] = Default::default();
    let (mut values, mut modes, mut weights) = (vec![], vec![], vec![]);
    let [tree_ids, node_ids, true_ids, false_ids, tracks, leaf_trees] = &mut a;
    let mut leaf_nodes = vec![];
    for (k, &(mode, threshold, track)) in trees.iter().enumerate() {
        let k = k as i64;
        tree_ids.extend([k, k, k]);
        node_ids.extend([0, 1, 2]);
        true_ids.extend([1, 0, 0]);
        false_ids.extend([2, 0, 0]);
        tracks.extend([track, 0, 0]);
        values.extend([threshold, 0.0, 0.0]);
        modes.extend([mode, "LEAF", "LEAF"]);
        leaf_trees.extend([k, k]);
        leaf_nodes.extend([1, 2]);
        weights.extend([(1u32 << k) as f32, 0.0]);
    }
    let n = tree_ids.len();
    Node::new(Which::Regressor)
        .with(ints("nodes_treeids", tree_ids))
        .with(ints("nodes_nodeids", node_ids))
        .with(ints("nodes_featureids", &vec![0; n]))
        .with(floats("nodes_values", &values))
        .with(strings("nodes_modes", &modes))
        .with(ints("nodes_truenodeids", true_ids))
        .with(ints("nodes_falsenodeids", false_ids))
        .with(ints("nodes_missing_value_tracks_true", tracks))
        .with(ints("target_treeids", leaf_trees))
        .with(ints("target_nodeids", &leaf_nodes))
        .with(ints("target_ids", &vec![0; leaf_nodes.len()]))
        .with(floats("target_weights", &weights))
        .with(int("n_targets", 1))
}

// ---------------------------------------------------------------------------------------------
// Node modes and missing values.

/// Whether each mode's comparison holds for x = 0, 0.5, 1 and NaN against the threshold 0.5,
/// as the ONNX definition says (a NaN fails every comparison but "not equal").
const MODES: [(&str, [bool; 4]); 6] = [
    ("BRANCH_LEQ", [true, true, false, false]),
    ("BRANCH_LT", [true, false, false, false]),
    ("BRANCH_GTE", [false, true, true, false]),
    ("BRANCH_GT", [false, false, true, false]),
    ("BRANCH_EQ", [false, true, false, false]),
    ("BRANCH_NEQ", [true, false, true, true]),
];

const XS: [f32; 4] = [0.0, 0.5, 1.0, f32::NAN];

/// `XS` repeated: 4 rows walk one row over several trees, 12 rows one tree over several rows.
fn xs(repeat: usize) -> Vec<f32> {
    XS.repeat(repeat)
}

#[test]
fn every_node_mode_compares_as_defined() {
    for (mode, holds) in MODES {
        for track in [0, 1] {
            // With nodes_missing_value_tracks_true a NaN goes to the true branch.
            let want: Vec<f32> = (0..4)
                .map(|i| {
                    if holds[i] || (i == 3 && track == 1) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            for repeat in [1, 3] {
                let out = regressor_forest(&[(mode, 0.5, track)])
                    .run(column(&xs(repeat)))
                    .unwrap();
                let what =
                    format!("{mode}, missing value tracks true = {track}, {repeat} x 4 rows");
                assert_eq!(f32s(&out[0]), want.repeat(repeat), "{what}");
            }
        }
    }
}

#[test]
fn a_forest_mixing_every_mode_compares_each_node_by_its_own_mode() {
    let trees: Vec<(&str, f32, i64)> = MODES
        .iter()
        .flat_map(|&(mode, _)| [(mode, 0.5, 0), (mode, 0.5, 1)])
        .collect();
    let out = regressor_forest(&trees).run(column(&xs(3))).unwrap();
    let want: Vec<f32> = (0..12)
        .map(|i| i % 4)
        .map(|i| {
            let mut sum = 0u32;
            for (m, (_, holds)) in MODES.iter().enumerate() {
                for track in 0..2 {
                    if holds[i] || (i == 3 && track == 1) {
                        sum += 1 << (2 * m + track);
                    }
                }
            }
            sum as f32
        })
        .collect();
    assert_eq!(f32s(&out[0]), want);
}

#[test]
fn f64_inputs_are_compared_in_f64_and_integers_as_f32() {
    // 0.1000000016 rounds to the f32 threshold 0.1f32 but is above it as an f64, so the
    // branch differs between the two input types, as in onnxruntime.
    let node = regressor_forest(&[("BRANCH_LEQ", 0.1, 0)]);
    let x64 = tract_ndarray::arr2(&[[0.1f64], [0.1000000016]]).into_tensor();
    assert_eq!(f32s(&node.run(x64).unwrap()[0]), [1.0, 0.0]);
    assert_eq!(
        f32s(&node.run(column(&[0.1, 0.1000000016f64 as f32])).unwrap()[0]),
        [1.0, 1.0]
    );
    let node = regressor_forest(&[("BRANCH_LEQ", 0.5, 0)]);
    for x in [
        tract_ndarray::arr2(&[[0i64], [1]]).into_tensor(),
        tract_ndarray::arr2(&[[0i32], [1]]).into_tensor(),
    ] {
        assert_eq!(f32s(&node.run(x).unwrap()[0]), [1.0, 0.0]);
    }
}

#[test]
fn opset_3_tensor_attributes_carry_double_thresholds_and_weights() {
    let node = regressor_forest(&[("BRANCH_LEQ", 0.1, 0)])
        .without("nodes_values")
        .with(doubles("nodes_values_as_tensor", &[0.1, 0.0, 0.0]))
        .without("target_weights")
        .with(doubles("target_weights_as_tensor", &[0.25, 0.5]))
        .with(doubles("base_values_as_tensor", &[100.0]));
    let x64 = tract_ndarray::arr2(&[[0.1f64], [0.1000000016], [0.2]]).into_tensor();
    assert_eq!(f32s(&node.run(x64).unwrap()[0]), [100.25, 100.5, 100.5]);
}

/// A chain of 3000 branches: deep trees neither overflow a stack nor stop early.
#[test]
fn a_very_deep_tree_is_walked_to_its_leaf() {
    let depth = 3000i64;
    let (mut tree_ids, mut node_ids, mut modes, mut values, mut true_ids, mut false_ids) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    // Branch k: x <= k goes to leaf depth + 1 + k, otherwise to branch k + 1; branch `depth`
    // is a leaf.
    for k in 0..=2 * depth {
        tree_ids.push(0);
        node_ids.push(k);
        let branch = k < depth;
        modes.push(if branch { "BRANCH_LEQ" } else { "LEAF" });
        values.push(if branch { k as f32 } else { 0.0 });
        true_ids.push(if branch { depth + 1 + k } else { 0 });
        false_ids.push(if branch { k + 1 } else { 0 });
    }
    let leaves: Vec<i64> = (depth..=2 * depth).collect();
    let node = Node::new(Which::Regressor)
        .with(ints("nodes_treeids", &tree_ids))
        .with(ints("nodes_nodeids", &node_ids))
        .with(ints("nodes_featureids", &vec![0; tree_ids.len()]))
        .with(floats("nodes_values", &values))
        .with(strings("nodes_modes", &modes))
        .with(ints("nodes_truenodeids", &true_ids))
        .with(ints("nodes_falsenodeids", &false_ids))
        .with(ints("target_treeids", &vec![0; leaves.len()]))
        .with(ints("target_nodeids", &leaves))
        .with(ints("target_ids", &vec![0; leaves.len()]))
        .with(floats(
            "target_weights",
            &leaves.iter().map(|&l| l as f32).collect::<Vec<_>>(),
        ))
        .with(int("n_targets", 1));
    let spec = node.parse().unwrap();
    assert_eq!(spec.max_depth, depth as u32);
    // Too deep to pad to a complete tree: this walks the general layout.
    assert!(!super::forest::Forest::<f32>::new(&spec).is_complete());
    let out = node.run(column(&[-1.0, 10.5, 2999.5])).unwrap();
    assert_eq!(
        f32s(&out[0]),
        [(depth + 1) as f32, (depth + 1 + 11) as f32, depth as f32]
    );
}

// ---------------------------------------------------------------------------------------------
// Classifiers: labels and onnxruntime's binary rules.

/// A one-tree classifier: x <= 0.5 reaches leaf 1, otherwise leaf 2; `votes` are
/// (leaf, class id, weight).
fn stump_classifier(votes: &[(i64, i64, f32)], labels: &[i64]) -> Node {
    Node::new(Which::Classifier)
        .with(ints("nodes_treeids", &[0, 0, 0]))
        .with(ints("nodes_nodeids", &[0, 1, 2]))
        .with(ints("nodes_featureids", &[0, 0, 0]))
        .with(floats("nodes_values", &[0.5, 0.0, 0.0]))
        .with(strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]))
        .with(ints("nodes_truenodeids", &[1, 0, 0]))
        .with(ints("nodes_falsenodeids", &[2, 0, 0]))
        .with(ints("class_treeids", &vec![0; votes.len()]))
        .with(ints(
            "class_nodeids",
            &votes.iter().map(|v| v.0).collect::<Vec<_>>(),
        ))
        .with(ints(
            "class_ids",
            &votes.iter().map(|v| v.1).collect::<Vec<_>>(),
        ))
        .with(floats(
            "class_weights",
            &votes.iter().map(|v| v.2).collect::<Vec<_>>(),
        ))
        .with(ints("classlabels_int64s", labels))
}

/// Runs a classifier on x = 0 (leaf 1) and x = 1 (leaf 2).
fn classify(node: &Node) -> (Vec<i64>, Vec<f32>) {
    let out = node.run(column(&[0.0, 1.0])).unwrap();
    (i64s(&out[0]), f32s(&out[1]))
}

/// Each case: the node, then onnxruntime 1.32's labels and scores for x = 0 and x = 1.
#[test]
fn binary_classifiers_follow_onnxruntime() {
    let one_column = [(1, 0, 0.3), (2, 0, 0.7)];
    let gbt = [(1, 0, -0.3), (2, 0, 0.7)];
    let two_columns = [(1, 0, 0.7), (2, 1, 0.3), (1, 0, 0.2), (2, 1, 0.8)];
    let cases: Vec<(&str, Node, [i64; 2], [f32; 4])> = vec![
        // A random forest: one column of probabilities for class 1, no base values.
        (
            "random forest",
            stump_classifier(&one_column, &[0, 1]),
            [0, 1],
            [0.7, 0.3, 0.3, 0.7],
        ),
        // Gradient boosting: one column of margins, a base value and LOGISTIC.
        (
            "gradient boosting",
            stump_classifier(&gbt, &[0, 1])
                .with(floats("base_values", &[0.1]))
                .with(string("post_transform", "LOGISTIC")),
            [0, 1],
            [0.549834, 0.450166, 0.3100255, 0.6899745],
        ),
        // The same with labels that are not 0 and 1: the binary case picks from the labels.
        (
            "gradient boosting, labels 5 and 7",
            stump_classifier(&gbt, &[5, 7])
                .with(floats("base_values", &[0.1]))
                .with(string("post_transform", "LOGISTIC")),
            [5, 7],
            [0.549834, 0.450166, 0.3100255, 0.6899745],
        ),
        // The weights are for class 1: the margin becomes the second column.
        (
            "class 1 only",
            stump_classifier(&[(1, 1, 0.3), (2, 1, 0.7)], &[0, 1]),
            [0, 1],
            [0.0, 0.3, 0.0, 0.7],
        ),
        // ... and with two base values onnxruntime keeps only base_values[1].
        (
            "class 1 only, two base values",
            stump_classifier(&[(1, 1, 0.3), (2, 1, 0.7)], &[0, 1])
                .with(floats("base_values", &[0.1, 0.2])),
            [0, 0],
            [0.0, 0.2, 0.0, 0.2],
        ),
        // Class 0 only with two base values: "binary as multiclass", class 1 reads 0.
        (
            "class 0 only, two base values",
            stump_classifier(&one_column, &[0, 1]).with(floats("base_values", &[0.1, 0.2])),
            [0, 1],
            [0.4, 0.0, 0.8, 0.0],
        ),
        // Both classes voted for: not onnxruntime's binary case, so the label is the literal
        // 1 or 0, not a class label.
        (
            "two columns, labels 5 and 7",
            stump_classifier(&two_columns, &[5, 7]),
            [1, 1],
            [-0.9, 0.9, 0.0, 1.1],
        ),
        // One margin column under SOFTMAX is written as (-margin, margin), untransformed.
        (
            "one column, softmax",
            stump_classifier(&gbt, &[0, 1]).with(string("post_transform", "SOFTMAX")),
            [0, 1],
            [0.3, -0.3, -0.7, 0.7],
        ),
        // One base value with both classes: class 0 alone leaves the second column unwritten
        // by onnxruntime (tiffin writes 0).
        (
            "two columns, one base value",
            stump_classifier(
                &[(1, 0, 0.7), (2, 1, -0.3), (1, 0, 0.2), (2, 1, 0.8)],
                &[0, 1],
            )
            .with(floats("base_values", &[0.5])),
            [1, 1],
            [1.4, 0.0, 0.0, 0.5],
        ),
        // PROBIT on one column: onnxruntime writes only the first column.
        (
            "one column, probit",
            stump_classifier(&one_column, &[0, 1]).with(string("post_transform", "PROBIT")),
            [0, 1],
            [-0.5244459, 0.0, 0.5244459, 0.0],
        ),
    ];
    for (what, node, labels, scores) in cases {
        let (got_labels, got_scores) = classify(&node);
        assert_eq!(got_labels, labels, "{what}: labels");
        assert_all_close(what, &got_scores, &scores);
    }
}

#[test]
fn string_labels_are_returned_as_strings() {
    let node = stump_classifier(
        &[(1, 0, 0.7), (2, 1, 0.3), (1, 0, 0.2), (2, 1, 0.8)],
        &[0, 1],
    )
    .without("classlabels_int64s")
    .with(strings("classlabels_strings", &["no", "yes"]));
    let out = node.run(column(&[0.0, 1.0])).unwrap();
    let labels: Vec<String> = out[0]
        .to_plain_array_view::<String>()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    assert_eq!(labels, ["yes", "yes"]);

    let three = stump_classifier(&[(1, 1, 0.5), (1, 2, 0.5), (2, 2, 1.0)], &[0, 1, 2])
        .without("classlabels_int64s")
        .with(strings("classlabels_strings", &["a", "b", "c"]));
    let out = three.run(column(&[0.0, 1.0])).unwrap();
    let labels: Vec<String> = out[0]
        .to_plain_array_view::<String>()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    // A tie goes to the first class; a class no leaf voted for scores 0.
    assert_eq!(labels, ["b", "c"]);
    assert_eq!(f32s(&out[1]), [0.0, 0.5, 0.5, 0.0, 0.0, 1.0]);
}

#[test]
fn multiclass_base_values_and_transforms() {
    let votes = [(1, 1, 0.5), (1, 2, 0.5), (2, 2, 1.0)];
    let with_base =
        stump_classifier(&votes, &[10, 20, 30]).with(floats("base_values", &[1.0, 0.0, 0.0]));
    let (labels, scores) = classify(&with_base);
    // A base value gives class 0 a score even where no leaf voted for it.
    assert_eq!(labels, [10, 10]);
    assert_eq!(scores, [1.0, 0.5, 0.5, 1.0, 0.0, 1.0]);

    let softmax = stump_classifier(&votes, &[10, 20, 30]).with(string("post_transform", "SOFTMAX"));
    let (labels, scores) = classify(&softmax);
    assert_eq!(labels, [20, 30]);
    let (e0, e5, e1) = (1.0f32, 0.5f32.exp(), 1.0f32.exp());
    let want = [
        e0 / (e0 + 2.0 * e5),
        e5 / (e0 + 2.0 * e5),
        e5 / (e0 + 2.0 * e5),
        1.0 / (2.0 + e1),
        1.0 / (2.0 + e1),
        e1 / (2.0 + e1),
    ];
    assert_all_close("softmax", &scores, &want);

    // SOFTMAX_ZERO leaves the zero scores out.
    let zero =
        stump_classifier(&votes, &[10, 20, 30]).with(string("post_transform", "SOFTMAX_ZERO"));
    let (_, scores) = classify(&zero);
    assert_all_close("softmax zero", &scores, &[0.0, 0.5, 0.5, 0.0, 0.0, 1.0]);

    let logistic =
        stump_classifier(&votes, &[10, 20, 30]).with(string("post_transform", "LOGISTIC"));
    let (_, scores) = classify(&logistic);
    let l = |v: f32| 1.0 / (1.0 + (-v).exp());
    assert_all_close(
        "logistic",
        &scores,
        &[l(0.0), l(0.5), l(0.5), l(0.0), l(0.0), l(1.0)],
    );
}

// ---------------------------------------------------------------------------------------------
// Regressors: aggregation, base values, several targets.

/// Two trees: x <= 0.5 reaches leaf 1, otherwise leaf 2. `votes` are (tree, leaf, target,
/// weight).
fn two_tree_regressor(votes: &[(i64, i64, i64, f32)], n_targets: i64) -> Node {
    regressor_forest(&[("BRANCH_LEQ", 0.5, 0), ("BRANCH_LEQ", 0.5, 0)])
        .with(ints(
            "target_treeids",
            &votes.iter().map(|v| v.0).collect::<Vec<_>>(),
        ))
        .with(ints(
            "target_nodeids",
            &votes.iter().map(|v| v.1).collect::<Vec<_>>(),
        ))
        .with(ints(
            "target_ids",
            &votes.iter().map(|v| v.2).collect::<Vec<_>>(),
        ))
        .with(floats(
            "target_weights",
            &votes.iter().map(|v| v.3).collect::<Vec<_>>(),
        ))
        .with(int("n_targets", n_targets))
}

fn regress(node: &Node) -> Vec<f32> {
    f32s(&node.run(column(&[0.0, 1.0])).unwrap()[0])
}

#[test]
fn single_target_aggregates_follow_onnxruntime() {
    let votes = [
        (0, 1, 0, 1.0),
        (0, 2, 0, 2.0),
        (1, 1, 0, 10.0),
        (1, 2, 0, 20.0),
    ];
    let node = || two_tree_regressor(&votes, 1);
    let agg = |a: &str| node().with(string("aggregate_function", a));
    assert_eq!(regress(&node()), [11.0, 22.0]);
    assert_eq!(
        regress(&agg("AVERAGE").with(floats("base_values", &[100.0]))),
        [105.5, 111.0]
    );
    assert_eq!(
        regress(&agg("MIN").with(floats("base_values", &[100.0]))),
        [101.0, 102.0]
    );
    assert_eq!(regress(&agg("MAX")), [10.0, 20.0]);
    // With one target onnxruntime applies PROBIT only and ignores the other transforms.
    assert_eq!(
        regress(&node().with(string("post_transform", "LOGISTIC"))),
        [11.0, 22.0]
    );
    let probit = regress(
        &node()
            .with(string("post_transform", "PROBIT"))
            .with(floats("base_values", &[-10.8])),
    );
    assert!(
        (probit[0] - -0.8417567).abs() < 1e-5 && probit[1].is_nan(),
        "{probit:?}"
    );
    // With one target onnxruntime counts only each leaf's first weight.
    let doubled = two_tree_regressor(
        &[
            (0, 1, 0, 1.0),
            (0, 1, 0, 5.0),
            (0, 2, 0, 2.0),
            (1, 1, 0, 10.0),
            (1, 2, 0, 20.0),
        ],
        1,
    );
    assert_eq!(regress(&doubled), [11.0, 22.0]);
}

#[test]
fn several_targets_follow_onnxruntime() {
    let votes = [
        (0, 1, 0, 1.0),
        (0, 2, 1, 2.0),
        (1, 1, 0, 10.0),
        (1, 2, 1, 20.0),
    ];
    let node = || two_tree_regressor(&votes, 3).with(floats("base_values", &[0.5, 0.25, 7.0]));
    let agg = |a: &str| node().with(string("aggregate_function", a));
    // A target no reached leaf voted for reads 0, base value or not.
    assert_eq!(regress(&node()), [11.5, 0.0, 0.0, 0.0, 22.25, 0.0]);
    assert_eq!(regress(&agg("AVERAGE")), [6.0, 0.0, 0.0, 0.0, 11.25, 0.0]);
    assert_eq!(regress(&agg("MIN")), [1.5, 0.0, 0.0, 0.0, 2.25, 0.0]);
    assert_eq!(
        regress(&two_tree_regressor(&votes, 3).with(string("aggregate_function", "MAX"))),
        [10.0, 0.0, 0.0, 0.0, 20.0, 0.0]
    );
    let softmax = regress(&two_tree_regressor(&votes, 3).with(string("post_transform", "SOFTMAX")));
    assert_all_close(
        "softmax",
        &softmax,
        &[
            0.9999666,
            1.6701144e-05,
            1.6701144e-05,
            2.789468e-10,
            1.0,
            2.789468e-10,
        ],
    );
    let zero =
        regress(&two_tree_regressor(&votes, 3).with(string("post_transform", "SOFTMAX_ZERO")));
    assert_all_close("softmax zero", &zero, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let logistic =
        regress(&two_tree_regressor(&votes, 3).with(string("post_transform", "LOGISTIC")));
    assert_all_close("logistic", &logistic, &[0.9999833, 0.5, 0.5, 0.5, 1.0, 0.5]);
}

// ---------------------------------------------------------------------------------------------
// Malformed attributes are refused at load time, naming the attribute.

fn assert_refused(what: &str, node: Node, attr: &str) {
    let message = node.load_error();
    assert!(
        message.contains(attr),
        "{what}: the error should name `{attr}`: {message}"
    );
}

#[test]
fn malformed_attributes_are_refused_at_load_time() {
    let good = || stump_classifier(&[(1, 0, 0.3), (2, 0, 0.7)], &[0, 1]);
    good().parse().unwrap();
    let cases: Vec<(&str, Node, &str)> = vec![
        (
            "short nodes_values",
            good().with(floats("nodes_values", &[0.5, 0.0])),
            "nodes_values",
        ),
        (
            "long nodes_modes",
            good().with(strings(
                "nodes_modes",
                &["BRANCH_LEQ", "LEAF", "LEAF", "LEAF"],
            )),
            "nodes_modes",
        ),
        (
            "short class_weights",
            good().with(floats("class_weights", &[0.3])),
            "class_weights",
        ),
        (
            "short missing-value flags",
            good().with(ints("nodes_missing_value_tracks_true", &[0, 0])),
            "nodes_missing_value_tracks_true",
        ),
        (
            "missing-value flag 2",
            good().with(ints("nodes_missing_value_tracks_true", &[2, 0, 0])),
            "nodes_missing_value_tracks_true",
        ),
        (
            "missing nodes_modes",
            good().without("nodes_modes"),
            "nodes_modes",
        ),
        (
            "missing thresholds",
            good().without("nodes_values"),
            "nodes_values",
        ),
        (
            "thresholds twice",
            good().with(doubles("nodes_values_as_tensor", &[0.5, 0.0, 0.0])),
            "nodes_values_as_tensor",
        ),
        (
            "true child not in the tree",
            good().with(ints("nodes_truenodeids", &[7, 0, 0])),
            "nodes_truenodeids",
        ),
        (
            "false child not in the tree",
            good().with(ints("nodes_falsenodeids", &[-1, 0, 0])),
            "nodes_falsenodeids",
        ),
        (
            "negative feature",
            good().with(ints("nodes_featureids", &[-1, 0, 0])),
            "nodes_featureids",
        ),
        (
            "class id out of range",
            good().with(ints("class_ids", &[0, 2])),
            "class_ids",
        ),
        (
            "negative class id",
            good().with(ints("class_ids", &[-1, 0])),
            "class_ids",
        ),
        (
            "weight on a missing node",
            good().with(ints("class_nodeids", &[1, 9])),
            "class_nodeids",
        ),
        (
            "leaf without weight",
            good().with(ints("class_nodeids", &[1, 1])),
            "class_nodeids",
        ),
        (
            "duplicate node id",
            good().with(ints("nodes_nodeids", &[0, 1, 1])),
            "nodes_nodeids",
        ),
        (
            "unknown mode",
            good().with(strings("nodes_modes", &["BRANCH_MEMBER", "LEAF", "LEAF"])),
            "nodes_modes",
        ),
        (
            "unknown post transform",
            good().with(string("post_transform", "SIGMOID")),
            "post_transform",
        ),
        (
            "three base values for two classes",
            good().with(floats("base_values", &[0.0, 0.0, 0.0])),
            "base_values",
        ),
        (
            "no class labels",
            good().without("classlabels_int64s"),
            "classlabels_int64s",
        ),
        (
            "one class label",
            good().with(ints("classlabels_int64s", &[0])),
            "classlabels_int64s",
        ),
        (
            "both kinds of labels",
            good().with(strings("classlabels_strings", &["a", "b"])),
            "classlabels_strings",
        ),
        (
            "labels of the wrong type",
            good().with(floats("classlabels_int64s", &[0.0, 1.0])),
            "classlabels_int64s",
        ),
        (
            "a node pointing at itself",
            good().with(ints("nodes_truenodeids", &[0, 0, 0])),
            "nodes_truenodeids",
        ),
        (
            "a cycle",
            good()
                .with(strings(
                    "nodes_modes",
                    &["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"],
                ))
                .with(ints("nodes_truenodeids", &[1, 0, 0]))
                .with(ints("nodes_falsenodeids", &[2, 2, 0]))
                .with(ints("class_nodeids", &[2, 2])),
            "nodes_truenodeids",
        ),
    ];
    for (what, node, attr) in cases {
        assert_refused(what, node, attr);
    }

    let regressor = || regressor_forest(&[("BRANCH_LEQ", 0.5, 0)]);
    regressor().parse().unwrap();
    assert_refused(
        "no n_targets",
        regressor().without("n_targets"),
        "n_targets",
    );
    assert_refused(
        "target id beyond n_targets",
        regressor().with(ints("target_ids", &[0, 1])),
        "target_ids",
    );
    assert_refused(
        "unknown aggregate",
        regressor().with(string("aggregate_function", "MEDIAN")),
        "aggregate_function",
    );
    assert_refused(
        "two base values for one target",
        regressor().with(floats("base_values", &[1.0, 2.0])),
        "base_values",
    );
    let mut other_domain = regressor();
    other_domain.0.domain = "com.example".into();
    assert_refused("another domain", other_domain, "ai.onnx.ml");
}

#[test]
fn a_feature_beyond_the_input_width_is_refused_when_typing() {
    let node =
        regressor_forest(&[("BRANCH_LEQ", 0.5, 0)]).with(ints("nodes_featureids", &[3, 0, 0]));
    node.parse().unwrap();
    let error = format!("{:#}", node.run(column(&[0.0])).unwrap_err());
    assert!(
        error.contains("nodes_featureids") && error.contains("feature 3"),
        "{error}"
    );
    let wide = tract_ndarray::Array2::<f32>::zeros((2, 4)).into_tensor();
    assert_eq!(f32s(&node.run(wide).unwrap()[0]), [1.0, 1.0]);
}

// ---------------------------------------------------------------------------------------------
// The two layouts and the two lane shapes.

/// The spec of a fixture's tree ensemble node.
fn fixture_spec(name: &str) -> Spec {
    let proto = tract_onnx::onnx()
        .proto_model_for_path(fixture(name).join("model.onnx"))
        .unwrap();
    let graph = proto.graph.unwrap();
    let node = graph
        .node
        .iter()
        .find(|n| n.op_type.starts_with("TreeEnsemble"))
        .unwrap();
    let which = if node.op_type.ends_with("Classifier") {
        Which::Classifier
    } else {
        Which::Regressor
    };
    spec::parse(node, which, &|_| {
        Err("the fixtures have no tensor attributes".into())
    })
    .unwrap()
}

/// Evaluates `x` (rows of `width`) at every batch size of interest with the forest's own layout
/// and with the general one: the outputs must be identical, bit for bit.
fn layouts_agree<T: super::post::Value>(
    what: &str,
    spec: &Spec,
    x: &[T],
    width: usize,
    complete: bool,
) {
    use super::forest::Forest;
    let chosen = Forest::<T>::new(spec);
    assert_eq!(chosen.is_complete(), complete, "{what}: layout");
    let general = Forest::<T>::general(spec);
    let available = x.len() / width;
    // Below, at and above the lane count, several lane groups, and across row blocks.
    for rows in (0..=20).chain([63, 64, 129, 300]) {
        // Repeat the rows as needed to make up the batch.
        let batch: Vec<T> = (0..rows)
            .flat_map(|r| &x[(r % available) * width..][..width])
            .copied()
            .collect();
        let a = chosen.eval(spec, &batch, rows, width);
        let b = general.eval(spec, &batch, rows, width);
        assert_eq!(a.labels, b.labels, "{what}, {rows} rows: labels");
        let same = a
            .scores
            .iter()
            .zip(&b.scores)
            .all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(
            same && a.scores.len() == b.scores.len(),
            "{what}, {rows} rows: scores differ"
        );
    }
}

#[test]
fn both_layouts_give_identical_outputs_on_the_fixtures() {
    for name in [
        "breast_cancer_gbt",
        "breast_cancer_rf",
        "iris_gbt",
        "iris_rf",
        "forest300",
        "diabetes_tree_reg",
    ] {
        let r = reference(name);
        let crate::TensorData::F32(x) = r.inputs["X"].data() else {
            panic!("{name}: X is not f32")
        };
        let (spec, width) = (fixture_spec(name), r.inputs["X"].shape()[1]);
        layouts_agree(name, &spec, x, width, true);
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        layouts_agree(&format!("{name} (f64)"), &spec, &x64, width, true);
    }
}

#[test]
fn both_layouts_give_identical_outputs_on_mixed_modes_and_nans() {
    let trees: Vec<(&str, f32, i64)> = MODES
        .iter()
        .flat_map(|&(mode, _)| [(mode, 0.5, 0), (mode, 0.5, 1)])
        .collect();
    layouts_agree(
        "mixed modes",
        &regressor_forest(&trees).parse().unwrap(),
        &XS,
        1,
        true,
    );
}
