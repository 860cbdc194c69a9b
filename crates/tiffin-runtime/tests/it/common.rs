//! Shared helpers: the fixtures, their tiffin.toml signatures and onnxruntime references.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tiffin_manifest::{Authoring, ModelFormat, Signature, Tolerance};
use tiffin_runtime::{LoadOptions, Model, ModelSource, Tensor, TensorData};

/// `fixtures/NAME` in the repository.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Every model fixture with a tiffin.toml and a reference.json, sorted.
pub(crate) fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let dir = e.path();
            (dir.join("tiffin.toml").is_file() && dir.join("reference.json").is_file())
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// The signature in a fixture's tiffin.toml.
pub(crate) fn signature(name: &str) -> Signature {
    let text = std::fs::read_to_string(fixture(name).join("tiffin.toml")).unwrap();
    Authoring::from_toml_str(&text).unwrap().signature
}

/// A fixture's ONNX model, as bytes.
pub(crate) fn source(name: &str) -> ModelSource {
    ModelSource::Bytes(std::fs::read(fixture(name).join("model.onnx")).unwrap())
}

/// Loads a fixture's ONNX model with its tiffin.toml signature.
pub(crate) fn load(name: &str) -> Result<Model, tiffin_runtime::Error> {
    Model::load(
        &source(name),
        ModelFormat::Onnx,
        &signature(name),
        &LoadOptions::default(),
    )
}

/// ONNX Runtime from the library `TIFFIN_ORT_LIB` names; `cargo xtask ci` sets it to the
/// library of the pinned onnxruntime wheel. A build with the `ort` feature and no library is a
/// mistake of the test setup, so it fails rather than skipping.
#[cfg(feature = "ort")]
pub(crate) fn ort_runtime() -> tiffin_runtime::Runtime {
    let library = std::env::var_os("TIFFIN_ORT_LIB").expect(
        "TIFFIN_ORT_LIB names no library: the `ort` tests need libonnxruntime.so (`cargo xtask ort-lib` fetches it)",
    );
    tiffin_runtime::Runtime::Ort {
        library: library.into(),
    }
}

/// A fixture's `reference.json`.
pub(crate) struct Reference {
    pub(crate) inputs: BTreeMap<String, Tensor>,
    pub(crate) outputs: BTreeMap<String, Tensor>,
}

pub(crate) fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (_, value) in json["outputs"].as_object_mut().unwrap() {
        value.as_object_mut().unwrap().remove("labels");
    }
    Reference {
        inputs: serde_json::from_value(json["inputs"].take()).unwrap(),
        outputs: serde_json::from_value(json["outputs"].take()).unwrap(),
    }
}

/// The first `n` rows (outer dimension) of a tensor.
pub(crate) fn head_rows(t: &Tensor, n: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = n;
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(v[..n * row].to_vec()),
        TensorData::I64(v) => TensorData::I64(v[..n * row].to_vec()),
        TensorData::String(v) => TensorData::String(v[..n * row].to_vec()),
        other => panic!(
            "head_rows: {:?} tensors are not used by the fixtures",
            other.dtype()
        ),
    };
    Tensor::new(shape, data).unwrap()
}

/// Agreement with onnxruntime's reference outputs: another implementation, summing in another
/// order and with other kernels per CPU, so a few ulps at any magnitude (1e-5 relative is about
/// 80 f32 ulps) and 1e-5 near zero. A value off by 1e-3 relative fails (`a_wrong_value_fails`).
pub(crate) const ORT: Tolerance = Tolerance::within(1e-5, 1e-5);

/// Agreement between two runs of tract on one machine that may sum in another order (another
/// plan, batch size or thread count, or the NNEF form of the same graph): a few ulps.
pub(crate) const SAME_MACHINE: Tolerance = Tolerance::within(1e-6, 1e-6);

