//! Golden examples: the example inputs a package keeps, the outputs the model gave for them when
//! packed, and the comparison `verify` and `convert` run against them; and parity, the
//! comparison of the packaged model's outputs with the original model's (`[examples] expected`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
#[cfg(feature = "run")]
use tiffin_manifest::{Compare, DType, ParityTolerance, TensorSpec};
use tiffin_manifest::{ParityResult, Signature, Tolerance};
#[cfg(feature = "run")]
use tiffin_runtime::{Tensor, TensorData};

/// Package path of the stored example inputs.
pub const INPUTS_FILE: &str = "examples/inputs.json";
/// Package path of the stored golden outputs.
pub const OUTPUTS_FILE: &str = "examples/outputs.json";
/// Package path of the original model's outputs on the example inputs.
pub const EXPECTED_FILE: &str = "examples/expected.json";

#[cfg(feature = "run")]
/// The spec an original output is read with: floats as f64, the precision the original
/// framework computed them in (a float64 probability is no f32 without rounding, which the
/// payload decoder rightly refuses), everything else as declared.
fn expected_spec(spec: &TensorSpec) -> TensorSpec {
    let mut spec = spec.clone();
    if matches!(spec.dtype, DType::F16 | DType::F32 | DType::F64) {
        spec.dtype = DType::F64;
    }
    spec
}

#[cfg(feature = "run")]
/// Decodes the original model's outputs, `{"OUTPUT": value, ...}` (nested lists, or the explicit
/// `{"dtype", "shape", "data"}` form this module writes), any subset of the outputs, in
/// signature order.
pub fn decode_expected(
    sig: &Signature,
    payload: &serde_json::Value,
) -> Result<Vec<(String, Tensor)>, String> {
    let serde_json::Value::Object(map) = payload else {
        return Err(
            "expected a JSON object keyed by output name, e.g. {\"probabilities\": [[...]]}"
                .to_owned(),
        );
    };
    let outputs: Vec<&str> = sig.outputs.iter().map(|o| o.name.as_str()).collect();
    if let Some(unknown) = map.keys().find(|k| sig.output(k).is_none()) {
        return Err(format!(
            "`{unknown}` is not an output of the signature: use one of {outputs:?}"
        ));
    }
    if map.is_empty() {
        return Err(format!(
            "names no output: give the original model's value of one or more of {outputs:?}"
        ));
    }
    sig.outputs
        .iter()
        .filter_map(|spec| map.get(&spec.name).map(|value| (spec, value)))
        .map(|(spec, value)| {
            let output = |message: &str| {
                // The payload decoder speaks of inputs; these are the original model's outputs.
                let message = message
                    .strip_prefix(&format!("input `{}`: ", spec.name))
                    .unwrap_or(message);
                format!("output `{}`: {message}", spec.name)
            };
            let decoded = match explicit_float(spec, value) {
                // The explicit form of a float output in its own float dtype (f32, say),
                // widened exactly to the f64 the comparison reads.
                Some(tensor) => tensor.map_err(|e| output(&e)),
                None => crate::payload::decode_tensor(&expected_spec(spec), value)
                    .map_err(|e| output(&e.message)),
            };
            decoded.map(|t| (spec.name.clone(), t))
        })
        .collect()
}

#[cfg(feature = "run")]
/// A float output's value given in the explicit `{"dtype", "shape", "data"}` form with a float
/// dtype, as f64; `None` for any other value (decoded as the declared dtype).
fn explicit_float(spec: &TensorSpec, value: &serde_json::Value) -> Option<Result<Tensor, String>> {
    let serde_json::Value::Object(fields) = value else {
        return None;
    };
    let float = |d: Option<&str>| matches!(d, Some("f16" | "f32" | "f64"));
    if !matches!(spec.dtype, DType::F16 | DType::F32 | DType::F64)
        || !fields.contains_key("shape")
        || !float(fields.get("dtype").and_then(|d| d.as_str()))
    {
        return None;
    }
    let decoded = serde_json::from_value::<Tensor>(value.clone()).map_err(|e| e.to_string());
    Some(decoded.and_then(|t| {
        let (shape, data) = t.into_parts();
        let wide = match data {
            TensorData::F16(v) => v.iter().map(|x| f64::from(x.to_f32())).collect(),
            TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::F64(v) => v,
            other => return Err(format!("{} is not a float dtype", other.dtype())),
        };
        Tensor::new(shape, TensorData::F64(wide)).map_err(|e| e.to_string())
    }))
}

