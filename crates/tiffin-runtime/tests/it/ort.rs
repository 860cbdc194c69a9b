//! ONNX Runtime as the engine (`Runtime::Ort`, built with the `ort` feature): the signature is
//! checked against the session's inputs and outputs, inputs are checked before the run exactly
//! as with tract, and what ONNX Runtime cannot run is refused by name.

use tiffin_manifest::{DType, Dim, ModelFormat, Signature};
use tiffin_runtime::{Error, LoadOptions, Model, ModelSource, Runtime, SignatureProblem, Tensor};

use crate::common::*;

fn ort_options() -> LoadOptions {
    LoadOptions::default().with_runtime(ort_runtime())
}

fn load_ort(name: &str, signature: &Signature) -> Result<Model, Error> {
    Model::load(&source(name), ModelFormat::Onnx, signature, &ort_options())
}

/// A wrong dtype, a wrong fixed size and a fixed input dim declared dynamic are all reported,
/// at once, as with tract. An output dim declared by a name where onnxruntime's shape inference
/// finds a number is accepted: tract's reading of a graph (what `init` writes) leaves some
/// sizes open that onnxruntime computes (`Range`, `TopK` of constant arguments).
#[test]
fn a_wrong_signature_is_refused_with_every_problem() {
    let mut wrong = signature("mnist_cnn");
    wrong.outputs[0].dtype = DType::I64;
    wrong.inputs[0].shape[3] = Dim::Fixed(29);
    wrong.inputs[0].shape[2] = Dim::Named("height".into());
    wrong.outputs[0].shape[1] = Dim::Named("classes".into());
    let Err(Error::Signature(problems)) = load_ort("mnist_cnn", &wrong) else {
        panic!("a wrong signature loaded");
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, SignatureProblem::DType { name, .. } if name == "logits"))
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, SignatureProblem::Dim { axis: 3, .. }))
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, SignatureProblem::Dim { axis: 2, .. }))
    );
    let mut open_output = signature("mnist_cnn");
    open_output.outputs[0].shape[1] = Dim::Named("classes".into());
    let model = load_ort("mnist_cnn", &open_output).unwrap();
    let image = head_rows(&reference("mnist_cnn").inputs["image"], 2);
    assert_eq!(model.run(&[image]).unwrap()[0].shape(), [2, 10]);
    let mut renamed = signature("mnist_cnn");
    renamed.inputs[0].name = "pixels".into();
    let Err(Error::Signature(problems)) = load_ort("mnist_cnn", &renamed) else {
        panic!("a renamed input loaded");
    };
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, SignatureProblem::Missing { name, .. } if name == "pixels")),
        "{problems:?}"
    );
}

/// Inputs are checked by tiffin before ONNX Runtime sees them, with the same errors as tract.
#[test]
fn inputs_are_checked_before_the_run() {
    let model = load_ort("mnist_cnn", &signature("mnist_cnn")).unwrap();
    let wrong = Tensor::new(
        vec![1, 1, 28, 28],
        tiffin_runtime::TensorData::F64(vec![0.0; 784]),
    )
    .unwrap();
    assert!(matches!(
        model.run(&[wrong]).unwrap_err(),
        Error::InputDType { .. }
    ));
    let short = Tensor::new(
        vec![1, 1, 28, 27],
        tiffin_runtime::TensorData::F32(vec![0.0; 756]),
    )
    .unwrap();
    assert!(matches!(
        model.run(&[short]).unwrap_err(),
        Error::InputDim { axis: 3, .. }
    ));
    // Many threads share one model (the session takes turns behind a lock).
    let image = head_rows(&reference("mnist_cnn").inputs["image"], 2);
    let want = model.run(std::slice::from_ref(&image)).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(model.run(std::slice::from_ref(&image)).unwrap(), want);
                }
            });
        }
    });
}

/// An NNEF model, or an ONNX model given as a folder, is refused by name; a missing library is
/// refused naming its path.
#[test]
fn what_onnx_runtime_cannot_run_is_refused() {
    let nnef = Model::load(
        &ModelSource::Bytes(two_input_nnef()),
        ModelFormat::Nnef,
        &signature("mnist_cnn"),
        &ort_options(),
    )
    .unwrap_err();
    assert!(nnef.to_string().contains("ONNX models only"), "{nnef}");
    let missing = Runtime::Ort {
        library: "/no/such/libonnxruntime.so".into(),
    };
    let err = Model::load(
        &source("iris"),
        ModelFormat::Onnx,
        &signature("iris"),
        &LoadOptions::default().with_runtime(missing),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::OrtLibrary { .. }), "{text}");
    assert!(text.contains("/no/such/libonnxruntime.so"), "{text}");
}

/// A model loaded into two sessions runs calls on both at once (each thread finds a free one)
/// and answers as one session does, at every batch size.
#[test]
fn two_sessions_answer_as_one() {
    let options = ort_options().with_sessions(2);
    let model = Model::load(
        &source("mnist_cnn"),
        ModelFormat::Onnx,
        &signature("mnist_cnn"),
        &options,
    )
    .unwrap();
    assert!(format!("{model:?}").contains("sessions: 2"), "{model:?}");
    let one = load_ort("mnist_cnn", &signature("mnist_cnn")).unwrap();
    assert!(format!("{one:?}").contains("sessions: 1"), "{one:?}");
    // What a batcher reads to close a batch only when a session is free.
    assert_eq!(model.parallel_runs(), Some(2));
    assert_eq!(one.parallel_runs(), Some(1));
    let image = head_rows(&reference("mnist_cnn").inputs["image"], 3);
    assert_close(
        "two sessions against one",
        &model.run(std::slice::from_ref(&image)).unwrap()[0],
        &one.run(&[image]).unwrap()[0],
        &SAME_MACHINE,
    );
    crate::concurrency::concurrent_runs_match_sequential("mnist_cnn", options, &SAME_MACHINE);
}