/// The first value of `got` that is not within `tolerance` of `want`, described; `None` when
/// all are. Floats compare as `|got - want| <= abs + rel * |want|` (NaN equal to NaN); integer,
/// boolean and string tensors must be equal.
pub(crate) fn disagreement(got: &Tensor, want: &Tensor, tolerance: &Tolerance) -> Option<String> {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Some(format!("got {got}, want {want}"));
    }
    let (TensorData::F32(g), TensorData::F32(w)) = (got.data(), want.data()) else {
        return (got.data() != want.data()).then(|| format!("got {got:?}, want {want:?}"));
    };
    g.iter()
        .zip(w)
        .map(|(&g, &w)| (f64::from(g), f64::from(w)))
        .enumerate()
        .find(|(_, (g, w))| !tolerance.allows(*w, *g))
        .map(|(i, (g, w))| {
            format!(
                "[{i}] is {g}, want {w}: off by {} where abs {} + rel {} allows {}",
                (g - w).abs(),
                tolerance.abs,
                tolerance.rel,
                tolerance.abs + tolerance.rel * w.abs()
            )
        })
}

/// Asserts `got` agrees with `want` within `tolerance` (see [`disagreement`]).
pub(crate) fn assert_close(what: &str, got: &Tensor, want: &Tensor, tolerance: &Tolerance) {
    if let Some(problem) = disagreement(got, want, tolerance) {
        panic!("{what}: {problem}");
    }
}

/// The inputs of a fixture's reference, in the order of its signature.
pub(crate) fn reference_inputs(model: &Model, r: &Reference) -> Vec<Tensor> {
    model
        .signature()
        .inputs
        .iter()
        .map(|i| r.inputs[&i.name].clone())
        .collect()
}

/// The batch sizes a fixture is checked at: 1, 7 and 64, or the rows its reference has when
/// fewer; `silero_vad` only whole, since its rows depend on each other.
pub(crate) fn batches(name: &str, r: &Reference) -> Vec<Option<usize>> {
    if name == "silero_vad" {
        return vec![None];
    }
    let rows = r.inputs.values().next().unwrap().shape()[0];
    let mut sizes: Vec<Option<usize>> = [1, 7, 64].iter().map(|&b| Some(b.min(rows))).collect();
    sizes.dedup();
    sizes
}

/// The inputs cut to `rows` rows (all of them for `None`).
pub(crate) fn rows(inputs: &[Tensor], rows: Option<usize>) -> Vec<Tensor> {
    inputs
        .iter()
        .map(|t| rows.map_or_else(|| t.clone(), |n| head_rows(t, n)))
        .collect()
}

/// An NNEF model built with tract, for what no fixture has: inputs `a` and `b`, both f32
/// `[n, 3]` sharing the symbol `n`, and outputs `sum` = a + b `[n, 3]` and `both` = a and b
/// stacked along axis 0, `[2n, 3]`.
pub(crate) fn two_input_nnef() -> Vec<u8> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::ops::{array::TypedConcat, math};
    let mut model = TypedModel::default();
    let n = model.sym("n");
    let fact = TypedFact::dt_shape(f32::datum_type(), tvec![n.to_dim(), 3.to_dim()]);
    let a = model.add_source("a", fact.clone()).unwrap();
    let b = model.add_source("b", fact).unwrap();
    let sum = model.wire_node("sum", math::add(), &[a, b]).unwrap()[0];
    let both = model
        .wire_node("both", TypedConcat { axis: 0 }, &[a, b])
        .unwrap()[0];
    model.select_output_outlets(&[sum, both]).unwrap();
    model.set_outlet_label(sum, "sum".into()).unwrap();
    model.set_outlet_label(both, "both".into()).unwrap();
    tract_nnef::nnef().write_to_tar(&model, Vec::new()).unwrap()
}

/// The signature of [`two_input_nnef`].
pub(crate) fn two_input_signature() -> Signature {
    let toml = r#"
        [package]
        name = "two"
        version = "1.0.0"
        [model]
        path = "model.nnef.tar"
        [[signature.inputs]]
        name = "a"
        dtype = "f32"
        shape = ["n", 3]
        [[signature.inputs]]
        name = "b"
        dtype = "f32"
        shape = ["n", 3]
        [[signature.outputs]]
        name = "sum"
        dtype = "f32"
        shape = ["n", 3]
        [[signature.outputs]]
        name = "both"
        dtype = "f32"
        shape = ["rows", 3]
    "#;
    Authoring::from_toml_str(toml).unwrap().signature
}

/// An f32 tensor of `shape` holding 0, 1, 2, ...
pub(crate) fn iota(shape: &[usize]) -> Tensor {
    let n = shape.iter().product::<usize>();
    Tensor::new(
        shape.to_vec(),
        TensorData::F32((0..n).map(|i| i as f32).collect()),
    )
    .unwrap()
}
