//! Reading a tensor from JSON: one 1x28x28 image of 784 floats written with 17 significant
//! digits (as Python's `json` writes float32 pixels that numpy widened), the body of a V2 JSON
//! request for an image model. Read straight into f32 ([`JsonInto`], what the server does when
//! the request names the datatype before the data, as clients write it) against the leaves read
//! as JSON values and converted after ([`FlatJson`] + [`TensorData::from_json`], the path for
//! data sent before its datatype).
//!
//! Run with `cargo bench -p tiffin-runtime --bench json`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::de::DeserializeSeed;
use tiffin_manifest::DType;
use tiffin_runtime::{FlatJson, JsonInto, TensorData};

fn image() -> String {
    // A gradient of pixel values like the bench server's synthetic image: f32 values printed
    // as the f64 they widen to.
    let pixels: Vec<f64> = (0..784)
        .map(|i| f64::from((i % 17) as f32 / 17.0_f32))
        .collect();
    let rows: Vec<&[f64]> = pixels.chunks(28).collect();
    serde_json::to_string(&[[rows]]).expect("numbers serialize")
}

fn json(c: &mut Criterion) {
    let text = image();
    let mut group = c.benchmark_group("json/image_784");
    group.throughput(Throughput::Elements(784));
    group.bench_function("into_f32", |b| {
        b.iter(|| {
            let read = JsonInto(DType::F32)
                .deserialize(&mut serde_json::Deserializer::from_str(black_box(&text)))
                .expect("valid JSON")
                .expect("f32 values");
            black_box(read)
        });
    });
    group.bench_function("values_then_convert", |b| {
        b.iter(|| {
            let leaves: FlatJson = serde_json::from_str(black_box(&text)).expect("valid JSON");
            black_box(TensorData::from_json(DType::F32, &leaves.0).expect("f32 values"))
        });
    });
    group.finish();
}

criterion_group!(benches, json);
criterion_main!(benches);
