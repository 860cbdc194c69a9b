//! Golden examples: the example inputs a package keeps, the outputs the model gave for them when
//! packed, and the comparison `verify` and `convert` run against them.

use std::collections::BTreeMap;

use serde::Serialize;
use tiffin_manifest::{Compare, Signature, Tolerance};
use tiffin_runtime::{Tensor, TensorData};

/// Package path of the stored example inputs.
pub const INPUTS_FILE: &str = "examples/inputs.json";
/// Package path of the stored golden outputs.
pub const OUTPUTS_FILE: &str = "examples/outputs.json";

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

/// The names of the tensors of a signature list, in order.
pub(crate) fn tensor_names(specs: &[tiffin_manifest::TensorSpec]) -> Vec<&str> {
    specs.iter().map(|s| s.name.as_str()).collect()
}

/// Writes tensors as the JSON object `{"NAME": {"dtype", "shape", "data"}}`, keys sorted, pretty.
pub fn write_tensors(names: &[&str], tensors: &[Tensor]) -> Vec<u8> {
    let map: BTreeMap<&str, &Tensor> = names.iter().copied().zip(tensors).collect();
    let mut bytes = serde_json::to_vec_pretty(&map).expect("tensors always serialize");
    bytes.push(b'\n');
    bytes
}

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

fn floats(t: &Tensor) -> Option<Vec<f64>> {
    match t.data() {
        TensorData::F16(v) => Some(v.iter().map(|x| x.to_f64()).collect()),
        TensorData::F32(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
        TensorData::F64(v) => Some(v.clone()),
        _ => None,
    }
}

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

fn count_differences(golden: &TensorData, actual: &TensorData) -> usize {
    let g = golden.to_json();
    let a = actual.to_json();
    g.iter().zip(&a).filter(|(g, a)| g != a).count()
}

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

#[cfg(test)]
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
}
