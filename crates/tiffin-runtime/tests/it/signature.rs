//! `graph_signature` reads what each fixture's graph says and agrees with its tiffin.toml;
//! `check_signature` accepts the fixtures and reports every problem of a wrong signature.

use tiffin_manifest::{DType, Dim, ModelFormat, Signature, TensorSpec};
use tiffin_runtime::{
    Error, LoadOptions, Model, ModelSource, SignatureProblem, TensorKind, check_signature,
    graph_signature,
};

use crate::common::*;

fn agrees(name: &str) {
    let declared = signature(name);
    let graph =
        graph_signature(&source(name), ModelFormat::Onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
    let pairs = |d: &[TensorSpec], g: &[TensorSpec]| {
        assert_eq!(
            d.iter().map(|t| &t.name).collect::<Vec<_>>(),
            g.iter().map(|t| &t.name).collect::<Vec<_>>(),
            "{name}: names"
        );
        for (d, g) in d.iter().zip(g) {
            assert_eq!(d.dtype, g.dtype, "{name} {}: dtype", d.name);
            assert_eq!(d.shape.len(), g.shape.len(), "{name} {}: rank", d.name);
            for (axis, (dd, gd)) in d.shape.iter().zip(&g.shape).enumerate() {
                // Names may differ (tiffin.toml names dims the graph leaves open); fixed sizes
                // may not, nor may a size be fixed on one side only.
                assert_eq!(
                    dd.fixed(),
                    gd.fixed(),
                    "{name} {} axis {axis}: {dd} vs {gd}",
                    d.name
                );
            }
            if let Some(labels) = &g.class_labels {
                let declared = d
                    .class_labels
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name} {}: labels", d.name));
                assert_eq!(
                    declared.len(),
                    labels.len(),
                    "{name} {}: class count",
                    d.name
                );
            }
        }
    };
    pairs(&declared.inputs, &graph.inputs);
    pairs(&declared.outputs, &graph.outputs);
    check_signature(&declared, &source(name), ModelFormat::Onnx)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    check_signature(&graph, &source(name), ModelFormat::Onnx)
        .unwrap_or_else(|e| panic!("{name} (graph's): {e}"));
}

macro_rules! agreement {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { agrees(stringify!($name)); })*
        #[test]
        fn every_fixture_has_a_signature_test() {
            assert_eq!(fixtures(), vec![$(stringify!($name).to_owned()),*]);
        }
    };
}

agreement!(
    bert_tiny,
    breast_cancer,
    breast_cancer_gbt,
    breast_cancer_mlp,
    breast_cancer_rf,
    breast_cancer_scaled,
    churn_model,
    diabetes_tree_reg,
    forest300,
    iris,
    iris_gbt,
    iris_rf,
    mnist_cnn,
    silero_vad,
    text_direction,
);

#[test]
fn graph_signature_names_open_dims_and_reads_class_labels() {
    let g = graph_signature(&source("text_direction"), ModelFormat::Onnx).unwrap();
    let x = &g.inputs[0];
    assert_eq!(
        x.shape,
        ["batch", "3", "x_dim2", "x_dim3"]
            .map(|d| d.parse().map_or(Dim::Named(d.into()), Dim::Fixed))
    );
    assert_eq!(
        g.outputs[0].shape,
        vec![Dim::Named("batch".into()), Dim::Fixed(2)]
    );
    let g = graph_signature(&source("breast_cancer"), ModelFormat::Onnx).unwrap();
    assert_eq!(
        g.outputs[0].class_labels,
        Some(vec!["0".into(), "1".into()])
    );
    assert_eq!(
        g.outputs[1].class_labels,
        Some(vec!["0".into(), "1".into()])
    );
    let g = graph_signature(&source("silero_vad"), ModelFormat::Onnx).unwrap();
    assert_eq!(g.outputs[0].shape, vec![Dim::Named("seq_len".into())]);
}

fn problems(
    declared: &Signature,
    source: &ModelSource,
    format: ModelFormat,
) -> Vec<SignatureProblem> {
    match check_signature(declared, source, format) {
        Err(Error::Signature(problems)) => problems,
        other => panic!("expected signature problems, got {other:?}"),
    }
}

#[test]
fn every_problem_of_a_wrong_signature_is_reported() {
    let mut declared = signature("breast_cancer");
    declared.inputs[0].shape[1] = Dim::Fixed(31);
    declared.outputs[0].dtype = DType::F32;
    declared.outputs[1].shape[1] = Dim::Fixed(3);
    declared.outputs[1].class_labels = Some(vec!["a".into(), "b".into(), "c".into()]);
    let mut extra = declared.outputs[1].clone();
    extra.name = "scores".into();
    extra.class_labels = None;
    declared.outputs.push(extra);
    let found = problems(&declared, &source("breast_cancer"), ModelFormat::Onnx);
    let text: Vec<String> = found.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        text,
        [
            "output `scores` is declared but the graph has no such output; the graph's outputs are `label`, `probabilities`",
            "input `X` axis 1 is declared `31` but the graph's is `30`; declare the graph's size",
            "output `label` is declared f32, but the graph's is i64; declare it as i64",
            "output `probabilities` axis 1 is declared `3` but the graph's is `2`; declare the graph's size",
            "output `probabilities` declares 3 class labels but the graph's classifier has 2 (`0`, `1`)",
        ]
    );
    // Model::load refuses the same signature with the same problems.
    let err = Model::load(
        &source("breast_cancer"),
        ModelFormat::Onnx,
        &declared,
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err, Error::Signature(found));
}

