//! Golden examples: stored at pack time, rerun by verify, and drift beyond tolerance caught.

use tiffin_core::hash::NoProgress;
use tiffin_core::{PackOptions, ProblemKind};

use crate::support::*;

/// Packs `fixture` with the first `rows` rows of its reference inputs as examples.
fn pack_with_examples(fixture: &str, rows: usize) -> (tempfile::TempDir, tiffin_core::Packed) {
    let out = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join(fixture).join("reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut inputs = serde_json::Map::new();
    for (name, t) in reference["inputs"].as_object().unwrap() {
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
        let width: usize = shape[1..].iter().product();
        let data = t["data"].as_array().unwrap()[..rows * width].to_vec();
        let mut sliced = t.clone();
        sliced["shape"][0] = rows.into();
        sliced["data"] = data.into();
        inputs.insert(name.clone(), sliced);
    }
    let file = out.path().join("examples.json");
    std::fs::write(&file, serde_json::Value::Object(inputs).to_string()).unwrap();
    let options = PackOptions {
        source: fixtures().join(fixture),
        out: Some(out.path().to_owned()),
        force: false,
        examples: Some(file),
        runtime: Default::default(),
    };
    let packed = tiffin_core::pack(&options, &NoProgress).unwrap();
    (out, packed)
}

#[test]
fn examples_are_stored_and_rerun_by_verify() {
    for fixture in ["breast_cancer", "iris", "breast_cancer_scaled", "iris_gbt"] {
        let (_out, packed) = pack_with_examples(fixture, 7);
        let examples = packed.manifest.examples.as_ref().unwrap();
        assert_eq!(examples.inputs, "examples/inputs.json");
        let report = verify(&packed.archive);
        assert!(report.is_ok(), "{fixture}: {:?}", problems(&report));
        assert!(report.model_checked);
        let drifts = report.examples.unwrap();
        assert_eq!(drifts.len(), packed.manifest.signature.outputs.len());
        assert!(
            drifts.iter().all(|d| d.passed() && d.compared > 0),
            "{fixture}: {drifts:?}"
        );
    }
}

#[test]
fn drift_beyond_tolerance_fails_verify_naming_the_output() {
    let (out, packed) = pack_with_examples("breast_cancer", 7);
    let copy = out.path().join("drifted");
    copy_tree(&packed.folder, &copy);
    let path = copy.join("examples/outputs.json");
    let mut outputs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let p = &mut outputs["probabilities"]["data"][0];
    *p = (p.as_f64().unwrap() + 0.01).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&outputs).unwrap()).unwrap();
    reseal(&copy);
    let report = verify(&copy);
    let drift: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Drift)
        .collect();
    assert_eq!(drift.len(), 1, "{:?}", problems(&report));
    assert_eq!(drift[0].file.as_deref(), Some("examples/outputs.json"));
    assert!(
        drift[0]
            .message
            .starts_with("golden output `probabilities` drifted: 1 of 14 outside tolerance"),
        "{}",
        drift[0].message
    );
}

#[test]
fn a_signature_that_disagrees_with_the_graph_fails_pack_and_verify() {
    // pack refuses it outright...
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(fixtures().join("iris/tiffin.toml")).unwrap();
    std::fs::write(
        dir.path().join("tiffin.toml"),
        toml.replace("dtype = \"string\"", "dtype = \"i64\""),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("iris/model.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: None,
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(
        err.contains("model.onnx") && err.contains("signature"),
        "{err}"
    );

    // ...and verify catches a package whose signature was edited after packing.
    let (out, packed) = pack_fixture("iris");
    let copy = out.path().join("edited");
    copy_tree(&packed.folder, &copy);
    let json = std::fs::read_to_string(copy.join("tiffin.json")).unwrap();
    std::fs::write(
        copy.join("tiffin.json"),
        json.replacen("\"X\"", "\"features\"", 1),
    )
    .unwrap();
    let signature = std::fs::read_to_string(copy.join("signature.json")).unwrap();
    std::fs::write(
        copy.join("signature.json"),
        signature.replacen("\"X\"", "\"features\"", 1),
    )
    .unwrap();
    reseal(&copy);
    let report = verify(&copy);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Model && p.message.contains("features")),
        "{:?}",
        problems(&report)
    );
}

#[test]
fn examples_that_do_not_fit_the_signature_are_refused_at_pack() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("examples.json");
    std::fs::write(&file, r#"{"X": [[1, 2, 3]]}"#).unwrap();
    let options = PackOptions {
        source: fixtures().join("breast_cancer"),
        out: Some(out.path().to_owned()),
        force: false,
        examples: Some(file),
        runtime: Default::default(),
    };
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(
        err.contains("input `X`") && err.contains("size 30"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        1,
        "only examples.json may be there"
    );
}
