//! Golden examples: inputs kept in the package with the outputs the model gave at pack time, and
//! how closely a rerun must match them; and parity: the outputs the ORIGINAL model (before its
//! export) gave on the same inputs, and how closely the packaged model agreed with them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::Problems;
use crate::{DType, Framework, Signature};

/// The `[examples]` table of `tiffin.toml`: example inputs to run at pack time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExamplesSpec {
    /// JSON file of example inputs, relative to the folder of `tiffin.toml`, e.g.
    /// `"examples.json"`. Any payload form `tiffin predict` takes: `{"X": [[...]]}`, named
    /// inputs, or records with feature names `[{"mean radius": 17.9, ...}]`.
    pub inputs: String,
    /// Tolerances per output name, e.g. `[examples.tolerance.probabilities] abs = 1e-4`.
    /// Outputs not listed get the default (`abs = 1e-5`, `rel = 1e-4`, compare values); integer,
    /// boolean and string outputs are always compared exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tolerance: BTreeMap<String, Tolerance>,
    /// JSON file of the outputs the original model (the trained one, before its export)
    /// gave on these inputs, relative to the folder of `tiffin.toml`, e.g. `"expected.json"`:
    /// `{"OUTPUT": [...], ...}` keyed by output name, any subset of the outputs. `pack` runs the
    /// packaged model on the inputs, compares, records the comparison in the manifest and refuses
    /// past the parity tolerance: the evidence that the export was faithful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The framework that computed the expected outputs, e.g.
    /// `{ name = "scikit-learn", version = "1.8.0" }` [default: the `[framework]` table].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_from: Option<Framework>,
    /// Parity tolerance per output name, e.g. `[examples.parity.probabilities] abs = 1e-6`.
    /// Outputs not listed get `abs = 1e-6`, `rel = 1e-6` for floats and exact agreement for
    /// labels and other integers, strings and booleans.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parity: BTreeMap<String, ParityTolerance>,
}

/// How closely the packaged model must agree with the original model's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParityTolerance {
    /// Absolute part of the allowed difference of a float value, e.g. `1e-6`.
    #[serde(default = "default_parity_abs")]
    pub abs: f64,
    /// Relative part, a fraction of the original value, e.g. `1e-6`: a float32 export of a
    /// float64 regression meets about 1e-7 relative where it misses 1e-6 absolute.
    #[serde(default = "default_parity_rel")]
    pub rel: f64,
    /// The share of values that must agree, from 0 to 1 (default 1: all of them). Below 1 only
    /// where a known cause allows it, such as a float32 tree threshold sending a value on the
    /// other side of a split; the share met is recorded and shown, never silent.
    #[serde(default = "default_agreement")]
    pub min_agreement: f64,
}

fn default_parity_abs() -> f64 {
    1e-6
}

fn default_parity_rel() -> f64 {
    1e-6
}

fn default_agreement() -> f64 {
    1.0
}

impl Default for ParityTolerance {
    fn default() -> Self {
        ParityTolerance {
            abs: default_parity_abs(),
            rel: default_parity_rel(),
            min_agreement: default_agreement(),
        }
    }
}

impl ParityTolerance {
    /// The tolerance an output gets when its author named none: exact for non-float dtypes.
    pub fn default_for(dtype: DType) -> Self {
        match dtype {
            DType::F16 | DType::F32 | DType::F64 => ParityTolerance::default(),
            _ => ParityTolerance {
                abs: 0.0,
                rel: 0.0,
                min_agreement: 1.0,
            },
        }
    }

    /// The per-value comparison: `|actual - original| <= abs + rel * |original|`.
    pub fn values(&self) -> Tolerance {
        Tolerance::within(self.abs, self.rel)
    }
}

/// The `examples.parity` of a packed manifest: the original model's outputs and how the
/// packaged model compared with them when packed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    /// Package path of the original model's outputs on the example inputs, e.g.
    /// `"examples/expected.json"`: an object mapping output names to tensors (floats as f64,
    /// as the original framework computed them).
    pub expected: String,
    /// The framework that computed them, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Framework>,
    /// What `pack` measured, by output name.
    pub outputs: BTreeMap<String, ParityResult>,
}

/// One output's comparison with the original model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParityResult {
    /// The tolerance it was held to.
    pub tolerance: ParityTolerance,
    /// Values compared.
    pub compared: u64,
    /// Values outside the tolerance (for labels: values that differ).
    pub mismatches: u64,
    /// Largest absolute difference over the values that are finite in both (0 for labels), to
    /// three significant digits, 0 below 1e-15.
    pub max_abs: f64,
    /// Largest difference relative to the original value, over non-zero originals; recorded
    /// like `max_abs`.
    pub max_rel: f64,
}

