//! Runs the ONNX backend node tests (the `onnx/backend/test/data/node/` cases of the onnx
//! wheel) through tiffin-runtime as `tiffin init` and `tiffin predict` use it: the signature read
//! from the graph, the model loaded against it, the case's inputs run, the outputs compared with
//! the case's within the backend tests' own tolerance (rtol 1e-3, atol 1e-7). `cargo xtask
//! onnx-backend` fetches the cases and runs this with each runtime.
//!
//! Usage: `onnx_backend NODE_DIR [--ort-lib PATH] [--failures FILE] [--passed FILE]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tiffin_manifest::{DType, ModelFormat};
use tiffin_runtime::{LoadOptions, Model, ModelSource, Runtime, Tensor, TensorData};
use tract_onnx::pb::TensorProto;

/// What became of one case.
enum Outcome {
    Passed,
    /// An input or output JSON cannot carry (sequences, maps, optionals, bfloat16, float8,
    /// complex, 4-bit integers): outside what a tiffin package can declare.
    NotCarried,
    Failed(&'static str, String),
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!(
            "usage: onnx_backend NODE_DIR [--ort-lib PATH] [--failures FILE] [--passed FILE]"
        );
        std::process::exit(2);
    };
    let mut runtime = Runtime::Tract;
    let mut failures_file = None;
    let mut passed_file = None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--ort-lib", Some(path)) => {
                runtime = Runtime::Ort {
                    library: path.into(),
                }
            }
            ("--failures", Some(path)) => failures_file = Some(PathBuf::from(path)),
            ("--passed", Some(path)) => passed_file = Some(PathBuf::from(path)),
            _ => {
                eprintln!("unknown argument {arg}");
                std::process::exit(2);
            }
        }
    }
    let options = LoadOptions::default()
        .with_plan_cache(0)
        .with_runtime(runtime.clone());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();
    let (mut passed, mut not_carried) = (Vec::new(), 0);
    let mut failed: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        match run_case(case, &options) {
            Outcome::Passed => passed.push(name),
            Outcome::NotCarried => not_carried += 1,
            Outcome::Failed(stage, reason) => {
                let mut reason = reason.replace('\n', " ");
                reason.truncate(300);
                failed
                    .entry(stage)
                    .or_default()
                    .push(format!("{name}: {reason}"));
            }
        }
    }
    let carried = cases.len() - not_carried;
    println!(
        "{}: {} cases, {not_carried} with inputs or outputs JSON cannot carry; of the {carried} others {} passed ({:.1}%)",
        runtime.name(),
        cases.len(),
        passed.len(),
        100.0 * passed.len() as f64 / carried.max(1) as f64
    );
    for (stage, list) in &failed {
        println!("  failed at {stage}: {}", list.len());
    }
    if let Some(file) = passed_file {
        let text: String = passed.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&file, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    }
    if let Some(file) = failures_file {
        let text: String = failed
            .iter()
            .flat_map(|(stage, list)| list.iter().map(move |l| format!("{stage}\t{l}\n")))
            .collect();
        std::fs::write(&file, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    }
}

fn run_case(case: &Path, options: &LoadOptions) -> Outcome {
    let data = case.join("test_data_set_0");
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for (prefix, list) in [("input_", &mut inputs), ("output_", &mut outputs)] {
        for ix in 0.. {
            let path = data.join(format!("{prefix}{ix}.pb"));
            let Ok(bytes) = std::fs::read(&path) else {
                break;
            };
            match tensor(&bytes) {
                Ok(t) => list.push(t),
                Err(_) => return Outcome::NotCarried,
            }
        }
    }
    let source = ModelSource::File(case.join("model.onnx"));
    let signature = match tiffin_runtime::graph_signature(&source, ModelFormat::Onnx) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed("init (reading the signature)", e.to_string()),
    };
    if signature.inputs.len() != inputs.len() || signature.outputs.len() != outputs.len() {
        // Optional inputs left out, or optional outputs.
        return Outcome::NotCarried;
    }
    let model = match Model::load(&source, ModelFormat::Onnx, &signature, options) {
        Ok(m) => m,
        Err(e) => return Outcome::Failed("load", e.to_string()),
    };
    // The test data's tensors come in the graph's order; the signature's may be concretized
    // differently, so the data's own shapes are what is run.
    let got = match model.run(&inputs) {
        Ok(got) => got,
        Err(e) => return Outcome::Failed("predict", e.to_string()),
    };
    for ((got, want), spec) in got.iter().zip(&outputs).zip(&signature.outputs) {
        if let Some(problem) = differs(got, want) {
            return Outcome::Failed("comparison", format!("output `{}`: {problem}", spec.name));
        }
    }
    Outcome::Passed
}

