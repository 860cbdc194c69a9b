//! Tests of the preprocessing operators. Every operator fixture of `fixtures/ops/` and every
//! scikit-learn fixture that uses these operators must give onnxruntime's outputs at batch 1, 7
//! and 64, both through plans fixed to each size and through one plan with a symbolic batch.
//! Malformed attributes must be refused when the model loads, naming the attribute.

use std::collections::HashMap;

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{self, AttributeProto, NodeProto};
// The glob brings tract's `Tensor` too; the explicit import of tiffin's below takes precedence.
use tract_onnx::prelude::*;

use crate::testutil::*;
use crate::{Tensor, TensorData};

/// The batch sizes every fixture is run at.
const BATCHES: [usize; 3] = [1, 7, 64];

/// Rows in every reference.
const REFERENCE_ROWS: usize = 64;

fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    crate::onnx_ml::register(&mut onnx.op_register);
    onnx
}

/// The graph's input names (initializers left out) and output names, in graph order.
fn graph_io(name: &str) -> (Vec<String>, Vec<String>) {
    let proto = onnx()
        .proto_model_for_path(fixture(name).join("model.onnx"))
        .unwrap();
    let graph = proto.graph.unwrap();
    let inits: Vec<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !inits.contains(&n.as_str()));
    (
        inputs.collect(),
        graph.output.iter().map(|o| o.name.clone()).collect(),
    )
}

/// The first `n` rows of a reference tensor: its outer axis, or its columns for the `[1, N]`
/// outputs of ArrayFeatureExtractor on a vector.
fn head(t: &Tensor, n: usize) -> Tensor {
    if t.shape().first() == Some(&REFERENCE_ROWS) {
        return head_rows(t, n);
    }
    assert_eq!(
        t.shape(),
        [1, REFERENCE_ROWS],
        "a reference tensor without a batch axis"
    );
    let data = crate::dispatch_data!(t.data(), v => TensorData::from(v[..n].to_vec()));
    Tensor::new(vec![1, n], data).unwrap()
}

/// The model typed and decluttered with the inputs' outer axis as the symbol `batch`, as tiffin
/// loads models, and that symbol.
fn symbolic_model(name: &str, inputs: &[&Tensor]) -> (TypedModel, Symbol) {
    let mut model = onnx()
        .model_for_path(fixture(name).join("model.onnx"))
        .unwrap();
    let batch = model.sym("batch");
    for (ix, t) in inputs.iter().enumerate() {
        let dt = crate::tract_io::to_tract(t).unwrap().datum_type();
        let mut shape: TVec<_> = t.shape().iter().map(|d| d.to_dim()).collect();
        shape[0] = batch.to_dim();
        model
            .set_input_fact(ix, InferenceFact::dt_shape(dt, shape))
            .unwrap();
    }
    (
        model.into_typed().unwrap().into_decluttered().unwrap(),
        batch,
    )
}

fn run_plan(plan: &Arc<TypedRunnableModel>, inputs: &[Tensor]) -> Vec<Tensor> {
    let values = inputs
        .iter()
        .map(|t| crate::tract_io::to_tract(t).unwrap().into_tvalue())
        .collect();
    plan.run(values)
        .unwrap()
        .iter()
        .map(|v| crate::tract_io::from_tract(v).unwrap())
        .collect()
}

/// Runs fixture `name` at every batch size against its reference, three ways: a plan fixed to
/// that size from the start, one plan with a symbolic batch, and the symbolic model fixed to that
/// size after typing.
fn matches_onnxruntime(name: &str) {
    let r = reference(name);
    let (input_names, output_names) = graph_io(name);
    let full: Vec<&Tensor> = input_names.iter().map(|n| &r.inputs[n]).collect();
    let (typed, batch) = symbolic_model(name, &full);
    let symbolic = typed
        .clone()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    for rows in BATCHES {
        let inputs: Vec<Tensor> = full.iter().map(|t| head(t, rows)).collect();
        let subs = HashMap::from([(batch.clone(), rows.to_dim())]);
        let fixed_later = typed
            .set_symbols(&subs)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        for (how, outputs) in [
            ("fixed", run_fixture(name, &inputs)),
            ("symbolic", run_plan(&symbolic, &inputs)),
            ("fixed after typing", run_plan(&fixed_later, &inputs)),
        ] {
            assert_eq!(outputs.len(), output_names.len(), "{name}: outputs");
            for (got, output) in outputs.iter().zip(&output_names) {
                let what = format!("{name} `{output}`, {rows} rows, {how} plan");
                assert_close(&what, got, &head(&r.outputs[output], rows), &ORT);
            }
        }
    }
}

