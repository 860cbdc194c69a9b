//! `tiffin doctor` as a user runs it: the report, the JSON, the exit codes, and `pack` refusing
//! a folder on which a rule fails unless told to skip it.

use crate::{fixtures, tiffin};

/// Copies a fixture's authoring folder into `dest`.
fn copy_fixture(name: &str, dest: &std::path::Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
}

#[test]
fn the_tutorial_passes_clean_as_text_and_json() {
    let here = fixtures();
    insta::assert_snapshot!(
        "doctor_churn",
        tiffin(&["doctor", "churn_model"], &here, None)
    );
    let json = tiffin(
        &["doctor", "--json", "--strict", "churn_model"],
        &here,
        None,
    );
    insta::assert_snapshot!("doctor_churn_json", json);
}

#[test]
fn failures_and_warnings_set_the_exit_code() {
    let temp = tempfile::tempdir().unwrap();
    let t = Some(temp.path());
    let dir = temp.path().join("churn");
    copy_fixture("churn_model", &dir);
    let toml = std::fs::read_to_string(dir.join("tiffin.toml")).unwrap();
    let toml = toml
        .replace("gpu = false", "gpu = true")
        .replace("scipy==1.17.1", "scipy");
    std::fs::write(dir.join("tiffin.toml"), &toml).unwrap();
    let reqs = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
    std::fs::write(
        dir.join("requirements.txt"),
        reqs.replace("scipy==1.17.1", "scipy"),
    )
    .unwrap();
    insta::assert_snapshot!(
        "doctor_failing",
        tiffin(&["doctor", "churn"], temp.path(), t)
    );
    insta::assert_snapshot!(
        "doctor_failing_json",
        tiffin(&["doctor", "--json", "churn"], temp.path(), t)
    );
    // Skipping the failing rule leaves a warning: exit 0, or 2 with --strict.
    let ok = tiffin(
        &["doctor", "--skip-check", "device", "churn"],
        temp.path(),
        t,
    );
    assert!(ok.starts_with("exit_code: 0"), "{ok}");
    let strict = tiffin(
        &["doctor", "--strict", "--skip-check", "device", "churn"],
        temp.path(),
        t,
    );
    assert!(strict.starts_with("exit_code: 2"), "{strict}");

    insta::assert_snapshot!(
        "pack_refused",
        tiffin(&["pack", "churn", "--out", "out"], temp.path(), t)
    );
    let packed = tiffin(
        &["pack", "churn", "--out", "out", "--skip-check", "device"],
        temp.path(),
        t,
    );
    assert!(packed.starts_with("exit_code: 0"), "{packed}");
    let unknown = tiffin(
        &["doctor", "--skip-check", "pickles", "churn"],
        temp.path(),
        t,
    );
    assert!(
        unknown.starts_with("exit_code: 2") && unknown.contains("unsafe-formats"),
        "{unknown}"
    );
}
