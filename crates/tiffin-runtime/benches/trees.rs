//! Tree ensemble speed through the public [`Model`]: the 300-tree `forest300` and the 20-tree
//! `breast_cancer_rf` fixtures at batch 1 and batch 64, on the plan optimized once with a
//! symbolic batch (what `Model::run` serves). Criterion reports rows per second ("elem/s");
//! `benches/ort_trees.py` measures onnxruntime on the same rows for comparison.
//!
//! Run with `cargo bench -p tiffin-runtime --bench trees`.

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tiffin_manifest::{Authoring, ModelFormat};
use tiffin_runtime::{LoadOptions, Model, ModelSource, Tensor, TensorData};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn load(name: &str) -> Model {
    let toml = std::fs::read_to_string(fixture(name).join("tiffin.toml")).unwrap();
    let signature = Authoring::from_toml_str(&toml).unwrap().signature;
    let bytes = std::fs::read(fixture(name).join("model.onnx")).unwrap();
    Model::load(
        &ModelSource::Bytes(bytes),
        ModelFormat::Onnx,
        &signature,
        &LoadOptions::default(),
    )
    .unwrap()
}

/// The first `rows` rows of the fixture's reference input `X` (64 rows of the data set).
fn rows(name: &str, rows: usize) -> Tensor {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let x: Tensor = serde_json::from_value(json["inputs"]["X"].take()).unwrap();
    let width = x.shape()[1];
    let TensorData::F32(values) = x.data() else {
        panic!("{name}: X is not f32")
    };
    Tensor::new(
        vec![rows, width],
        TensorData::F32(values[..rows * width].to_vec()),
    )
    .unwrap()
}

fn trees(c: &mut Criterion) {
    for name in ["forest300", "breast_cancer_rf"] {
        let model = load(name);
        let mut group = c.benchmark_group(name);
        for n in [1, 64] {
            let input = [rows(name, n)];
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("batch", n), &input, |b, input| {
                b.iter(|| model.run(input).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, trees);
criterion_main!(benches);
