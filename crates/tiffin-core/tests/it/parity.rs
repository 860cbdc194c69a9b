//! Parity with the original model: `[examples] expected` compared at pack time, recorded in the
//! manifest, refused past tolerance with the table, an allowed disagreement recorded, and the
//! comparison rerun by verify.

use tiffin_core::hash::NoProgress;
use tiffin_core::{Error, PackOptions};

use crate::support::*;

const ROWS: usize = 8;

/// The breast_cancer fixture's authoring folder, copied with the first rows of its reference
/// inputs as examples, `expected` as the original model's outputs and `extra` appended to
/// tiffin.toml's `[examples]` table.
fn authoring(expected: &serde_json::Value, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    copy_tree(&fixtures().join("breast_cancer"), &source);
    let reference = reference();
    let x = &reference["inputs"]["X"];
    let width = x["shape"][1].as_u64().unwrap() as usize;
    let rows: Vec<Vec<serde_json::Value>> = x["data"].as_array().unwrap()[..ROWS * width]
        .chunks(width)
        .map(<[_]>::to_vec)
        .collect();
    std::fs::write(
        source.join("examples.json"),
        serde_json::json!({ "X": rows }).to_string(),
    )
    .unwrap();
    std::fs::write(source.join("expected.json"), expected.to_string()).unwrap();
    let mut toml = std::fs::read_to_string(source.join("tiffin.toml")).unwrap();
    toml.push_str("\n[examples]\ninputs = \"examples.json\"\nexpected = \"expected.json\"\n");
    toml.push_str(extra);
    std::fs::write(source.join("tiffin.toml"), toml).unwrap();
    dir
}