#[cfg(feature = "run")]
/// Compares the packaged model's outputs (`actual`, in signature order) with the original
/// model's, output by output, each held to its parity tolerance (the author's, else the default
/// for its dtype). A shape that differs is an error: nothing can be compared.
pub fn parity(
    sig: &Signature,
    tolerances: &BTreeMap<String, ParityTolerance>,
    expected: &[(String, Tensor)],
    actual: &[Tensor],
) -> Result<BTreeMap<String, ParityResult>, String> {
    let mut out = BTreeMap::new();
    for (name, original) in expected {
        let Some(index) = sig.outputs.iter().position(|o| &o.name == name) else {
            return Err(format!("`{name}` is not an output of the signature"));
        };
        let spec = &sig.outputs[index];
        let packaged = actual
            .get(index)
            .ok_or_else(|| format!("the model gave no output `{name}`"))?;
        if original.shape() != packaged.shape() {
            return Err(format!(
                "output `{name}`: the original model's has shape {:?}, the packaged model's {:?}",
                original.shape(),
                packaged.shape()
            ));
        }
        let tolerance = tolerances
            .get(name)
            .cloned()
            .unwrap_or_else(|| ParityTolerance::default_for(spec.dtype));
        let mut result = ParityResult {
            tolerance: tolerance.clone(),
            compared: 0,
            mismatches: 0,
            max_abs: 0.0,
            max_rel: 0.0,
        };
        match (floats(original), floats(packaged)) {
            (Some(o), Some(p)) => {
                let values = tolerance.values();
                for (&o, &p) in o.iter().zip(&p) {
                    if !values.allows(o, p) {
                        result.mismatches += 1;
                    }
                    // The figures cover values finite in both; a NaN or an infinity that
                    // disagrees is a mismatch above, not a number here.
                    if o.is_finite() && p.is_finite() {
                        let diff = (p - o).abs();
                        result.max_abs = result.max_abs.max(diff);
                        if o != 0.0 {
                            result.max_rel = result.max_rel.max(diff / o.abs());
                        }
                    }
                }
                result.compared = o.len() as u64;
                result.max_abs = tiffin_manifest::recorded_difference(result.max_abs);
                result.max_rel = tiffin_manifest::recorded_difference(result.max_rel);
            }
            (None, None) => {
                result.compared = original.data().len() as u64;
                result.mismatches = count_differences(original.data(), packaged.data()) as u64;
            }
            _ => {
                return Err(format!(
                    "output `{name}`: the original model's is {}, the packaged model's {}",
                    original.dtype().as_str(),
                    packaged.dtype().as_str()
                ));
            }
        }
        out.insert(name.clone(), result);
    }
    Ok(out)
}

/// The parity comparison as a table for people: one row per output.
pub fn parity_table(results: &BTreeMap<String, ParityResult>) -> String {
    let rows = parity_rows(results);
    let widths: Vec<usize> = (0..PARITY_COLUMNS)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(feature = "run")]
/// The parity comparison as a Markdown table (for the model card), the same rows as
/// [`parity_table`]. Output names are code spans, so a name cannot break out of its cell.
pub(crate) fn parity_markdown(results: &BTreeMap<String, ParityResult>) -> String {
    let rows = parity_rows(results);
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if i > 0 && c == 0 {
                    format!("`{}`", cell.replace(['`', '|', '\n'], "_"))
                } else {
                    cell.clone()
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(PARITY_COLUMNS));
        }
    }
    out
}

const PARITY_COLUMNS: usize = 7;

