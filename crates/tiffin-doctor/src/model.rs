//! The rules that load the model: `signature` (the graph agrees with the declared signature,
//! dynamic dims have meaningful names, a real payload conforms and runs, the golden examples
//! still match) and `preprocessing` (heuristics for scaling done outside the model).

use std::collections::BTreeSet;
use std::path::Path;

use tiffin_manifest::{DType, Dim, Signature};
use tiffin_runtime::{LoadOptions, Model, Tensor, TensorData};

use super::subject::{ExampleSource, Meta, Subject, package_kind};
use super::{Findings, Location, Rule};
use tiffin_core::chain;
use tiffin_core::{Result, payload};

pub(crate) fn check(
    subject: &Subject,
    meta: &Meta,
    payload_file: Option<&Path>,
    findings: &mut Findings,
) -> Result<()> {
    dim_names(subject, &meta.signature, findings);
    let model_at = Location::file(meta.model_path.clone());
    let Some(format) = meta.format else {
        findings.skip(Rule::Signature, "the model format is unknown");
        findings.skip(Rule::Preprocessing, "the model format is unknown");
        return Ok(());
    };
    let source = match subject.model_source() {
        Ok(source) => source,
        Err(e) => {
            findings.skip(Rule::Signature, format!("the model cannot be read: {e}"));
            findings.skip(Rule::Preprocessing, "the model cannot be read");
            return Ok(());
        }
    };
    let options = LoadOptions::default().with_plan_cache(0);
    let model = match Model::load(&source, format, &meta.signature, &options) {
        Ok(model) => Some(model),
        Err(tiffin_runtime::Error::Signature(problems)) => {
            for p in problems {
                findings.fail(
                    Rule::Signature,
                    format!("the signature disagrees with the graph: {p}"),
                    "correct the signature in tiffin.toml (`tiffin init MODEL --stdout` prints \
                     the one the graph declares) and pack again",
                    model_at.clone(),
                );
            }
            None
        }
        Err(e) => {
            findings.fail(
                Rule::Signature,
                format!("the model cannot be loaded: {}", chain(&e)),
                "export the model again with operators tiffin supports (docs/runtime.md)",
                model_at.clone(),
            );
            None
        }
    };
    let mut sample: Option<Vec<Tensor>> = None;
    if let Some(model) = &model {
        sample = examples(subject, model, findings)?;
        if let Some(file) = payload_file {
            let inputs = run_payload(file, &meta.signature, model, findings);
            sample = sample.or(inputs);
        } else if matches!(subject.examples, ExampleSource::None) {
            findings.warn(
                Rule::Signature,
                "no golden examples and no --payload: the signature was checked against the \
                 graph, not against a real payload",
                "add `[examples] inputs = \"examples.json\"` to tiffin.toml (or pack with \
                 --examples FILE), or run doctor with --payload FILE",
                None,
            );
        }
        findings.pass_unless_flagged(
            Rule::Signature,
            pass_message(subject, payload_file.is_some()),
        );
    }
    match tiffin_runtime::graph_ops(&source, format) {
        Ok(ops) => preprocessing(subject, &meta.signature, &ops, sample.as_deref(), findings),
        Err(e) => findings.skip(
            Rule::Preprocessing,
            format!("the graph's operators cannot be read: {e}"),
        ),
    }
    Ok(())
}

fn pass_message(subject: &Subject, payload: bool) -> String {
    let mut parts = vec!["the signature matches the graph".to_owned()];
    match subject.examples {
        ExampleSource::Golden => {
            parts.push("the golden examples run and match their outputs".to_owned())
        }
        ExampleSource::Inputs(_) => parts.push("the example inputs conform and run".to_owned()),
        ExampleSource::None => {}
    }
    if payload {
        parts.push("the payload conforms and runs".to_owned());
    }
    parts.push("every dynamic dim is named".to_owned());
    parts.join("; ")
}

/// Dynamic dims whose names tell a caller nothing: the ones `tiffin init` invents for axes the
/// graph leaves unnamed (`NAME_dimAXIS`) and exporters' placeholders (`unk__3`, `dim_0`); and
/// dims only outputs use, whose size no input fixes.
fn dim_names(subject: &Subject, sig: &Signature, findings: &mut Findings) {
    let in_inputs: BTreeSet<&str> = sig
        .inputs
        .iter()
        .flat_map(|t| &t.shape)
        .filter_map(Dim::name)
        .collect();
    let at = Location::line(
        subject.meta_file,
        super::line_of(
            &subject.meta_text,
            if subject.kind == super::SubjectKind::Authoring {
                "[[signature"
            } else {
                "\"signature\""
            },
        ),
    );
    for name in sig.dynamic_dims() {
        let lower = name.to_ascii_lowercase();
        let invented = lower.starts_with("unk__")
            || lower.starts_with("dim_")
            || lower
                .rsplit_once("_dim")
                .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if invented {
            findings.warn(
                Rule::Signature,
                format!("the dynamic dim `{name}` has a generated name that tells callers nothing"),
                "name it for what it counts, e.g. \"batch\", \"seq_len\", \"height\"",
                at.clone(),
            );
        } else if !in_inputs.contains(name) {
            findings.warn(
                Rule::Signature,
                format!("the dynamic dim `{name}` appears in outputs only: no input fixes its size"),
                "if it equals an input dim, give it that dim's name so callers know the output size",
                at.clone(),
            );
        }
    }
}