/// A measured difference as the manifest records it: three significant digits, and 0 below
/// 1e-15 (far under any float32 or float64 tolerance).
///
/// A manifest must read back to the same bytes (its canonical form), and JSON parsers are fast
/// and exact only for numbers of few digits and a small exponent; a difference such as
/// 3.0517578125e-8 printed in full would not come back bit for bit. Three digits say all a
/// person or a check needs of a difference.
pub fn recorded_difference(x: f64) -> f64 {
    if x.is_nan() || x < 1e-15 {
        return 0.0;
    }
    let x = x.min(1e15);
    format!("{x:.2e}").parse().unwrap_or(x)
}

impl ParityResult {
    /// The share of values within the tolerance, 1 when nothing was compared.
    pub fn agreement(&self) -> f64 {
        if self.compared == 0 {
            1.0
        } else {
            1.0 - self.mismatches as f64 / self.compared as f64
        }
    }

    /// Whether the share of agreeing values meets `min_agreement`.
    pub fn passed(&self) -> bool {
        self.agreement() >= self.tolerance.min_agreement
    }
}

/// The `examples` of a packed manifest: where the golden inputs and outputs are, and the
/// tolerance of each output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    /// Package path of the example inputs, e.g. `"examples/inputs.json"`: an object mapping each
    /// input name to a tensor `{"dtype", "shape", "data"}`.
    pub inputs: String,
    /// Package path of the outputs the model gave for them when packed, in the same form.
    pub outputs: String,
    /// Tolerance of every output, by name.
    pub tolerance: BTreeMap<String, Tolerance>,
    /// The original model's outputs on the same inputs and the packaged model's agreement with
    /// them, when the author gave them (`[examples] expected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<Parity>,
}

/// How closely a rerun output must match its golden value. A float value `x` passes against the
/// golden `g` when `|x - g| <= abs + rel * |g|`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Absolute part of the allowed difference, e.g. `1e-5`.
    #[serde(default = "default_abs")]
    pub abs: f64,
    /// Relative part of the allowed difference, a fraction of the golden value, e.g. `1e-4`.
    #[serde(default = "default_rel")]
    pub rel: f64,
    /// What must agree: every value (`values`), the index of the largest value along the last
    /// dim (`argmax`), or the set of the `k` largest (`top_k`).
    #[serde(default)]
    pub compare: Compare,
    /// How many of the largest values must agree, with `compare = "top_k"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
}

/// What a [`Tolerance`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Every value, within `abs` and `rel`.
    #[default]
    Values,
    /// The index of the largest value along the last dim, for each row.
    Argmax,
    /// The indices of the `k` largest values along the last dim, for each row, in any order.
    TopK,
}

fn default_abs() -> f64 {
    1e-5
}

fn default_rel() -> f64 {
    1e-4
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance::within(default_abs(), default_rel())
    }
}

impl Tolerance {
    /// Values within `abs + rel * |golden|` of the golden value: the comparison for floats.
    pub const fn within(abs: f64, rel: f64) -> Self {
        Tolerance {
            abs,
            rel,
            compare: Compare::Values,
            k: None,
        }
    }

    /// Whether `actual` passes against `golden`: `|actual - golden| <= abs + rel * |golden|`.
    ///
    /// The relative part is what lets one tolerance hold at every magnitude: an f32 between 128
    /// and 256 cannot move by less than 2^-16 (1.5e-5), so an absolute 1e-5 alone would ask two
    /// kernels that round differently for bit equality. Two NaNs agree (a model may answer NaN
    /// by design); a NaN against a number, or infinities of different sign, never do.
    pub fn allows(&self, golden: f64, actual: f64) -> bool {
        if golden.is_nan() || actual.is_nan() {
            return golden.is_nan() && actual.is_nan();
        }
        if golden.is_infinite() || actual.is_infinite() {
            return golden == actual;
        }
        (actual - golden).abs() <= self.abs + self.rel * golden.abs()
    }

    /// Exact equality: what integer, boolean and string outputs get.
    pub const fn exact() -> Self {
        Tolerance::within(0.0, 0.0)
    }

    /// The tolerance an output gets when its author named none: exact for non-float dtypes.
    pub fn default_for(dtype: DType) -> Self {
        match dtype {
            DType::F16 | DType::F32 | DType::F64 => Tolerance::default(),
            _ => Tolerance::exact(),
        }
    }
}

