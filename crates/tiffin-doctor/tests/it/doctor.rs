//! `doctor`: for each rule, an authoring folder (or package) that triggers it and one that passes
//! it, built in temp folders from the committed fixtures; and `pack` refusing what fails.

use std::path::Path;

use tiffin_core::PackOptions;
use tiffin_core::hash::NoProgress;
use tiffin_doctor::{DoctorOptions, DoctorReport, Level, Rule, doctor};

use tiffin_testkit::*;

/// Copies a fixture's authoring folder into a fresh temp folder.
fn authoring(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join(fixture), dir.path());
    dir
}

/// Rewrites `tiffin.toml` in `dir` with `edit`, checking the edit changed something.
fn edit_toml(dir: &Path, edit: impl Fn(&str) -> String) {
    let path = dir.join("tiffin.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    let after = edit(&before);
    assert_ne!(before, after, "the edit left tiffin.toml as it was");
    std::fs::write(path, after).unwrap();
}

fn run(path: &Path) -> DoctorReport {
    doctor(path, &DoctorOptions::default()).unwrap()
}

/// The levels `rule` reported, in order.
fn levels(report: &DoctorReport, rule: Rule) -> Vec<Level> {
    report
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.level)
        .collect()
}

/// The messages of `rule` at `level`.
fn messages(report: &DoctorReport, rule: Rule, level: Level) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.rule == rule && f.level == level)
        .map(|f| f.message.clone())
        .collect()
}

/// Asserts that `rule` passed, alone, and that nothing else in the report is about it.
fn assert_passes(report: &DoctorReport, rule: Rule) {
    assert_eq!(levels(report, rule), [Level::Pass], "{rule}: {report:#?}");
}

/// Every rule but `parity` passes alone; `parity` warns that no original outputs are given (the
/// fixtures hold onnxruntime's reference outputs, not the original scikit-learn model's).
fn assert_clean_but_for_parity(report: &DoctorReport) {
    assert_eq!(report.worst(), Level::Warn, "{report:#?}");
    for rule in Rule::ALL.into_iter().filter(|r| *r != Rule::Parity) {
        assert_passes(report, rule);
    }
    let warned = messages(report, Rule::Parity, Level::Warn);
    assert_eq!(warned.len(), 1, "{report:#?}");
    assert!(
        warned[0].contains("not that the export was faithful"),
        "{warned:?}"
    );
}

#[test]
fn the_tutorial_churn_model_passes_clean_before_and_after_packing() {
    let report = run(&fixtures().join("churn_model"));
    assert_clean_but_for_parity(&report);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let (_out, packed) = pack_fixture("churn_model");
    for path in [&packed.folder, &packed.archive] {
        let report = run(path);
        assert_clean_but_for_parity(&report);
        assert!(
            report
                .files
                .iter()
                .any(|f| f.path == "examples/outputs.json")
        );
    }
}

#[test]
fn integrity_fails_on_a_missing_file_and_a_tampered_package() {
    let dir = authoring("churn_model");
    std::fs::remove_file(dir.path().join("requirements.txt")).unwrap();
    let report = run(dir.path());
    assert_eq!(levels(&report, Rule::Integrity), [Level::Fail]);
    let finding = &report.findings[0];
    assert_eq!(
        finding.location.as_ref().map(|l| (l.file.as_str(), l.line)),
        Some(("tiffin.toml", Some(58)))
    );

    let (out, packed) = pack_fixture("churn_model");
    let copy = out.path().join("tampered");
    copy_tree(&packed.folder, &copy);
    std::fs::write(copy.join("notes.txt"), "added after packing").unwrap();
    let report = run(&copy);
    assert_eq!(levels(&report, Rule::Integrity), [Level::Fail]);
    // The model is not trusted, so not run, when the package is not intact.
    assert!(report.skipped.iter().any(|s| s.rule == Rule::Signature));
}

#[test]
fn version_must_be_semver() {
    let dir = authoring("churn_model");
    edit_toml(dir.path(), |t| {
        t.replace("version = \"1.0.0\"", "version = \"1.0\"")
    });
    let report = run(dir.path());
    assert_eq!(levels(&report, Rule::Version), [Level::Fail]);
    assert_passes(&report, Rule::Integrity);
}