/// The header and one row per output of the parity tables.
fn parity_rows(results: &BTreeMap<String, ParityResult>) -> Vec<[String; PARITY_COLUMNS]> {
    let mut rows = vec![[
        "output".to_owned(),
        "agreement".to_owned(),
        "outside".to_owned(),
        "max abs".to_owned(),
        "max rel".to_owned(),
        "tolerance".to_owned(),
        "result".to_owned(),
    ]];
    for (name, r) in results {
        let t = &r.tolerance;
        let tolerance = if t.abs == 0.0 && t.rel == 0.0 {
            "exact".to_owned()
        } else {
            format!("abs {:e} + rel {:e}", t.abs, t.rel)
        };
        let tolerance = if t.min_agreement < 1.0 {
            format!("{tolerance}, min agreement {}", percent(t.min_agreement))
        } else {
            tolerance
        };
        rows.push([
            name.clone(),
            percent(r.agreement()),
            format!("{} of {}", r.mismatches, r.compared),
            format!("{:.2e}", r.max_abs),
            format!("{:.2e}", r.max_rel),
            tolerance,
            if r.passed() { "ok" } else { "FAILED" }.to_owned(),
        ]);
    }
    rows
}

/// A share as a percentage: `100%`, `99.5%`, `87.5%`.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == p.round() {
        format!("{p:.0}%")
    } else {
        format!("{}%", format!("{p:.2}").trim_end_matches('0'))
    }
}

/// How far one output moved from its golden value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// The output's name.
    pub output: String,
    /// The tolerance it was held to.
    pub tolerance: Tolerance,
    /// Largest absolute difference over all values (0 for exact outputs that match).
    pub max_abs: f64,
    /// Largest difference relative to the golden value's magnitude (over non-zero golden values).
    pub max_rel: f64,
    /// Values (or rows, for argmax and top_k) outside the tolerance.
    pub mismatches: usize,
    /// Values (or rows) compared.
    pub compared: usize,
    /// Why the output could not be compared at all (wrong dtype or shape), if so.
    pub problem: Option<String>,
}

impl Drift {
    /// True when the output is within its tolerance.
    pub fn passed(&self) -> bool {
        self.problem.is_none() && self.mismatches == 0
    }
}

#[cfg(feature = "run")]
/// The names of the tensors of a signature list, in order.
pub fn tensor_names(specs: &[tiffin_manifest::TensorSpec]) -> Vec<&str> {
    specs.iter().map(|s| s.name.as_str()).collect()
}

#[cfg(feature = "run")]
/// Writes tensors as the JSON object `{"NAME": {"dtype", "shape", "data"}}`, keys sorted, pretty.
pub fn write_tensors(names: &[&str], tensors: &[Tensor]) -> Vec<u8> {
    let map: BTreeMap<&str, &Tensor> = names.iter().copied().zip(tensors).collect();
    let mut bytes = serde_json::to_vec_pretty(&map).expect("tensors always serialize");
    bytes.push(b'\n');
    bytes
}

#[cfg(feature = "run")]
/// Reads tensors written by [`write_tensors`], in the order of `names`.
pub fn read_tensors(bytes: &[u8], names: &[&str]) -> Result<Vec<Tensor>, String> {
    let mut map: BTreeMap<String, Tensor> =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    names
        .iter()
        .map(|name| {
            map.remove(*name)
                .ok_or_else(|| format!("no tensor named `{name}`"))
        })
        .collect()
}

/// The tolerance of each output: the author's, else exact for non-float dtypes and the default
/// for floats.
pub fn tolerances(
    sig: &Signature,
    given: &BTreeMap<String, Tolerance>,
) -> BTreeMap<String, Tolerance> {
    sig.outputs
        .iter()
        .map(|o| {
            let t = given
                .get(&o.name)
                .cloned()
                .unwrap_or_else(|| Tolerance::default_for(o.dtype));
            (o.name.clone(), t)
        })
        .collect()
}

#[cfg(feature = "run")]
/// Compares each output with its golden value, in signature order.
pub fn compare(
    sig: &Signature,
    tolerances: &BTreeMap<String, Tolerance>,
    golden: &[Tensor],
    actual: &[Tensor],
) -> Vec<Drift> {
    sig.outputs
        .iter()
        .zip(golden.iter().zip(actual))
        .map(|(spec, (g, a))| {
            let tolerance = tolerances
                .get(&spec.name)
                .cloned()
                .unwrap_or_else(|| Tolerance::default_for(spec.dtype));
            compare_one(&spec.name, tolerance, g, a)
        })
        .collect()
}