/// Runs the examples: a package's golden examples against their outputs, an authoring folder's
/// example inputs just to see them conform and run. Returns the example inputs.
fn examples(
    subject: &Subject,
    model: &Model,
    findings: &mut Findings,
) -> Result<Option<Vec<Tensor>>> {
    match (&subject.examples, &subject.manifest) {
        (ExampleSource::Golden, Some(manifest)) => {
            let kind = package_kind(subject.kind);
            let ex = manifest.examples.as_ref();
            let at = ex.map(|e| e.outputs.clone()).and_then(Location::file);
            match tiffin_core::rerun_examples(&subject.root, kind, manifest, model) {
                Ok(drifts) => {
                    for d in drifts.iter().flatten().filter(|d| !d.passed()) {
                        let message = match &d.problem {
                            Some(problem) => format!("golden output `{}`: {problem}", d.output),
                            None => format!(
                                "golden output `{}` drifted: {} of {} outside tolerance (max abs {:.3e})",
                                d.output, d.mismatches, d.compared, d.max_abs
                            ),
                        };
                        findings.fail(
                            Rule::Signature,
                            message,
                            "find what changed the model's behaviour (runtime version, model \
                             file) before trusting it; `tiffin verify` prints the drift table",
                            at.clone(),
                        );
                    }
                }
                Err(e) => findings.fail(
                    Rule::Signature,
                    format!("the golden examples do not run: {}", chain(&e)),
                    "pack the model again with examples that fit its signature",
                    at.clone(),
                ),
            }
            let inputs = ex.and_then(|ex| {
                let files =
                    tiffin_core::read_files(&subject.root, kind, |p| p == ex.inputs).ok()?;
                let names = tiffin_core::examples::tensor_names(&manifest.signature.inputs);
                tiffin_core::examples::read_tensors(files.get(&ex.inputs)?, &names).ok()
            });
            Ok(inputs)
        }
        (ExampleSource::Inputs(file), _) => {
            let relative = file
                .strip_prefix(&subject.root)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned();
            Ok(run_payload_as(
                file,
                &relative,
                model.signature(),
                model,
                findings,
            ))
        }
        _ => Ok(None),
    }
}

fn run_payload(
    file: &Path,
    sig: &Signature,
    model: &Model,
    findings: &mut Findings,
) -> Option<Vec<Tensor>> {
    run_payload_as(file, &file.display().to_string(), sig, model, findings)
}

/// Decodes a JSON payload against the signature and runs it; problems are signature failures.
fn run_payload_as(
    file: &Path,
    shown: &str,
    sig: &Signature,
    model: &Model,
    findings: &mut Findings,
) -> Option<Vec<Tensor>> {
    let at = Location::file(shown.to_owned());
    let fix = "make the payload match the signature: inputs by name with the declared dtypes \
               and shapes (any form `tiffin predict` takes)";
    let value: serde_json::Value = match std::fs::read(file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("not JSON: {e}")))
    {
        Ok(value) => value,
        Err(reason) => {
            findings.fail(
                Rule::Signature,
                format!("`{shown}` cannot be read: {reason}"),
                fix,
                at,
            );
            return None;
        }
    };
    let inputs = match payload::decode(sig, &value) {
        Ok(inputs) => inputs,
        Err(e) => {
            findings.fail(
                Rule::Signature,
                format!("`{shown}` does not conform to the signature: {e}"),
                fix,
                at,
            );
            return None;
        }
    };
    if let Err(e) = model.run(&inputs) {
        findings.fail(
            Rule::Signature,
            format!(
                "`{shown}` does not run on the model: {}",
                chain(&e)
            ),
            "make the payload fit the signature (names, dtypes, shapes); if it does, the model or its export is at fault",
            at,
        );
    }
    Some(inputs)
}

/// Operators that scale or normalise the values they read.
const NORMALISING: &[&str] = &[
    "Scaler",
    "Normalizer",
    "BatchNormalization",
    "LayerNormalization",
    "InstanceNormalization",
    "MeanVarianceNormalization",
    "Sub",
    "Div",
];

/// Words in an input's description that say how it was preprocessed.
const DECLARED: &[&str] = &["scaled", "normali", "standardi", "preprocess"];