#[test]
fn signature_checks_the_graph_the_payload_and_the_examples() {
    // A wrong shape disagrees with the graph.
    let dir = authoring("churn_model");
    edit_toml(dir.path(), |t| {
        t.replace("shape = [\"batch\", 5]", "shape = [\"batch\", 6]")
    });
    let report = run(dir.path());
    assert!(
        levels(&report, Rule::Signature).contains(&Level::Fail),
        "{report:#?}"
    );

    // No examples and no payload: a warning that names both ways out.
    let report = run(&fixtures().join("iris"));
    let warned = messages(&report, Rule::Signature, Level::Warn);
    assert!(
        warned.iter().any(|m| m.contains("no golden examples")),
        "{warned:?}"
    );

    // A payload that fits passes, one that does not fails, naming the input.
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"X": [[1, 2, 3, 4]]}"#).unwrap();
    let options = DoctorOptions {
        payload: Some(payload.clone()),
        ..DoctorOptions::default()
    };
    let report = doctor(&fixtures().join("iris"), &options).unwrap();
    assert_passes(&report, Rule::Signature);
    std::fs::write(&payload, r#"{"X": [[1, 2, 3]]}"#).unwrap();
    let report = doctor(&fixtures().join("iris"), &options).unwrap();
    let failed = messages(&report, Rule::Signature, Level::Fail);
    assert!(
        failed.len() == 1 && failed[0].contains("does not run") && failed[0].contains("input `X`"),
        "{failed:?}"
    );

    // A generated dim name is a warning.
    let dir = authoring("churn_model");
    edit_toml(dir.path(), |t| t.replace("\"batch\"", "\"X_dim0\""));
    let report = run(dir.path());
    let warned = messages(&report, Rule::Signature, Level::Warn);
    assert!(warned.iter().any(|m| m.contains("`X_dim0`")), "{warned:?}");
}

#[test]
fn dependencies_list_unpinned_lines_and_lone_pyprojects() {
    let dir = authoring("churn_model");
    let requirements = dir.path().join("requirements.txt");
    let text = std::fs::read_to_string(&requirements).unwrap();
    std::fs::write(&requirements, text.replace("scipy==1.17.1", "scipy>=1.10")).unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"churn\"\n",
    )
    .unwrap();
    edit_toml(dir.path(), |t| {
        t.replace(
            "[[files]]\npath = \"requirements.txt\"",
            "[[files]]\npath = \"pyproject.toml\"\nrole = \"environment\"\n\n[[files]]\npath = \"requirements.txt\"",
        )
    });
    let report = run(dir.path());
    let warnings: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Dependencies)
        .map(|f| (f.message.as_str(), f.location.clone().unwrap()))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].0.contains("no lock file") && warnings[0].1.file == "pyproject.toml");
    assert_eq!(
        warnings[1].0,
        "`scipy>=1.10` is ranged (a range or a wildcard, not one version)"
    );
    assert_eq!(
        (warnings[1].1.file.as_str(), warnings[1].1.line),
        ("requirements.txt", Some(3))
    );
}

#[test]
fn unsafe_formats_are_found_by_content_under_any_name() {
    let dir = authoring("churn_model");
    std::fs::copy(
        fixtures().join("unsafe/model.joblib"),
        dir.path().join("weights.bin"),
    )
    .unwrap();
    edit_toml(dir.path(), |t| {
        format!("{t}\n[[files]]\npath = \"weights.bin\"\n")
    });
    let report = run(dir.path());
    let failed = messages(&report, Rule::UnsafeFormats, Level::Fail);
    assert!(
        failed.len() == 1 && failed[0].contains("`weights.bin` is a compressed Python pickle"),
        "{failed:?}"
    );
}

#[test]
fn preprocessing_heuristics_flag_raw_features_and_double_scaling() {
    // breast_cancer is a logistic regression fed raw features: no scaler in the graph.
    let report = run(&fixtures().join("breast_cancer"));
    let warned = messages(&report, Rule::Preprocessing, Level::Warn);
    assert!(
        warned.len() == 1 && warned[0].starts_with("heuristic: input `X` takes raw features"),
        "{warned:?}"
    );
    // churn scales in the graph; examples already standardised would be scaled twice.
    let dir = authoring("churn_model");
    let rows: Vec<serde_json::Value> = (0..8)
        .map(|r| {
            let v = if r % 2 == 0 { 1.0 } else { -1.0 };
            serde_json::json!([v, -v, v, -v, v])
        })
        .collect();
    std::fs::write(
        dir.path().join("examples.json"),
        serde_json::json!({ "X": rows }).to_string(),
    )
    .unwrap();
    let report = run(dir.path());
    let warned = messages(&report, Rule::Preprocessing, Level::Warn);
    assert!(
        warned.len() == 1 && warned[0].contains("look standardised already"),
        "{warned:?}"
    );
}

#[test]
fn model_card_sections_and_front_matter() {
    // iris has no card of its own: the generated one lacks metrics and several sections.
    let report = run(&fixtures().join("iris"));
    let warned = messages(&report, Rule::ModelCard, Level::Warn);
    assert!(
        warned
            .iter()
            .any(|m| m.contains("front matter lacks") && m.contains("metrics")),
        "{warned:?}"
    );
    assert!(
        warned
            .iter()
            .any(|m| m.contains("limitations section is empty")),
        "{warned:?}"
    );

    let dir = authoring("churn_model");
    let card = dir.path().join("MODEL_CARD.md");
    let text = std::fs::read_to_string(&card).unwrap();
    let text = text
        .replace("## Limitations", "## Notes")
        .replace("metrics:\n", "");
    std::fs::write(&card, text.replace("- accuracy\n- roc_auc\n", "")).unwrap();
    let report = run(dir.path());
    assert_eq!(
        messages(&report, Rule::ModelCard, Level::Warn),
        [
            "the front matter lacks metrics",
            "the model card has no section on limitations"
        ]
    );
}

