//! Criterion benchmarks of `Model` on every fixture that loads: load + optimize from ONNX and from
//! NNEF, runs at batch 1 and 64 on the general (symbolic) plan and on a plan concretized for the
//! batch size, and the cost of building that concretized plan.
//! `cargo bench -p tiffin-runtime --bench model [-- FILTER]`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tiffin_manifest::{Authoring, Dim, ModelFormat, Signature};
use tiffin_runtime::{LoadOptions, Model, ModelSource, Tensor, TensorData, to_nnef};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("the fixtures folder")
        .filter_map(|e| {
            let e = e.ok()?;
            let dir = e.path();
            (dir.join("tiffin.toml").is_file() && dir.join("reference.json").is_file())
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

fn signature(name: &str) -> Signature {
    let text = std::fs::read_to_string(fixture(name).join("tiffin.toml")).expect("tiffin.toml");
    Authoring::from_toml_str(&text)
        .expect("a valid tiffin.toml")
        .signature
}

fn reference_inputs(name: &str) -> BTreeMap<String, Tensor> {
    let text =
        std::fs::read_to_string(fixture(name).join("reference.json")).expect("reference.json");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    serde_json::from_value(json["inputs"].take()).expect("reference inputs")
}

/// The reference rows repeated or cut to `n` rows.
fn rows(t: &Tensor, n: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let have = t.shape()[0];
    let pick = |i: usize| (i % have) * row..(i % have + 1) * row;
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32((0..n).flat_map(|i| v[pick(i)].to_vec()).collect()),
        other => panic!("the fixtures' inputs are f32, not {:?}", other.dtype()),
    };
    let mut shape = t.shape().to_vec();
    shape[0] = n;
    Tensor::new(shape, data).expect("consistent shape")
}

/// The inputs of a call at batch `n` (silero_vad: its one sequence, whole), with the size of
/// each named dim.
fn call(name: &str, model: &Model, n: usize) -> (Vec<Tensor>, Vec<(String, usize)>) {
    let reference = reference_inputs(name);
    let inputs: Vec<Tensor> = model
        .signature()
        .inputs
        .iter()
        .map(|spec| {
            let t = &reference[&spec.name];
            if name == "silero_vad" || spec.shape.first().and_then(Dim::name).is_none() {
                t.clone()
            } else {
                rows(t, n)
            }
        })
        .collect();
    let mut sizes: Vec<(String, usize)> = Vec::new();
    for (spec, t) in model.signature().inputs.iter().zip(&inputs) {
        for (d, &size) in spec.shape.iter().zip(t.shape()) {
            if let Some(dim) = d.name().filter(|dim| !sizes.iter().any(|(s, _)| s == dim)) {
                sizes.push((dim.to_owned(), size));
            }
        }
    }
    (inputs, sizes)
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    for name in fixtures() {
        let signature = signature(&name);
        let onnx = ModelSource::Bytes(
            std::fs::read(fixture(&name).join("model.onnx")).expect("model.onnx"),
        );
        let options = LoadOptions::default();
        if Model::load(&onnx, ModelFormat::Onnx, &signature, &options).is_err() {
            continue;
        }
        group.bench_function(BenchmarkId::new("onnx", &name), |b| {
            b.iter(|| {
                Model::load(black_box(&onnx), ModelFormat::Onnx, &signature, &options)
                    .expect("loads")
            })
        });
        if let Ok(tar) = to_nnef(&onnx, &signature) {
            let nnef = ModelSource::Bytes(tar);
            group.bench_function(BenchmarkId::new("nnef", &name), |b| {
                b.iter(|| {
                    Model::load(black_box(&nnef), ModelFormat::Nnef, &signature, &options)
                        .expect("loads")
                })
            });
        }
    }
    group.finish();
}

fn run(c: &mut Criterion) {
    let mut group = c.benchmark_group("run");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    for name in fixtures() {
        let signature = signature(&name);
        let onnx = ModelSource::Bytes(
            std::fs::read(fixture(&name).join("model.onnx")).expect("model.onnx"),
        );
        let general = LoadOptions::default().with_plan_cache(0);
        let Ok(symbolic) = Model::load(&onnx, ModelFormat::Onnx, &signature, &general) else {
            continue;
        };
        let concrete = Model::load(
            &onnx,
            ModelFormat::Onnx,
            &signature,
            &LoadOptions::default(),
        )
        .expect("loads");
        // tract's multithreaded matrix products, on every core, for the convolution models
        // (the only ones whose products are large enough to split).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threaded =
            (cores > 1 && matches!(name.as_str(), "mnist_cnn" | "text_direction")).then(|| {
                let options = LoadOptions::default().with_threads(cores);
                Model::load(&onnx, ModelFormat::Onnx, &signature, &options).expect("loads")
            });
        let batches: &[usize] = if name == "silero_vad" {
            &[32]
        } else {
            &[1, 64]
        };
        for &n in batches {
            let (inputs, sizes) = call(&name, &symbolic, n);
            let sizes: Vec<(&str, usize)> = sizes.iter().map(|(d, s)| (d.as_str(), *s)).collect();
            concrete.prepare(&sizes).expect("a concretized plan");
            group.bench_function(BenchmarkId::new(format!("symbolic/{name}"), n), |b| {
                b.iter(|| symbolic.run(black_box(&inputs)).expect("runs"))
            });
            group.bench_function(BenchmarkId::new(format!("fixed/{name}"), n), |b| {
                b.iter(|| concrete.run(black_box(&inputs)).expect("runs"))
            });
            if let Some(threaded) = &threaded {
                threaded.prepare(&sizes).expect("a concretized plan");
                let id = BenchmarkId::new(format!("fixed-{cores}-threads/{name}"), n);
                group.bench_function(id, |b| {
                    b.iter(|| threaded.run(black_box(&inputs)).expect("runs"))
                });
            }
            // What a size's first plan costs to build (in the background, or by `prepare`).
            group.bench_function(BenchmarkId::new(format!("prepare/{name}"), n), |b| {
                b.iter(|| {
                    concrete
                        .prepare(black_box(&sizes))
                        .expect("a concretized plan")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, load, run);
criterion_main!(benches);