/// `preprocessing`: heuristics, and every message says so. Raw feature names going straight into
/// a model that does not scale them suggest scaling done outside the model (which every caller
/// must then repeat); standardised-looking examples going into a model that scales them suggest
/// the data gets scaled twice.
fn preprocessing(
    subject: &Subject,
    sig: &Signature,
    ops: &tiffin_runtime::GraphOps,
    sample: Option<&[Tensor]>,
    findings: &mut Findings,
) {
    let declared_file = subject
        .files
        .iter()
        .any(|f| f.path.to_ascii_lowercase().contains("preprocess"));
    for (i, input) in sig.inputs.iter().enumerate() {
        let Some(features) = &input.feature_names else {
            continue;
        };
        if !matches!(input.dtype, DType::F16 | DType::F32 | DType::F64) {
            continue;
        }
        let first = ops.first.get(&input.name).cloned().unwrap_or_default();
        let normalises = first.iter().any(|op| NORMALISING.contains(&op.as_str()));
        let trees = first.iter().any(|op| op.starts_with("TreeEnsemble"));
        let declared = declared_file
            || input.description.as_ref().is_some_and(|d| {
                let d = d.to_lowercase();
                DECLARED.iter().any(|w| d.contains(w))
            });
        let stats = sample.and_then(|s| s.get(i)).and_then(column_stats);
        if !normalises && !trees && !declared {
            let evidence = stats
                .as_ref()
                .filter(|s| s.spread > 100.0)
                .map(|s| {
                    format!(
                        "; the example values span {:.3e} to {:.3e}, which looks unscaled",
                        s.min, s.max
                    )
                })
                .unwrap_or_default();
            findings.warn(
                Rule::Preprocessing,
                format!(
                    "heuristic: input `{}` takes raw features ({}{}) but the graph reads it first \
                     with {}, not a scaler or normaliser, and no preprocessing is declared{evidence}",
                    input.name,
                    features.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                    if features.len() > 3 { ", ..." } else { "" },
                    if first.is_empty() { "nothing".to_owned() } else { first.join(", ") },
                ),
                "if training scaled the features outside the model, export the whole pipeline \
                 (e.g. a scikit-learn Pipeline with its scaler); if the model takes raw values, \
                 say so in the input's description",
                Location::file(subject.meta_file),
            );
        } else if normalises && stats.as_ref().is_some_and(ColumnStats::standardised) {
            findings.warn(
                Rule::Preprocessing,
                format!(
                    "heuristic: the example inputs of `{}` look standardised already (every \
                     column has mean near 0 and deviation near 1), yet the graph scales them again \
                     with {}",
                    input.name,
                    first.join(", ")
                ),
                "send raw values to the model, in the examples and from callers: it scales them itself",
                Location::file(subject.meta_file),
            );
        }
    }
    findings.pass_unless_flagged(
        Rule::Preprocessing,
        "heuristic: no sign of preprocessing done outside the model",
    );
}

/// Summary statistics of a 2-D float tensor's columns.
#[derive(Debug)]
struct ColumnStats {
    min: f64,
    max: f64,
    /// Largest absolute value over all columns, divided by the smallest column deviation.
    spread: f64,
    means: Vec<f64>,
    deviations: Vec<f64>,
}

impl ColumnStats {
    fn standardised(&self) -> bool {
        self.means.iter().all(|m| m.abs() < 0.5)
            && self.deviations.iter().all(|d| (0.5..1.5).contains(d))
    }
}

/// Column statistics, for tensors with at least 8 rows (fewer say nothing about a distribution).
fn column_stats(t: &Tensor) -> Option<ColumnStats> {
    let [rows, cols] = *t.shape() else {
        return None;
    };
    if rows < 8 || cols == 0 {
        return None;
    }
    let values: Vec<f64> = match t.data() {
        TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TensorData::F64(v) => v.clone(),
        TensorData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
        _ => return None,
    };
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut means = vec![0.0; cols];
    for row in values.chunks(cols) {
        for (m, v) in means.iter_mut().zip(row) {
            *m += v / rows as f64;
        }
    }
    let mut deviations = vec![0.0; cols];
    for row in values.chunks(cols) {
        for ((d, v), m) in deviations.iter_mut().zip(row).zip(&means) {
            *d += (v - m) * (v - m) / rows as f64;
        }
    }
    let deviations: Vec<f64> = deviations.into_iter().map(f64::sqrt).collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let largest = min.abs().max(max.abs());
    let smallest_dev = deviations
        .iter()
        .copied()
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let spread = if smallest_dev.is_finite() {
        largest / smallest_dev
    } else {
        0.0
    };
    Some(ColumnStats {
        min,
        max,
        spread,
        means,
        deviations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, f: impl Fn(usize, usize) -> f32) -> Tensor {
        let data = (0..rows * 2).map(|i| f(i / 2, i % 2)).collect();
        Tensor::new(vec![rows, 2], TensorData::F32(data)).unwrap()
    }

    #[test]
    fn standardised_and_raw_columns_are_told_apart() {
        let standard = matrix(10, |r, _| if r % 2 == 0 { 1.0 } else { -1.0 });
        assert!(column_stats(&standard).unwrap().standardised());
        let raw = matrix(10, |r, c| {
            if c == 0 {
                1000.0 + r as f32
            } else {
                r as f32 * 0.01
            }
        });
        let stats = column_stats(&raw).unwrap();
        assert!(!stats.standardised() && stats.spread > 100.0, "{stats:?}");
        assert!(column_stats(&matrix(3, |_, _| 0.0)).is_none());
    }
}