#[test]
fn metadata_wants_a_real_license_authors_and_a_past() {
    let dir = authoring("churn_model");
    edit_toml(dir.path(), |t| {
        t.replace(
            "license = \"MIT\"",
            "license = \"MIT-ish\"\ncreated = \"2999-01-01T00:00:00Z\"",
        )
        .replace(
            "authors = [\"tiffin fixtures\", \"Acme Analytics <ml@acme.example>\"]\n",
            "",
        )
    });
    let report = run(dir.path());
    assert_eq!(
        levels(&report, Rule::Metadata),
        [Level::Fail, Level::Warn, Level::Fail],
        "{report:#?}"
    );
    let failed = messages(&report, Rule::Metadata, Level::Fail);
    assert!(
        failed[0].contains("`MIT-ish` is not a valid SPDX"),
        "{failed:?}"
    );
    assert!(failed[1].contains("in the future"), "{failed:?}");
}

#[test]
fn device_requirements_this_machine_cannot_meet_fail() {
    let dir = authoring("churn_model");
    edit_toml(dir.path(), |t| {
        t.replace(
            "cpu_features = []\ngpu = false",
            "cpu_features = [\"quantum\"]\ngpu = true",
        )
    });
    let report = run(dir.path());
    assert_eq!(levels(&report, Rule::Device), [Level::Fail, Level::Warn]);
    assert!(messages(&report, Rule::Device, Level::Fail)[0].contains("not runnable here"));
}

#[test]
fn size_flags_a_large_file_nothing_refers_to() {
    let dir = authoring("churn_model");
    let row = "1,2,3,4,5\n".repeat(120_000);
    std::fs::write(dir.path().join("train.csv"), row).unwrap();
    edit_toml(dir.path(), |t| {
        format!("{t}\n[[files]]\npath = \"train.csv\"\n")
    });
    let report = run(dir.path());
    let warned = messages(&report, Rule::Size, Level::Warn);
    assert!(
        warned.len() == 1 && warned[0].starts_with("`train.csv` (1.14 MiB) has the role extra"),
        "{warned:?}"
    );
    assert_eq!(report.files[0].path, "train.csv");
}

#[test]
fn skipped_rules_are_listed_not_run() {
    let options = DoctorOptions {
        skip: vec![Rule::Preprocessing, Rule::ModelCard],
        ..DoctorOptions::default()
    };
    let report = doctor(&fixtures().join("breast_cancer"), &options).unwrap();
    assert!(levels(&report, Rule::Preprocessing).is_empty());
    assert!(levels(&report, Rule::ModelCard).is_empty());
    let skipped: Vec<Rule> = report.skipped.iter().map(|s| s.rule).collect();
    assert_eq!(skipped, [Rule::Preprocessing, Rule::ModelCard]);
}

#[test]
fn pack_refuses_a_failing_folder_unless_the_rule_is_skipped() {
    let dir = authoring("churn_model");
    edit_toml(dir.path(), |t| t.replace("gpu = false", "gpu = true"));
    let out = tempfile::tempdir().unwrap();
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: Some(out.path().to_owned()),
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let err = tiffin_doctor::pack(&options, &[], &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not packed, 1 check(s) failed") && err.contains("[device]"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    tiffin_doctor::pack(&options, &[Rule::Device], &NoProgress).unwrap();
}

/// A package packed with the original model's outputs (`[examples] expected`) carries parity
/// evidence, which the parity rule reads on the authoring folder and on the package.
#[test]
fn parity_passes_with_the_original_models_outputs() {
    const ROWS: usize = 8;
    let dir = authoring("breast_cancer");
    let text = std::fs::read_to_string(fixtures().join("breast_cancer/reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let x = &reference["inputs"]["X"];
    let width = x["shape"][1].as_u64().unwrap() as usize;
    let rows: Vec<&[serde_json::Value]> = x["data"].as_array().unwrap()[..ROWS * width]
        .chunks(width)
        .collect();
    let outputs = &reference["outputs"];
    let labels = &outputs["label"]["data"].as_array().unwrap()[..ROWS];
    let probabilities: Vec<&[serde_json::Value]> =
        outputs["probabilities"]["data"].as_array().unwrap()[..ROWS * 2]
            .chunks(2)
            .collect();
    let write = |name: &str, value: serde_json::Value| {
        std::fs::write(dir.path().join(name), value.to_string()).unwrap();
    };
    write("examples.json", serde_json::json!({ "X": rows }));
    write(
        "expected.json",
        serde_json::json!({ "label": labels, "probabilities": probabilities }),
    );
    edit_toml(dir.path(), |t| {
        format!("{t}\n[examples]\ninputs = \"examples.json\"\nexpected = \"expected.json\"\n")
    });
    let out = tempfile::tempdir().unwrap();
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: Some(out.path().to_owned()),
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let packed = tiffin_doctor::pack(&options, &[], &NoProgress).unwrap();
    for path in [dir.path().to_owned(), packed.archive] {
        let report = run(&path);
        assert_passes(&report, Rule::Parity);
    }
}