fn all_match(cases: &[&str]) {
    for case in cases {
        matches_onnxruntime(&format!("ops/{case}"));
    }
}

/// tract's NNEF framework with ONNX's operators and these.
fn nnef() -> tract_nnef::framework::Nnef {
    tract_nnef::nnef()
        .with_onnx()
        .with_registry(super::nnef_registry())
}

/// Writes fixture `name`, typed with a symbolic batch, as an NNEF archive, reads it back, and
/// runs it at every batch size against the reference.
fn survives_nnef(name: &str) {
    let r = reference(name);
    let (input_names, output_names) = graph_io(name);
    let full: Vec<&Tensor> = input_names.iter().map(|n| &r.inputs[n]).collect();
    let (typed, _) = symbolic_model(name, &full);
    let tar = nnef().write_to_tar(&typed, Vec::new()).unwrap();
    let again = nnef().model_for_read(&mut &tar[..]).unwrap();
    let plan = again.into_optimized().unwrap().into_runnable().unwrap();
    for rows in BATCHES {
        let inputs: Vec<Tensor> = full.iter().map(|t| head(t, rows)).collect();
        let outputs = run_plan(&plan, &inputs);
        for (got, output) in outputs.iter().zip(&output_names) {
            let what = format!("{name} `{output}`, {rows} rows, through NNEF");
            assert_close(&what, got, &head(&r.outputs[output], rows), &ORT);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The operator fixtures.

#[test]
fn scaler_matches_onnxruntime() {
    all_match(&["scaler", "scaler_broadcast_f64", "scaler_int64"]);
}

#[test]
fn zipmap_is_the_probability_tensor() {
    all_match(&["zipmap_int64", "zipmap_strings"]);
    // The reference stores each map's values in the attribute's label order, not the maps' own
    // (sorted) order; the identity passes the columns through in that same order.
    let labels = &reference("ops/zipmap_strings").labels["Z"];
    assert_eq!(labels, &[serde_json::json!("yes"), serde_json::json!("no")]);
}

#[test]
fn linear_classifier_matches_onnxruntime() {
    all_match(&[
        "linear_classifier_strings_softmax",
        "linear_classifier_ints_none",
        "linear_classifier_logistic",
        "linear_classifier_softmax_zero",
        "linear_classifier_probit",
        "linear_classifier_double_input",
        "linear_classifier_int64_input",
    ]);
}

#[test]
fn binary_linear_classifier_follows_onnxruntime() {
    all_match(&[
        "linear_classifier_binary_logistic",
        "linear_classifier_binary_strings",
        "linear_classifier_binary_unlabelled_softmax",
        "linear_classifier_binary_unlabelled_probit",
    ]);
}

#[test]
fn normalizer_matches_onnxruntime() {
    all_match(&[
        "normalizer_max",
        "normalizer_l1",
        "normalizer_l2",
        "normalizer_l2_int64",
    ]);
}

#[test]
fn imputer_matches_onnxruntime() {
    all_match(&["imputer_nan", "imputer_value", "imputer_int64"]);
}

#[test]
fn one_hot_encoder_matches_onnxruntime() {
    all_match(&[
        "one_hot_int64",
        "one_hot_strings",
        "one_hot_float",
        "one_hot_zeros0",
    ]);
}

#[test]
fn binarizer_matches_onnxruntime() {
    all_match(&["binarizer", "binarizer_default"]);
}

#[test]
fn array_feature_extractor_matches_onnxruntime() {
    all_match(&[
        "array_feature_extractor",
        "array_feature_extractor_strings",
        "array_feature_extractor_labels",
    ]);
}

#[test]
fn label_encoder_matches_onnxruntime() {
    all_match(&[
        "label_encoder_v1_strings_to_ints",
        "label_encoder_v1_ints_to_strings",
        "label_encoder_v2_string_int",
        "label_encoder_v2_int_string",
        "label_encoder_v2_float_string",
        "label_encoder_v3_string_float",
        "label_encoder_v3_int_int",
        "label_encoder_v4_float_int",
    ]);
}

// ---------------------------------------------------------------------------------------------
// The scikit-learn fixtures that use these operators.

#[test]
fn scaled_logistic_regression_with_zipmap_matches_onnxruntime() {
    matches_onnxruntime("breast_cancer_scaled");
}

#[test]
fn churn_model_matches_onnxruntime() {
    matches_onnxruntime("churn_model");
}

#[test]
fn iris_string_labels_and_normalizer_match_onnxruntime() {
    matches_onnxruntime("iris");
}

#[test]
fn breast_cancer_matches_onnxruntime() {
    matches_onnxruntime("breast_cancer");
}

#[test]
fn breast_cancer_mlp_matches_onnxruntime() {
    matches_onnxruntime("breast_cancer_mlp");
}

#[test]
fn every_fixture_survives_a_round_trip_through_nnef() {
    let mut cases: Vec<String> = std::fs::read_dir(fixture("ops"))
        .unwrap()
        .map(|e| format!("ops/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the operator fixtures are missing");
    let models = [
        "breast_cancer_scaled",
        "churn_model",
        "iris",
        "breast_cancer",
        "breast_cancer_mlp",
    ];
    for name in cases.iter().map(String::as_str).chain(models) {
        survives_nnef(name);
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built graphs: malformed attributes, and inputs the operators refuse.

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    }
}

fn floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
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

/// A graph input or output of element type `elem` and shape `dims` (-1: the symbol `N`).
fn value(name: &str, elem: DataType, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(if d < 0 {
                Value::DimParam("N".into())
            } else {
                Value::DimValue(d)
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A one-node ai.onnx.ml model: `op` from the input `X` to `outputs`.
fn model(
    op: &str,
    attrs: Vec<AttributeProto>,
    x: pb::ValueInfoProto,
    outputs: &[&str],
    ml_opset: i64,
) -> pb::ModelProto {
    let node = NodeProto {
        name: "node".into(),
        op_type: op.into(),
        domain: "ai.onnx.ml".into(),
        input: vec![x.name.clone()],
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    };
    let opset = |domain: &str, version| pb::OperatorSetIdProto {
        domain: domain.into(),
        version,
    };
    pb::ModelProto {
        ir_version: 9,
        opset_import: vec![opset("", 17), opset("ai.onnx.ml", ml_opset)],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: vec![node],
            input: vec![x],
            output: outputs
                .iter()
                .map(|o| pb::ValueInfoProto {
                    name: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The whole error chain of loading and typing `m`, or None when it loads and types.
fn typing_error(m: &pb::ModelProto) -> Option<String> {
    let typed = onnx().model_for_proto_model(m).and_then(|m| m.into_typed());
    typed.err().map(|e| format!("{e:#}"))
}

/// Asserts that `m` fails to load (not merely to type) with a message holding every `needle`.
fn refused_at_load(m: &pb::ModelProto, needles: &[&str]) {
    let err = match onnx().model_for_proto_model(m) {
        Ok(_) => panic!("the model loaded; expected an error about {needles:?}"),
        Err(e) => format!("{e:#}"),
    };
    for needle in needles {
        assert!(
            err.contains(needle),
            "error {err:?} does not mention {needle:?}"
        );
    }
}

fn f32_x(features: i64) -> pb::ValueInfoProto {
    value("X", DataType::Float, &[-1, features])
}

#[test]
fn malformed_scaler_attributes_are_refused_at_load() {
    let scaler = |attrs| model("Scaler", attrs, f32_x(2), &["Y"], 1);
    refused_at_load(
        &scaler(vec![floats("offset", &[1.0, 2.0])]),
        &["Scaler", "`scale`", "missing"],
    );
    refused_at_load(
        &scaler(vec![floats("scale", &[1.0, 2.0])]),
        &["`offset`", "0 values", "`scale` has 2"],
    );
    refused_at_load(
        &scaler(vec![floats("scale", &[1.0, 2.0]), floats("offset", &[1.0])]),
        &["`offset`", "1 values", "`scale` has 2"],
    );
    refused_at_load(
        &scaler(vec![ints("scale", &[1, 2]), floats("offset", &[1.0, 2.0])]),
        &["`scale`", "list of floats"],
    );
    // Three values for two features: found when typing, still naming the attribute.
    let three = scaler(vec![
        floats("scale", &[1.0, 2.0, 3.0]),
        floats("offset", &[0.0, 0.0, 0.0]),
    ]);
    let err = typing_error(&three).expect("three scales for two features");
    assert!(err.contains("Scaler"), "{err}");
}

#[test]
fn malformed_zipmap_attributes_are_refused_at_load() {
    let zipmap = |attrs| model("ZipMap", attrs, f32_x(2), &["Z"], 1);
    refused_at_load(&zipmap(vec![]), &["`classlabels_strings`", "both missing"]);
    refused_at_load(
        &zipmap(vec![
            ints("classlabels_int64s", &[0, 1]),
            strings("classlabels_strings", &["a", "b"]),
        ]),
        &["both given"],
    );
    refused_at_load(
        &zipmap(vec![ints("classlabels_int64s", &[1, 1])]),
        &["`classlabels_int64s`", "repeats"],
    );
    let err = typing_error(&zipmap(vec![ints("classlabels_int64s", &[0, 1, 2])]))
        .expect("3 labels, 2 columns");
    assert!(err.contains("ZipMap"), "{err}");
}

#[test]
fn malformed_linear_classifier_attributes_are_refused_at_load() {
    let linear = |attrs| {
        model(
            "LinearClassifier",
            attrs,
            f32_x(2),
            &["label", "probabilities"],
            1,
        )
    };
    let coefficients = || floats("coefficients", &[1.0, 2.0, 3.0, 4.0]);
    let intercepts = || floats("intercepts", &[0.0, 0.0]);
    refused_at_load(
        &linear(vec![intercepts(), ints("classlabels_ints", &[0, 1])]),
        &["`coefficients`", "missing"],
    );
    refused_at_load(
        &linear(vec![coefficients(), ints("classlabels_ints", &[0, 1])]),
        &["`intercepts`", "missing"],
    );
    refused_at_load(
        &linear(vec![
            floats("coefficients", &[1.0, 2.0, 3.0]),
            intercepts(),
            ints("classlabels_ints", &[0, 1]),
        ]),
        &["`coefficients`", "3 values", "not a multiple"],
    );
    refused_at_load(
        &linear(vec![coefficients(), intercepts()]),
        &["`classlabels_ints`", "both missing"],
    );
    refused_at_load(
        &linear(vec![
            coefficients(),
            intercepts(),
            ints("classlabels_ints", &[0]),
            strings("classlabels_strings", &["a"]),
        ]),
        &["both given"],
    );
    refused_at_load(
        &linear(vec![
            coefficients(),
            intercepts(),
            strings("classlabels_strings", &["a"]),
        ]),
        &["`classlabels_strings`", "has 1 labels", "defines 2 classes"],
    );
    refused_at_load(
        &linear(vec![
            coefficients(),
            intercepts(),
            ints("classlabels_ints", &[0, 1]),
            string("post_transform", "softmax"),
        ]),
        &["`post_transform`", "\"softmax\"", "SOFTMAX_ZERO"],
    );
    let binary = |labels: AttributeProto, transform: &str| {
        linear(vec![
            floats("coefficients", &[1.0, 2.0]),
            floats("intercepts", &[0.5]),
            labels,
            string("post_transform", transform),
        ])
    };
    refused_at_load(
        &binary(ints("classlabels_ints", &[0, 1, 2]), "NONE"),
        &["`classlabels_ints`", "exactly 2"],
    );
    refused_at_load(
        &binary(ints("classlabels_ints", &[0, 1]), "PROBIT"),
        &["`post_transform`", "PROBIT", "uninitialised"],
    );
    // More features than coefficients: found when typing, naming the attribute.
    let wide = model(
        "LinearClassifier",
        vec![
            coefficients(),
            intercepts(),
            ints("classlabels_ints", &[0, 1]),
        ],
        f32_x(3),
        &["label", "probabilities"],
        1,
    );
    let err = typing_error(&wide).expect("4 coefficients for 2 classes of 3 features");
    assert!(err.contains("`coefficients`"), "{err}");
}

#[test]
fn malformed_attributes_of_the_other_operators_are_refused_at_load() {
    let x = || f32_x(2);
    refused_at_load(
        &model("Normalizer", vec![string("norm", "l2")], x(), &["Y"], 1),
        &["`norm`", "\"l2\"", "MAX, L1 or L2"],
    );
    refused_at_load(
        &model("Imputer", vec![], x(), &["Y"], 1),
        &["`imputed_value_floats`", "both missing"],
    );
    refused_at_load(
        &model(
            "Imputer",
            vec![
                floats("imputed_value_floats", &[1.0]),
                ints("imputed_value_int64s", &[1]),
            ],
            x(),
            &["Y"],
            1,
        ),
        &["both given"],
    );
    refused_at_load(
        &model("OneHotEncoder", vec![int("zeros", 1)], x(), &["Y"], 1),
        &["`cats_int64s`", "both missing"],
    );
    refused_at_load(
        &model("Binarizer", vec![string("threshold", "1")], x(), &["Y"], 1),
        &["`threshold`", "a float"],
    );
    let s = || value("X", DataType::String, &[-1]);
    refused_at_load(
        &model(
            "LabelEncoder",
            vec![
                strings("keys_strings", &["a", "b"]),
                ints("values_int64s", &[1]),
            ],
            s(),
            &["Y"],
            2,
        ),
        &["`values`", "1 entries", "keys have 2"],
    );
    refused_at_load(
        &model(
            "LabelEncoder",
            vec![
                strings("keys_strings", &["a"]),
                ints("keys_int64s", &[1]),
                ints("values_int64s", &[1]),
            ],
            s(),
            &["Y"],
            2,
        ),
        &["`keys_strings`", "keep only one"],
    );
    refused_at_load(
        &model(
            "LabelEncoder",
            vec![ints("values_int64s", &[1])],
            s(),
            &["Y"],
            2,
        ),
        &["`keys_strings`", "missing"],
    );
    refused_at_load(
        &model(
            "LabelEncoder",
            vec![strings("classes_strings", &["a"])],
            s(),
            &["Y"],
            2,
        ),
        &["`classes_strings`", "opset 1"],
    );
    refused_at_load(
        &model(
            "LabelEncoder",
            vec![strings("keys_strings", &["a"])],
            s(),
            &["Y"],
            1,
        ),
        &["`classes_strings`", "missing"],
    );
}

#[test]
fn attribute_lengths_that_disagree_with_the_input_are_refused_when_typing() {
    let imputer = model(
        "Imputer",
        vec![floats("imputed_value_floats", &[1.0, 2.0, 3.0])],
        f32_x(2),
        &["Y"],
        1,
    );
    let err = typing_error(&imputer).expect("3 imputed values for 2 features");
    assert!(err.contains("Imputer"), "{err}");
    let int_imputer = model(
        "Imputer",
        vec![ints("imputed_value_int64s", &[1])],
        f32_x(2),
        &["Y"],
        1,
    );
    let err = typing_error(&int_imputer).expect("int64 imputation of an f32 input");
    assert!(err.contains("`imputed_value_int64s`"), "{err}");
    let one_hot = model(
        "OneHotEncoder",
        vec![strings("cats_strings", &["a"])],
        f32_x(2),
        &["Y"],
        1,
    );
    let err = typing_error(&one_hot).expect("string categories for an f32 input");
    assert!(err.contains("`cats_strings`"), "{err}");
    let encoder = model(
        "LabelEncoder",
        vec![strings("keys_strings", &["a"]), ints("values_int64s", &[1])],
        f32_x(2),
        &["Y"],
        2,
    );
    let err = typing_error(&encoder).expect("string keys for an f32 input");
    assert!(err.contains("the keys are String"), "{err}");
    let binarizer = model(
        "Binarizer",
        vec![],
        value("X", DataType::Double, &[-1, 2]),
        &["Y"],
        1,
    );
    let err = typing_error(&binarizer).expect("f64 binarizer");
    assert!(err.contains("Binarizer"), "{err}");
}

/// Runs a hand-built model on one input, returning the error message when it fails.
fn run_model(m: &pb::ModelProto, input: Tensor) -> Result<Vec<Tensor>, String> {
    let plan = onnx()
        .model_for_proto_model(m)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("{e:#}"))?;
    let x = crate::tract_io::to_tract(&input).unwrap().into_tvalue();
    let out = plan.run(tvec!(x)).map_err(|e| format!("{e:#}"))?;
    Ok(out
        .iter()
        .map(|v| crate::tract_io::from_tract(v).unwrap())
        .collect())
}

#[test]
fn values_onnxruntime_refuses_are_errors_at_run_time_not_panics() {
    let nan = Tensor::new(vec![1, 2], TensorData::F32(vec![f32::NAN, 1.0])).unwrap();
    let err = run_model(&model("Binarizer", vec![], f32_x(2), &["Y"], 1), nan).unwrap_err();
    assert!(err.contains("NaN"), "{err}");

    let one_hot = model(
        "OneHotEncoder",
        vec![strings("cats_strings", &["a"]), int("zeros", 0)],
        value("X", DataType::String, &[-1]),
        &["Y"],
        1,
    );
    let unknown = Tensor::new(
        vec![2],
        TensorData::String(vec!["a".into(), "zebra".into()]),
    )
    .unwrap();
    let err = run_model(&one_hot, unknown).unwrap_err();
    assert!(
        err.contains("\"zebra\"") && err.contains("`zeros` is 0"),
        "{err}"
    );

    // ArrayFeatureExtractor with the indices as the model input: out of range, negative, empty.
    let mut afe = model(
        "ArrayFeatureExtractor",
        vec![],
        value("Y", DataType::Int64, &[-1]),
        &["Z"],
        1,
    );
    let graph = afe.graph.as_mut().unwrap();
    graph.node[0].input = vec!["data".into(), "Y".into()];
    graph.initializer.push(pb::TensorProto {
        name: "data".into(),
        dims: vec![3],
        data_type: DataType::Float as i32,
        float_data: vec![1.0, 2.0, 3.0],
        ..Default::default()
    });
    for (indices, needle) in [
        (vec![3], "Y[0] = 3"),
        (vec![0, -1], "Y[1] = -1"),
        (vec![], "empty"),
    ] {
        let y = Tensor::new(vec![indices.len()], TensorData::I64(indices)).unwrap();
        let err = run_model(&afe, y).unwrap_err();
        assert!(err.contains(needle), "{err}");
    }
    let y = Tensor::new(vec![2], TensorData::I64(vec![2, 0])).unwrap();
    let z = run_model(&afe, y).unwrap();
    assert_eq!(
        z[0],
        Tensor::new(vec![1, 2], TensorData::F32(vec![3.0, 1.0])).unwrap()
    );
}

#[test]
fn a_rank_one_input_is_one_row() {
    // LinearClassifier and ZipMap read a vector as a batch of one, as onnxruntime does.
    let linear = model(
        "LinearClassifier",
        vec![
            floats("coefficients", &[1.0, 0.0, 0.0, 1.0]),
            floats("intercepts", &[0.0, 0.0]),
            strings("classlabels_strings", &["first", "second"]),
        ],
        value("X", DataType::Float, &[2]),
        &["label", "probabilities"],
        1,
    );
    let out = run_model(
        &linear,
        Tensor::new(vec![2], TensorData::F32(vec![0.25, 0.75])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        out[0],
        Tensor::new(vec![1], TensorData::String(vec!["second".into()])).unwrap()
    );
    assert_eq!(
        out[1],
        Tensor::new(vec![1, 2], TensorData::F32(vec![0.25, 0.75])).unwrap()
    );
    let zipmap = model(
        "ZipMap",
        vec![ints("classlabels_int64s", &[4, 5])],
        value("X", DataType::Float, &[2]),
        &["Z"],
        1,
    );
    let out = run_model(
        &zipmap,
        Tensor::new(vec![2], TensorData::F32(vec![0.25, 0.75])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        out[0],
        Tensor::new(vec![1, 2], TensorData::F32(vec![0.25, 0.75])).unwrap()
    );
}

#[test]
fn an_operator_of_another_domain_is_not_taken_for_the_ml_one() {
    let mut m = model(
        "Scaler",
        vec![floats("scale", &[1.0]), floats("offset", &[0.0])],
        f32_x(2),
        &["Y"],
        1,
    );
    m.graph.as_mut().unwrap().node[0].domain = "com.example".into();
    refused_at_load(&m, &["com.example", "ai.onnx.ml"]);
}

/// Raw scores are accumulated as onnxruntime's f32 GEMM does on x86 (fused multiply-adds in
/// feature order, then the intercept), so with no transform they are identical to the bit.
#[test]
fn raw_scores_are_bit_identical_to_onnxruntime() {
    let name = "ops/linear_classifier_ints_none";
    let r = reference(name);
    let out = run_fixture(name, &[r.inputs["X"].clone()]);
    let (TensorData::F32(got), TensorData::F32(want)) =
        (out[1].data(), r.outputs["probabilities"].data())
    else {
        panic!("f32 scores expected");
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(want));
}

#[test]
fn one_hot_encoder_takes_any_rank() {
    // onnxruntime 1.32 appends the category axis to inputs of any rank (values from it).
    let encoder = |dims: &[i64]| {
        model(
            "OneHotEncoder",
            vec![ints("cats_int64s", &[0, 1, 2])],
            value("X", DataType::Int64, dims),
            &["Y"],
            1,
        )
    };
    let x = Tensor::new(vec![2, 2, 1], TensorData::I64(vec![0, 1, 2, 5])).unwrap();
    let y = run_model(&encoder(&[2, 2, 1]), x).unwrap();
    let want = [1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0.];
    assert_eq!(
        y[0],
        Tensor::new(vec![2, 2, 1, 3], TensorData::F32(want.to_vec())).unwrap()
    );
    let scalar = Tensor::new(vec![], TensorData::I64(vec![1])).unwrap();
    let y = run_model(&encoder(&[]), scalar).unwrap();
    assert_eq!(
        y[0],
        Tensor::new(vec![3], TensorData::F32(vec![0., 1., 0.])).unwrap()
    );
}

/// skl2onnx sends a numeric category column through `Cast(to=INT64)`, which tract reads as a
/// cast to its symbolic integers (TDim): the encoder takes those as int64.
#[test]
fn one_hot_encoder_takes_a_cast_to_int64() {
    let mut m = model(
        "OneHotEncoder",
        vec![ints("cats_int64s", &[0, 1, 2])],
        value("X", DataType::Float, &[2, 1]),
        &["Y"],
        1,
    );
    let graph = m.graph.as_mut().unwrap();
    graph.node[0].input = vec!["Xi".into()];
    graph.node.insert(
        0,
        NodeProto {
            name: "cast".into(),
            op_type: "Cast".into(),
            input: vec!["X".into()],
            output: vec!["Xi".into()],
            attribute: vec![int("to", DataType::Int64 as i64)],
            ..Default::default()
        },
    );
    let x = Tensor::new(vec![2, 1], TensorData::F32(vec![2.0, 7.0])).unwrap();
    let y = run_model(&m, x).unwrap();
    let want = vec![0., 0., 1., 0., 0., 0.];
    assert_eq!(
        y[0],
        Tensor::new(vec![2, 1, 3], TensorData::F32(want)).unwrap()
    );
}
