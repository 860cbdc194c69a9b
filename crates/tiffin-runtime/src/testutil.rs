//! Test helpers: the committed fixtures, their onnxruntime references, tolerant comparison, and
//! running a fixture through tract with tiffin's operators registered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tiffin_manifest::Tolerance;
use tract_onnx::prelude::*;

use crate::{Tensor, TensorData};

/// `fixtures/NAME` in the repository.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// A fixture's `reference.json`: inputs and the outputs onnxruntime gave for them.
pub(crate) struct Reference {
    pub(crate) inputs: BTreeMap<String, Tensor>,
    pub(crate) outputs: BTreeMap<String, Tensor>,
    /// ZipMap outputs' map keys, as the graph has them.
    pub(crate) labels: BTreeMap<String, Vec<serde_json::Value>>,
}

pub(crate) fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut labels = BTreeMap::new();
    for (output, value) in json["outputs"].as_object_mut().unwrap() {
        if let Some(l) = value.as_object_mut().unwrap().remove("labels") {
            labels.insert(output.clone(), l.as_array().unwrap().clone());
        }
    }
    Reference {
        inputs: serde_json::from_value(json["inputs"].take()).unwrap(),
        outputs: serde_json::from_value(json["outputs"].take()).unwrap(),
        labels,
    }
}

/// The first `n` rows (outer dimension) of a tensor.
pub(crate) fn head_rows(t: &Tensor, n: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = n;
    let data = crate::dispatch_data!(t.data(), v => v[..n * row].to_vec().into());
    Tensor::new(shape, data).unwrap()
}

macro_rules! into_data {
    ($($t:ty => $v:ident),*) => {$(
        impl From<Vec<$t>> for TensorData {
            fn from(v: Vec<$t>) -> TensorData { TensorData::$v(v) }
        }
    )*};
}
into_data!(bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32,
    i64 => I64, crate::f16 => F16, f32 => F32, f64 => F64, String => String);

/// Agreement with onnxruntime's reference outputs: another implementation, summing in another
/// order, so a few ulps at any magnitude (1e-5 relative is about 80 f32 ulps), and 1e-5 for
/// values near zero. A value off by 1e-3 relative still fails.
pub(crate) const ORT: Tolerance = Tolerance::within(1e-5, 1e-5);

/// Agreement between two runs of tract on this machine that may sum in another order (another
/// plan, batch size or thread count): a few ulps at any magnitude.
pub(crate) const SAME_MACHINE: Tolerance = Tolerance::within(1e-6, 1e-6);

/// Asserts two tensors have the same shape and dtype, equal integers, bools and strings, and
/// floats within `tolerance` of `want` (`|got - want| <= abs + rel * |want|`, NaN equal to NaN).
pub(crate) fn assert_close(what: &str, got: &Tensor, want: &Tensor, tolerance: &Tolerance) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let floats = |t: &Tensor| match t.data() {
        TensorData::F32(v) => Some(v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>()),
        TensorData::F64(v) => Some(v.clone()),
        _ => None,
    };
    match (floats(got), floats(want)) {
        (Some(g), Some(w)) if got.dtype() == want.dtype() => {
            for (i, (g, w)) in g.iter().zip(&w).enumerate() {
                assert!(
                    tolerance.allows(*w, *g),
                    "{what}[{i}]: got {g}, want {w}, off by {} where {tolerance:?} allows {}",
                    (g - w).abs(),
                    tolerance.abs + tolerance.rel * w.abs()
                );
            }
        }
        _ => assert_eq!(got.data(), want.data(), "{what}"),
    }
}

/// Loads a fixture's ONNX model with tiffin's operators, fixes its inputs to the given tensors'
/// shapes and dtypes, optimizes it and runs it: a direct path for operator tests that does not
/// depend on the `Model` adapter.
pub(crate) fn run_fixture(name: &str, inputs: &[Tensor]) -> Vec<Tensor> {
    let mut onnx = tract_onnx::onnx();
    crate::onnx_ml::register(&mut onnx.op_register);
    let mut model = onnx
        .model_for_path(fixture(name).join("model.onnx"))
        .unwrap();
    for (ix, t) in inputs.iter().enumerate() {
        let tract = crate::tract_io::to_tract(t).unwrap();
        let fact = InferenceFact::dt_shape(tract.datum_type(), t.shape());
        model.set_input_fact(ix, fact).unwrap();
    }
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    let values: TVec<TValue> = inputs
        .iter()
        .map(|t| crate::tract_io::to_tract(t).unwrap().into_tvalue())
        .collect();
    plan.run(values)
        .unwrap()
        .iter()
        .map(|v| crate::tract_io::from_tract(v).unwrap())
        .collect()
}
