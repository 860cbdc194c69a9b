//! A model tract cannot type with symbolic dims (bert_tiny, a legacy torch export of BERT) runs
//! per shape: every sequence length answers, and answers consistently across lengths.

use tiffin_runtime::{Error, Tensor, TensorData};

use crate::common::*;

/// `row` of a `[rows, seq]` i64 tensor, cut to its first `len` tokens, as `[1, len]`.
fn cut(t: &Tensor, row: usize, len: usize) -> Tensor {
    let TensorData::I64(v) = t.data() else {
        panic!("i64 tokens")
    };
    let seq = t.shape()[1];
    Tensor::new(
        vec![1, len],
        TensorData::I64(v[row * seq..row * seq + len].to_vec()),
    )
    .unwrap()
}

/// The values of `row` of a `[rows, ...]` f32 tensor, its inner axis 1 cut to `len`.
fn row_values(t: &Tensor, row: usize, len: Option<usize>) -> Vec<f32> {
    let TensorData::F32(v) = t.data() else {
        panic!("f32 outputs")
    };
    let per_row: usize = t.shape()[1..].iter().product();
    let values = &v[row * per_row..(row + 1) * per_row];
    match len {
        Some(len) => values[..len * t.shape()[2]].to_vec(),
        None => values.to_vec(),
    }
}

#[test]
fn every_length_answers_and_masked_tokens_change_nothing() {
    let model = load("bert_tiny").unwrap();
    assert_eq!(model.per_shape_dims(), ["batch", "seq"]);
    let r = reference("bert_tiny");
    let inputs = reference_inputs(&model, &r);
    // Row 2 masks its last three tokens: cut to its six real tokens it must give the same
    // states for them, and the same pooled output (which reads the first token).
    let short: Vec<Tensor> = inputs.iter().map(|t| cut(t, 2, 6)).collect();
    let out = model.run(&short).unwrap();
    assert_eq!(out[0].shape(), [1, 6, 64]);
    let want_states = row_values(&r.outputs["last_hidden_state"], 2, Some(6));
    let want_pooled = row_values(&r.outputs["pooler_output"], 2, None);
    for (got, want) in [
        (row_values(&out[0], 0, None), want_states),
        (row_values(&out[1], 0, None), want_pooled),
    ] {
        let got = Tensor::new(vec![got.len()], TensorData::F32(got)).unwrap();
        let want = Tensor::new(vec![want.len()], TensorData::F32(want)).unwrap();
        assert_close("bert_tiny cut to 6 tokens", &got, &want, &ORT);
    }
    // Every length from 1 to 12, more than the plans kept: each gets the right shape.
    for len in 1..=12 {
        let call: Vec<Tensor> = inputs.iter().map(|t| cut(t, 0, len.min(9))).collect();
        let out = model.run(&call).unwrap();
        assert_eq!(out[0].shape(), [1, len.min(9), 64]);
    }
    // The inputs must agree on the sequence length, and an empty one is refused by name.
    let mut mixed: Vec<Tensor> = inputs.iter().map(|t| cut(t, 0, 5)).collect();
    mixed[1] = cut(&inputs[1], 0, 4);
    assert!(matches!(
        model.run(&mixed).unwrap_err(),
        Error::InconsistentDim { .. }
    ));
    let empty: Vec<Tensor> = inputs.iter().map(|t| cut(t, 0, 0)).collect();
    let err = model.run(&empty).unwrap_err();
    assert!(matches!(err, Error::EmptyInput { .. }), "{err}");
}