fn reference() -> serde_json::Value {
    let text =
        std::fs::read_to_string(fixtures().join("breast_cancer").join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The original model's outputs on the first rows: onnxruntime's reference, standing in for
/// scikit-learn's own (they agree to about 1e-7; the Python tests compare with the real one).
fn original() -> (Vec<i64>, Vec<Vec<f64>>) {
    let reference = reference();
    let labels = reference["outputs"]["label"]["data"].as_array().unwrap()[..ROWS]
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let probabilities = reference["outputs"]["probabilities"]["data"]
        .as_array()
        .unwrap()[..ROWS * 2]
        .chunks(2)
        .map(|r| r.iter().map(|v| v.as_f64().unwrap()).collect())
        .collect();
    (labels, probabilities)
}

fn pack(dir: &tempfile::TempDir) -> tiffin_core::Result<tiffin_core::Packed> {
    tiffin_core::pack(
        &PackOptions {
            source: dir.path().join("source"),
            out: Some(dir.path().join("out")),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &NoProgress,
    )
}

#[test]
fn parity_within_tolerance_is_recorded_and_rerun_by_verify() {
    let (labels, probabilities) = original();
    let dir = authoring(
        &serde_json::json!({ "label": labels, "probabilities": probabilities }),
        "",
    );
    let packed = pack(&dir).expect("an export that agrees packs");
    let parity = packed.manifest.examples.as_ref().unwrap().parity.as_ref();
    let parity = parity.expect("the comparison is in the manifest");
    assert_eq!(parity.expected, "examples/expected.json");
    let source = parity
        .source
        .as_ref()
        .expect("the framework, from [framework]");
    assert_eq!(
        (source.name.as_str(), source.version.as_deref()),
        ("scikit-learn", Some("1.8.0"))
    );
    let label = &parity.outputs["label"];
    assert_eq!((label.compared, label.mismatches), (ROWS as u64, 0));
    assert_eq!(label.tolerance.abs, 0.0, "labels are compared exactly");
    let p = &parity.outputs["probabilities"];
    assert_eq!((p.compared, p.mismatches), (2 * ROWS as u64, 0));
    assert!(p.max_abs < 1e-6, "{p:?}");
    assert_eq!(p.tolerance.abs, 1e-6);
    assert!(
        packed
            .manifest
            .files
            .iter()
            .any(|f| f.path == "examples/expected.json")
    );

    let report = verify(&packed.archive);
    assert!(report.is_ok(), "{:?}", problems(&report));
    let rerun = report.parity.expect("verify reruns the comparison");
    assert_eq!(rerun["probabilities"].compared, 2 * ROWS as u64);
    assert!(rerun.values().all(|r| r.passed()));
}

#[test]
fn a_disagreeing_export_is_refused_with_the_table_and_writes_nothing() {
    let (labels, mut probabilities) = original();
    // As a float64 model fed float32 inputs, or a wrong converter option, would move it.
    probabilities[3][1] += 1e-3;
    let dir = authoring(
        &serde_json::json!({ "label": labels, "probabilities": probabilities }),
        "",
    );
    let error = pack(&dir).expect_err("past the tolerance, pack refuses");
    assert!(matches!(error, Error::Parity { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("probabilities"), "{message}");
    assert!(message.contains("1 of 16"), "{message}");
    assert!(message.contains("FAILED"), "{message}");
    assert!(message.contains("[examples.parity.OUTPUT]"), "{message}");
    let out = dir.path().join("out");
    let written: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "pack left {written:?}");
}

#[test]
fn an_allowed_label_disagreement_is_recorded_never_silent() {
    let (mut labels, probabilities) = original();
    // A float32 tree threshold sending one row to the other class.
    labels[5] = 1 - labels[5];
    let label_only = serde_json::json!({ "label": labels });

    // By default labels must all agree.
    let strict = authoring(&label_only, "");
    let error = pack(&strict).expect_err("one label differs");
    assert!(error.to_string().contains("87.5%"), "{error}");

    // The probabilities do not move with the label here, so only the label is allowed to.
    let allowed = authoring(
        &serde_json::json!({ "label": labels }),
        "\n[examples.parity.label]\nmin_agreement = 0.85\n",
    );
    let packed = pack(&allowed).expect("within the stated agreement");
    let label = &packed
        .manifest
        .examples
        .as_ref()
        .unwrap()
        .parity
        .as_ref()
        .unwrap()
        .outputs["label"];
    assert_eq!((label.compared, label.mismatches), (ROWS as u64, 1));
    assert_eq!(label.agreement(), 0.875);
    assert!(label.passed());
    drop(probabilities);
}

#[test]
fn expected_outputs_that_do_not_fit_are_refused() {
    let (labels, probabilities) = original();
    let unknown = authoring(&serde_json::json!({ "score": labels }), "");
    let error = pack(&unknown).unwrap_err().to_string();
    assert!(error.contains("`score` is not an output"), "{error}");

    let short = authoring(
        &serde_json::json!({ "probabilities": &probabilities[..3] }),
        "",
    );
    let error = pack(&short).unwrap_err().to_string();
    assert!(error.contains("shape"), "{error}");

    // Parity settings without the original outputs are a mistake in tiffin.toml.
    let dir = authoring(&serde_json::json!({ "label": labels }), "");
    let toml = dir.path().join("source/tiffin.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("expected = \"expected.json\"\n", "")
        + "\n[examples.parity.label]\nmin_agreement = 0.9\n";
    std::fs::write(&toml, text).unwrap();
    let error = pack(&dir).unwrap_err();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(message.contains("add `expected"), "{message}");
}

#[test]
fn the_card_tiffin_writes_shows_the_parity_table_and_an_authors_card_is_kept() {
    let (labels, probabilities) = original();
    let expected = serde_json::json!({ "label": labels, "probabilities": probabilities });

    let dir = authoring(&expected, "");
    let authors_card = std::fs::read(dir.path().join("source").join("MODEL_CARD.md")).unwrap();
    let packed = pack(&dir).unwrap();
    let card = std::fs::read(packed.folder.join("model-card.md")).unwrap();
    assert_eq!(card, authors_card, "the author's card is the author's");

    let dir = authoring(&expected, "");
    let toml_path = dir.path().join("source").join("tiffin.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        toml.replace("model_card = \"MODEL_CARD.md\"\n", ""),
    )
    .unwrap();
    let packed = pack(&dir).unwrap();
    let card = std::fs::read_to_string(packed.folder.join("model-card.md")).unwrap();
    assert!(
        card.contains("### Agreement with the original model"),
        "{card}"
    );
    assert!(card.contains("(scikit-learn 1.8.0)"), "{card}");
    assert!(
        card.contains("| output | agreement | outside | max abs | max rel | tolerance | result |\n|---|---|---|---|---|---|---|\n"),
        "{card}"
    );
    assert!(
        card.contains("| `label` | 100% | 0 of 8 | 0.00e0 | 0.00e0 | exact | ok |"),
        "{card}"
    );
    assert!(
        card.contains("| `probabilities` | 100% | 0 of 16 |"),
        "{card}"
    );
    // The card is a file of the package like any other: verify covers it.
    assert!(verify(&packed.archive).is_ok());
}