/// What every tolerance table checks: the output `name` is in the signature, and its `abs` and
/// `rel` are numbers >= 0. Returns the field path of the output's table, for further checks.
fn check_output_bounds(
    problems: &mut Problems,
    field: &str,
    name: &str,
    (abs, rel): (f64, f64),
    signature: &Signature,
) -> String {
    let at = format!("{field}.{name}");
    if signature.output(name).is_none() {
        let outputs: Vec<&str> = signature.outputs.iter().map(|o| o.name.as_str()).collect();
        problems.push(
            &at,
            format!("`{name}` is not an output of the signature: use one of {outputs:?}"),
        );
    }
    for (part, value) in [("abs", abs), ("rel", rel)] {
        if !value.is_finite() || value < 0.0 {
            problems.push(
                format!("{at}.{part}"),
                format!("{value} is not a tolerance: use a number >= 0"),
            );
        }
    }
    at
}

/// Checks tolerances against the signature: known output names, sane numbers, `k` with `top_k`.
pub(crate) fn check_tolerances(
    problems: &mut Problems,
    field: &str,
    tolerances: &BTreeMap<String, Tolerance>,
    signature: &Signature,
) {
    for (name, t) in tolerances {
        let at = check_output_bounds(problems, field, name, (t.abs, t.rel), signature);
        match (t.compare, t.k) {
            (Compare::TopK, None | Some(0)) => {
                problems.push(format!("{at}.k"), "top_k needs k >= 1, e.g. k = 3");
            }
            (Compare::Values | Compare::Argmax, Some(_)) => {
                problems.push(
                    format!("{at}.k"),
                    "k only applies with compare = \"top_k\": remove it",
                );
            }
            _ => {}
        }
    }
}

/// Checks parity tolerances against the signature: known output names, sane numbers.
pub(crate) fn check_parity(
    problems: &mut Problems,
    field: &str,
    tolerances: &BTreeMap<String, ParityTolerance>,
    signature: &Signature,
) {
    for (name, t) in tolerances {
        let at = check_output_bounds(problems, field, name, (t.abs, t.rel), signature);
        if !(0.0..=1.0).contains(&t.min_agreement) {
            problems.push(
                format!("{at}.min_agreement"),
                format!(
                    "{} is not a share: use a number from 0 to 1, e.g. 0.99",
                    t.min_agreement
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_difference_grows_with_the_golden_value() {
        let t = Tolerance::within(1e-5, 1e-5);
        // One f32 ulp at 128..256 (2^-16) is over the absolute part alone, and passes.
        assert!(t.allows(200.0, 200.0 + f64::from(2f32.powi(-16))));
        assert!(t.allows(0.0, 1e-5));
        assert!(!t.allows(0.0, 2e-5));
        // An error of 1e-3 relative fails at every magnitude where the relative part rules.
        for golden in [0.5, 3.0, 200.0, -7e4] {
            assert!(!t.allows(golden, golden * (1.0 + 1e-3)), "{golden}");
        }
    }

    #[test]
    fn nan_agrees_only_with_nan_and_infinity_only_with_itself() {
        let t = Tolerance::within(1.0, 1.0);
        assert!(t.allows(f64::NAN, f64::NAN));
        assert!(!t.allows(f64::NAN, 0.0) && !t.allows(0.0, f64::NAN));
        assert!(t.allows(f64::INFINITY, f64::INFINITY));
        assert!(!t.allows(f64::INFINITY, f64::NEG_INFINITY));
        assert!(!t.allows(f64::INFINITY, 1e300) && !t.allows(1e300, f64::INFINITY));
    }

    #[test]
    fn recorded_differences_read_back_bit_for_bit() {
        let mut x = 3.0517578125e-17;
        while x < 1e16 {
            for scale in [1.0, 1.234_567, 3.999_999, 9.876_543_21] {
                let recorded = recorded_difference(x * scale);
                let text = serde_json::to_string(&recorded).unwrap();
                let back: f64 = serde_json::from_str(&text).unwrap();
                assert_eq!(back.to_bits(), recorded.to_bits(), "{x} * {scale}: {text}");
            }
            x *= 7.3;
        }
        assert_eq!(recorded_difference(1.234_567e-7), 1.23e-7);
        assert_eq!(recorded_difference(1e-17), 0.0);
    }

    #[test]
    fn exact_means_equal() {
        assert!(Tolerance::exact().allows(0.1, 0.1));
        assert!(!Tolerance::exact().allows(0.1, 0.1 + f64::EPSILON));
    }
}