#[cfg(feature = "run")]
fn floats(t: &Tensor) -> Option<Vec<f64>> {
    match t.data() {
        TensorData::F16(v) => Some(v.iter().map(|x| x.to_f64()).collect()),
        TensorData::F32(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
        TensorData::F64(v) => Some(v.clone()),
        _ => None,
    }
}

#[cfg(feature = "run")]
fn compare_one(name: &str, tolerance: Tolerance, golden: &Tensor, actual: &Tensor) -> Drift {
    let mut drift = Drift {
        output: name.to_owned(),
        tolerance: tolerance.clone(),
        max_abs: 0.0,
        max_rel: 0.0,
        mismatches: 0,
        compared: 0,
        problem: None,
    };
    if golden.dtype() != actual.dtype() || golden.shape() != actual.shape() {
        drift.problem = Some(format!("expected {golden}, got {actual}"));
        return drift;
    }
    let (Some(g), Some(a)) = (floats(golden), floats(actual)) else {
        // Integers, booleans and strings: exact, value by value.
        drift.compared = golden.data().len();
        drift.mismatches = count_differences(golden.data(), actual.data());
        drift.max_abs = if drift.mismatches == 0 {
            0.0
        } else {
            f64::INFINITY
        };
        return drift;
    };
    for (&g, &a) in g.iter().zip(&a) {
        // Equal values (equal infinities too) and two NaNs differ by nothing; a NaN against a
        // number, or infinity against anything else, by an infinite amount.
        let same = g == a || (g.is_nan() && a.is_nan());
        let diff = if same { 0.0 } else { (a - g).abs() };
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        drift.max_abs = drift.max_abs.max(diff);
        if g != 0.0 && g.is_finite() {
            drift.max_rel = drift.max_rel.max(diff / g.abs());
        }
        if tolerance.compare == Compare::Values && !tolerance.allows(g, a) {
            drift.mismatches += 1;
        }
    }
    drift.compared = g.len();
    if tolerance.compare != Compare::Values {
        let width = golden.shape().last().copied().unwrap_or(1).max(1);
        let k = match tolerance.compare {
            Compare::TopK => tolerance.k.unwrap_or(1) as usize,
            _ => 1,
        };
        drift.compared = g.len() / width;
        drift.mismatches = g
            .chunks(width)
            .zip(a.chunks(width))
            .filter(|(g, a)| top_k(g, k) != top_k(a, k))
            .count();
    }
    drift
}

#[cfg(feature = "run")]
fn count_differences(golden: &TensorData, actual: &TensorData) -> usize {
    let g = golden.to_json();
    let a = actual.to_json();
    g.iter().zip(&a).filter(|(g, a)| g != a).count()
}

#[cfg(feature = "run")]
/// Indices of the `k` largest values, sorted, ties broken by the lower index.
fn top_k(row: &[f64], k: usize) -> Vec<usize> {
    let mut idx = ranked(row, k);
    idx.sort_unstable();
    idx
}

/// Indices of the `k` largest values of `row`, largest first; equal values keep their order
/// (the lower index first). What a top-k check and a classification answer both rank by.
pub fn ranked(row: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
    idx.truncate(k);
    idx
}

#[cfg(all(test, feature = "run"))]
mod tests {
    use super::*;

    fn f32s(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor::new(shape, TensorData::F32(v)).unwrap()
    }

    #[test]
    fn values_within_abs_and_rel_pass() {
        let t = Tolerance {
            abs: 1e-3,
            rel: 0.0,
            ..Tolerance::default()
        };
        let d = compare_one(
            "p",
            t.clone(),
            &f32s(vec![2], vec![1.0, 2.0]),
            &f32s(vec![2], vec![1.0005, 2.0]),
        );
        assert!(d.passed() && (d.max_abs - 5e-4).abs() < 1e-6, "{d:?}");
        let d = compare_one(
            "p",
            t,
            &f32s(vec![2], vec![1.0, 2.0]),
            &f32s(vec![2], vec![1.01, 2.0]),
        );
        assert_eq!((d.passed(), d.mismatches, d.compared), (false, 1, 2));
    }

    /// A regression output in the hundreds moved by one f32 ulp (what another CPU's kernels
    /// give) passes the default tolerance; the same output off by 1e-3 relative does not.
    #[test]
    fn the_default_tolerance_scales_with_large_outputs() {
        let golden = f32s(vec![3], vec![152.0, -0.25, 2048.5]);
        let ulp = |x: f32| f32::from_bits(x.to_bits() + 1);
        let moved = f32s(vec![3], vec![ulp(152.0), -0.25, ulp(2048.5)]);
        let d = compare_one("y", Tolerance::default(), &golden, &moved);
        assert!(d.passed() && d.max_abs > Tolerance::default().abs, "{d:?}");
        let wrong = f32s(vec![3], vec![152.0 * 1.001, -0.25, 2048.5]);
        let d = compare_one("y", Tolerance::default(), &golden, &wrong);
        assert_eq!((d.passed(), d.mismatches), (false, 1), "{d:?}");
    }

    /// An infinite golden value matches only the same infinity, whatever the relative part.
    #[test]
    fn infinities_match_only_themselves() {
        let golden = f32s(vec![2], vec![f32::INFINITY, 1.0]);
        let d = compare_one("y", Tolerance::default(), &golden, &golden.clone());
        assert!(d.passed() && d.max_abs == 0.0, "{d:?}");
        let finite = f32s(vec![2], vec![f32::MAX, 1.0]);
        let d = compare_one("y", Tolerance::default(), &golden, &finite);
        assert_eq!((d.passed(), d.mismatches), (false, 1), "{d:?}");
    }

    #[test]
    fn argmax_and_top_k_compare_rows() {
        let argmax = Tolerance {
            compare: Compare::Argmax,
            ..Tolerance::default()
        };
        let g = f32s(vec![2, 3], vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2]);
        let moved = f32s(vec![2, 3], vec![0.1, 0.6, 0.3, 0.3, 0.5, 0.2]);
        let d = compare_one("p", argmax, &g, &moved);
        assert_eq!((d.mismatches, d.compared), (1, 2));
        let top2 = Tolerance {
            compare: Compare::TopK,
            k: Some(2),
            ..Tolerance::default()
        };
        assert!(compare_one("p", top2, &g, &moved).passed());
    }

    #[test]
    fn labels_are_exact_and_shapes_must_agree() {
        let g = Tensor::new(vec![3], TensorData::I64(vec![0, 1, 1])).unwrap();
        let a = Tensor::new(vec![3], TensorData::I64(vec![0, 0, 1])).unwrap();
        let d = compare_one("label", Tolerance::exact(), &g, &a);
        assert_eq!((d.mismatches, d.compared), (1, 3));
        let d = compare_one(
            "label",
            Tolerance::exact(),
            &g,
            &f32s(vec![3], vec![0.0; 3]),
        );
        assert_eq!(d.problem.as_deref(), Some("expected i64 [3], got f32 [3]"));
    }

    #[test]
    fn tensor_files_round_trip() {
        let t = f32s(vec![1, 2], vec![0.5, 0.25]);
        let bytes = write_tensors(&["X"], std::slice::from_ref(&t));
        assert_eq!(read_tensors(&bytes, &["X"]).unwrap(), vec![t]);
        assert_eq!(
            read_tensors(&bytes, &["Y"]).unwrap_err(),
            "no tensor named `Y`"
        );
    }

    fn sig() -> Signature {
        serde_json::from_value(serde_json::json!({
            "inputs": [{"name": "X", "dtype": "f32", "shape": ["batch", 2]}],
            "outputs": [
                {"name": "label", "dtype": "i64", "shape": ["batch"]},
                {"name": "y", "dtype": "f32", "shape": ["batch"]}
            ]
        }))
        .unwrap()
    }

    fn actual() -> Vec<Tensor> {
        vec![
            Tensor::new(vec![4], TensorData::I64(vec![0, 1, 1, 0])).unwrap(),
            // A regression output in the hundreds, as a float32 export computes it.
            f32s(vec![4], vec![153.25, -0.5, 1e-7, 0.0]),
        ]
    }

    #[test]
    fn float64_originals_meet_float32_exports_within_abs_plus_rel() {
        let sig = sig();
        // The float64 values the original model gave: 1e-5 off at 153 (6.5e-8 relative, what
        // a Ridge export shows) passes the default abs 1e-6 + rel 1e-6 of |original|.
        let expected = decode_expected(
            &sig,
            &serde_json::json!({"y": [153.25001, -0.5, 1.000000001e-7, 0.0], "label": [0, 1, 1, 0]}),
        )
        .unwrap();
        assert_eq!(expected[0].0, "label", "signature order");
        assert_eq!(expected[1].1.dtype(), DType::F64);
        let results = parity(&sig, &BTreeMap::new(), &expected, &actual()).unwrap();
        let y = &results["y"];
        assert_eq!((y.compared, y.mismatches), (4, 0), "{y:?}");
        assert!((y.max_abs - 1e-5).abs() < 1e-7, "{y:?}");
        assert!(results["label"].passed());
        assert_eq!(results["label"].tolerance.abs, 0.0);

        // 1e-3 off fails, and the table says so.
        let expected =
            decode_expected(&sig, &serde_json::json!({"y": [153.251, -0.5, 1e-7, 0.0]})).unwrap();
        let results = parity(&sig, &BTreeMap::new(), &expected, &actual()).unwrap();
        assert!(!results["y"].passed());
        let table = parity_table(&results);
        assert!(
            table.contains("1 of 4") && table.contains("FAILED"),
            "{table}"
        );
        assert!(
            !results.contains_key("label"),
            "only the outputs given are compared"
        );
    }

    /// The explicit tensor form in a float output's own dtype is widened to f64 exactly; a
    /// wrong one is refused naming the output, as an output.
    #[test]
    fn explicit_float_outputs_are_taken_in_any_float_dtype() {
        let sig = sig();
        let f32_form = serde_json::json!({"y": {"dtype": "f32", "shape": [4], "data": [153.25, -0.5, 1e-7, 0.0]}});
        let expected = decode_expected(&sig, &f32_form).unwrap();
        let TensorData::F64(values) = expected[0].1.data() else {
            panic!("widened to f64")
        };
        assert_eq!(values[..2], [153.25, -0.5]);
        assert_eq!(values[2], f64::from(1e-7f32));
        let results = parity(&sig, &BTreeMap::new(), &expected, &actual()).unwrap();
        assert!(results["y"].passed(), "{:?}", results["y"]);
        let ints = serde_json::json!({"y": {"dtype": "i64", "shape": [1], "data": [1]}});
        let error = decode_expected(&sig, &ints).unwrap_err();
        assert!(error.starts_with("output `y`: "), "{error}");
    }

    #[test]
    fn parity_refuses_what_cannot_be_compared() {
        let sig = sig();
        let short = decode_expected(&sig, &serde_json::json!({"y": [1.0, 2.0]})).unwrap();
        let error = parity(&sig, &BTreeMap::new(), &short, &actual()).unwrap_err();
        assert!(
            error.contains("shape [2]") && error.contains("[4]"),
            "{error}"
        );
        assert!(
            decode_expected(&sig, &serde_json::json!({"z": [1.0]}))
                .unwrap_err()
                .contains("`z` is not an output")
        );
        assert!(decode_expected(&sig, &serde_json::json!([1.0])).is_err());
        assert!(decode_expected(&sig, &serde_json::json!({})).is_err());
        // A NaN the original gave agrees only with a NaN; the figures skip it.
        let nan = Tensor::new(vec![4], TensorData::F64(vec![f64::NAN, -0.5, 1e-7, 0.0])).unwrap();
        let results = parity(&sig, &BTreeMap::new(), &[("y".to_owned(), nan)], &actual()).unwrap();
        assert_eq!(results["y"].mismatches, 1);
        assert!(results["y"].max_abs.is_finite());
    }
}