/// A TensorProto as a tiffin tensor, or why JSON cannot carry it.
fn tensor(bytes: &[u8]) -> Result<Tensor, String> {
    let t = TensorProto::decode(bytes).map_err(|_| "not a tensor (a sequence or optional)")?;
    let dtype = match t.data_type {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        8 => DType::String,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        other => return Err(format!("ONNX data type {other}")),
    };
    // A sequence or optional decodes as a tensor of nonsense dims: refused as not carried.
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or("negative dims")?;
    let n = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= 1 << 28)
        .ok_or("a sequence or optional")?;
    let data = if dtype == DType::String {
        TensorData::String(
            t.string_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        )
    } else if !t.raw_data.is_empty() {
        TensorData::from_le_bytes(dtype, &t.raw_data)?
    } else {
        typed_fields(dtype, &t)
    };
    if data.len() != n {
        return Err(format!("{} values for shape {shape:?}", data.len()));
    }
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// The values of a TensorProto kept in its typed fields rather than `raw_data`.
fn typed_fields(dtype: DType, t: &TensorProto) -> TensorData {
    let ints = &t.int32_data;
    match dtype {
        DType::F32 => TensorData::F32(t.float_data.clone()),
        DType::F64 => TensorData::F64(t.double_data.clone()),
        DType::I64 => TensorData::I64(t.int64_data.clone()),
        DType::I32 => TensorData::I32(ints.clone()),
        DType::I16 => TensorData::I16(ints.iter().map(|&v| v as i16).collect()),
        DType::I8 => TensorData::I8(ints.iter().map(|&v| v as i8).collect()),
        DType::U8 => TensorData::U8(ints.iter().map(|&v| v as u8).collect()),
        DType::U16 => TensorData::U16(ints.iter().map(|&v| v as u16).collect()),
        DType::Bool => TensorData::Bool(ints.iter().map(|&v| v != 0).collect()),
        DType::F16 => TensorData::F16(
            ints.iter()
                .map(|&v| tiffin_runtime::f16::from_bits(v as u16))
                .collect(),
        ),
        DType::U32 => TensorData::U32(t.uint64_data.iter().map(|&v| v as u32).collect()),
        DType::U64 => TensorData::U64(t.uint64_data.clone()),
        DType::String => TensorData::String(Vec::new()),
    }
}

/// How `got` differs from `want`, or `None`: same dtype and shape, floats within rtol 1e-3 and
/// atol 1e-7 (NaN equal to NaN), everything else equal.
fn differs(got: &Tensor, want: &Tensor) -> Option<String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Some(format!(
            "{} {:?} where {} {:?} is expected",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    let close = |g: f64, w: f64| {
        (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-7 + 1e-3 * w.abs()
    };
    let floats: Option<(Vec<f64>, Vec<f64>)> = match (got.data(), want.data()) {
        (TensorData::F32(g), TensorData::F32(w)) => Some((
            g.iter().map(|&v| f64::from(v)).collect(),
            w.iter().map(|&v| f64::from(v)).collect(),
        )),
        (TensorData::F64(g), TensorData::F64(w)) => Some((g.clone(), w.clone())),
        (TensorData::F16(g), TensorData::F16(w)) => Some((
            g.iter().map(|v| f64::from(v.to_f32())).collect(),
            w.iter().map(|v| f64::from(v.to_f32())).collect(),
        )),
        _ => None,
    };
    match floats {
        Some((g, w)) => g
            .iter()
            .zip(&w)
            .position(|(&g, &w)| !close(g, w))
            .map(|i| format!("[{i}] is {}, expected {}", g[i], w[i])),
        None => (got.data() != want.data()).then(|| "values differ".to_owned()),
    }
}
