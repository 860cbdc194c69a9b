//! `Model::run` checks its inputs before tract sees them, and says what is wrong.

use tiffin_manifest::ModelFormat;
use tiffin_runtime::{Error, LoadOptions, Model, ModelSource, Tensor, TensorData};

use crate::common::*;

fn run_err(model: &Model, inputs: &[Tensor]) -> String {
    model.run(inputs).unwrap_err().to_string()
}

#[test]
fn wrong_inputs_are_refused_with_what_was_expected() {
    let model = load("breast_cancer").unwrap();
    assert_eq!(
        run_err(&model, &[]),
        "the model takes 1 input (X), but 0 were given"
    );
    assert_eq!(
        run_err(&model, &[iota(&[2, 30]), iota(&[2, 30])]),
        "the model takes 1 input (X), but 2 were given"
    );
    let f64s = Tensor::new(vec![2, 30], TensorData::F64(vec![0.0; 60])).unwrap();
    assert_eq!(
        run_err(&model, &[f64s]),
        "input `X` (position 0) must be f32, but a f64 tensor was given; convert it to f32 first"
    );
    assert_eq!(
        run_err(&model, &[iota(&[30])]),
        "input `X` (position 0) must have 2 dimensions [batch, 30], but a tensor of shape [30] was given"
    );
    assert_eq!(
        run_err(&model, &[iota(&[2, 29])]),
        "input `X` (position 0) must have size 30 on axis 1 (shape [batch, 30]), but a tensor of shape [2, 29] was given"
    );
    let silero = load("silero_vad").unwrap();
    let err = run_err(
        &silero,
        &[iota(&[3, 576]), iota(&[1, 1, 128]), iota(&[1, 2, 128])],
    );
    assert_eq!(
        err,
        "input `c` (position 2) must have size 1 on axis 1 (shape [1, 1, 128]), but a tensor of shape [1, 2, 128] was given"
    );
}

#[test]
fn inputs_sharing_a_dim_must_agree_on_its_size() {
    let source = ModelSource::Bytes(two_input_nnef());
    let model = Model::load(
        &source,
        ModelFormat::Nnef,
        &two_input_signature(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        run_err(&model, &[iota(&[2, 3]), iota(&[3, 3])]),
        "dimension `n` is 2 in input `a` (axis 0) but 3 in input `b` (axis 0); inputs that share a dimension name must agree on its size"
    );
    let out = model.run(&[iota(&[2, 3]), iota(&[2, 3])]).unwrap();
    assert_eq!(
        out[0].data(),
        &TensorData::F32(vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    );
    assert_eq!(out[1].shape(), &[4, 3]);
}

/// A batch of 0 rows gets 0 rows back when every output is empty for it (nothing needs to
/// run), and a clear error when some output would not be (silero's state outputs).
#[test]
fn empty_batches_give_empty_outputs_or_a_clear_error() {
    let model = load("breast_cancer").unwrap();
    let out = model.run(&[iota(&[0, 30])]).unwrap();
    assert_eq!(
        out[0],
        Tensor::new(vec![0], TensorData::I64(vec![])).unwrap()
    );
    assert_eq!(
        out[1],
        Tensor::new(vec![0, 2], TensorData::F32(vec![])).unwrap()
    );
    let silero = load("silero_vad").unwrap();
    let err = silero
        .run(&[iota(&[0, 576]), iota(&[1, 1, 128]), iota(&[1, 1, 128])])
        .unwrap_err();
    assert!(matches!(err, Error::EmptyInput { axis: 0, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "input `input` has size 0 on axis 0 (`seq_len`) and the model's outputs would not all be empty; send at least one element on that axis"
    );
}

#[test]
fn a_panic_inside_tract_is_an_error_and_the_model_still_runs() {
    use tract_linalg::multithread::{Executor, current_tract_executor};
    let name = "text_direction";
    for threads in [1, 2] {
        let options = LoadOptions::default().with_threads(threads);
        let model =
            Model::load(&source(name), ModelFormat::Onnx, &signature(name), &options).unwrap();
        // An image smaller than the convolutions and pools need: tract 0.23 panics in its
        // kernels' work split (a division by zero in release, a debug assertion before it in
        // debug builds) rather than returning an error.
        let err = model.run(&[iota(&[1, 3, 2, 2])]).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Panicked {
                    stage: "running",
                    ..
                }
            ),
            "{threads} threads: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("tract panicked while running the model")
        );
        assert!(!err.is_input_error());
        // With a thread pool, tract sets it for the run and puts the thread's own executor back
        // only when the run returns: the panic is caught inside, so this thread is not left on
        // the model's pool.
        assert!(
            matches!(current_tract_executor(), Executor::SingleThread),
            "{threads} threads"
        );
        let outputs = model.run(&[iota(&[1, 3, 48, 192])]).unwrap();
        assert_eq!(outputs[0].shape(), &[1, 2]);
    }
}