#[test]
fn renamed_and_undeclared_tensors_are_reported() {
    let mut declared = signature("breast_cancer");
    declared.inputs[0].name = "features".into();
    declared.outputs.pop();
    let found = problems(&declared, &source("breast_cancer"), ModelFormat::Onnx);
    assert_eq!(
        found,
        vec![
            SignatureProblem::Missing {
                kind: TensorKind::Input,
                name: "features".into(),
                graph: vec!["X".into()]
            },
            SignatureProblem::Undeclared {
                kind: TensorKind::Input,
                name: "X".into()
            },
            SignatureProblem::Undeclared {
                kind: TensorKind::Output,
                name: "probabilities".into()
            },
        ]
    );
}

#[test]
fn a_fixed_graph_dim_declared_dynamic_is_reported() {
    let mut declared = signature("mnist_cnn");
    declared.inputs[0].shape[1] = Dim::Named("channels".into());
    let found = problems(&declared, &source("mnist_cnn"), ModelFormat::Onnx);
    assert_eq!(
        found.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        [
            "input `image` axis 1 is declared `channels` but the graph's is `1`; the graph fixes this size, declare it as that number"
        ]
    );
}

/// torch names the batch dim `batch` inside the graph; a signature calling it `n` still loads
/// and runs, because tiffin reuses the graph's symbol.
#[test]
fn the_batch_dim_may_have_another_name_than_the_graphs() {
    let mut declared = signature("mnist_cnn");
    declared.inputs[0].shape[0] = Dim::Named("n".into());
    declared.outputs[0].shape[0] = Dim::Named("n".into());
    let model = Model::load(
        &source("mnist_cnn"),
        ModelFormat::Onnx,
        &declared,
        &LoadOptions::default(),
    )
    .unwrap();
    let r = reference("mnist_cnn");
    let out = model
        .run(&rows(&reference_inputs(&model, &r), Some(3)))
        .unwrap();
    assert_close("logits", &out[0], &head_rows(&r.outputs["logits"], 3), &ORT);
}

/// Two names for one graph dim, and one name for two graph dims, are both reported.
#[test]
fn dim_names_must_match_the_graphs_dims_one_to_one() {
    let source = ModelSource::Bytes(two_input_nnef());
    check_signature(&two_input_signature(), &source, ModelFormat::Nnef).unwrap();
    let mut declared = two_input_signature();
    declared.inputs[1].shape[0] = Dim::Named("m".into());
    declared.outputs[1].shape[0] = Dim::Named("n".into());
    let text: Vec<String> = problems(&declared, &source, ModelFormat::Nnef)
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        text,
        [
            "input `b` axis 0 is declared `m` but the graph gives it the same dimension `n` as input `a` axis 0, declared `n`; use one name for both",
            "dimension `n` is `n` in the graph at input `a` axis 0 but `2*n` at output `both` axis 0; give them different names",
        ]
    );
}

/// An ONNX graph of one `CumProd` (an operator tract 0.23 lacks), input and output declared
/// f32 `[batch, 3]`.
fn cumprod_onnx() -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb;
    let tensor = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: vec![
                        pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(
                                "batch".into(),
                            )),
                            ..Default::default()
                        },
                        pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(3)),
                            ..Default::default()
                        },
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let axis = pb::TensorProto {
        name: "axis".into(),
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: vec![1],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 26,
        }],
        graph: Some(pb::GraphProto {
            name: "cumprod".into(),
            node: vec![pb::NodeProto {
                input: vec!["x".into(), "axis".into()],
                output: vec!["y".into()],
                op_type: "CumProd".into(),
                ..Default::default()
            }],
            initializer: vec![axis],
            input: vec![tensor("x")],
            output: vec![tensor("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A graph tract cannot type at all still gives its declared signature (for another runtime to
/// run it), while checking it against tract names the operator tract lacks.
#[test]
fn a_graph_tract_cannot_type_gives_its_declared_signature() {
    let source = ModelSource::Bytes(cumprod_onnx());
    let signature = graph_signature(&source, ModelFormat::Onnx).unwrap();
    let shape = vec![
        tiffin_manifest::Dim::Named("batch".into()),
        tiffin_manifest::Dim::Fixed(3),
    ];
    assert_eq!(signature.inputs[0].shape, shape);
    assert_eq!(signature.outputs[0].name, "y");
    assert_eq!(signature.outputs[0].shape, shape);
    let err = check_signature(&signature, &source, ModelFormat::Onnx).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedOperators { ops } if ops[0].starts_with("CumProd")),
        "{err}"
    );
}
