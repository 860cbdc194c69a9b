//! pack, verify and inspect as a user runs them, and their errors.

use crate::{fixtures, packed, tiffin};

#[test]
fn pack_then_verify_and_inspect() {
    let temp = tempfile::tempdir().unwrap();
    let source = fixtures().join("breast_cancer");
    let t = Some(temp.path());
    let out = temp.path().to_str().unwrap();
    insta::assert_snapshot!(
        "pack",
        tiffin(
            &["pack", source.to_str().unwrap(), "--out", out],
            temp.path(),
            t
        )
    );
    insta::assert_snapshot!(
        "verify_archive",
        tiffin(&["verify", "breast_cancer-1.0.0.tiffin"], temp.path(), t)
    );
    insta::assert_snapshot!(
        "verify_folder",
        tiffin(
            &["verify", "--sha256", "breast_cancer/1.0.0"],
            temp.path(),
            t
        )
    );
    insta::assert_snapshot!(
        "inspect",
        tiffin(&["inspect", "breast_cancer-1.0.0.tiffin"], temp.path(), t)
    );
    insta::assert_snapshot!(
        "pack_again",
        tiffin(
            &["pack", source.to_str().unwrap(), "--out", out],
            temp.path(),
            t
        )
    );
}

#[test]
fn json_outputs_parse_and_agree() {
    let temp = packed();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiffin"))
            .args(args)
            .current_dir(temp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let inspect = run(&["inspect", "--json", "breast_cancer-1.0.0.tiffin"]);
    let verify = run(&["verify", "--json", "breast_cancer-1.0.0.tiffin"]);
    assert_eq!(inspect["digest"], verify["digest"]);
    assert_eq!(inspect["manifest"]["name"], "breast_cancer");
    assert_eq!(
        inspect["manifest"]["signature"]["inputs"][0]["shape"],
        serde_json::json!(["batch", 30])
    );
    assert_eq!(verify["problems"], serde_json::json!([]));
    assert_eq!(verify["kind"], "archive");
}

#[test]
fn a_tampered_package_fails_with_each_problem_named() {
    let temp = packed();
    let folder = temp.path().join("breast_cancer/1.0.0");
    let model = folder.join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    std::fs::write(folder.join("notes.txt"), "added after packing").unwrap();
    std::fs::remove_file(folder.join("model-card.md")).unwrap();
    let t = Some(temp.path());
    insta::assert_snapshot!(
        "verify_tampered",
        tiffin(&["verify", "breast_cancer/1.0.0"], temp.path(), t)
    );
    let json = tiffin(&["verify", "--json", "breast_cancer/1.0.0"], temp.path(), t);
    assert!(json.starts_with("exit_code: 1"), "{json}");
    assert!(
        json.contains("\"kind\": \"changed\"") && json.contains("\"kind\": \"extra\""),
        "{json}"
    );
}

#[test]
fn errors_say_what_is_wrong_and_what_to_do() {
    let temp = tempfile::tempdir().unwrap();
    let t = Some(temp.path());
    insta::assert_snapshot!(
        "verify_missing_path",
        tiffin(&["verify", "nope.tiffin"], temp.path(), t)
    );
    std::fs::write(temp.path().join("notes.txt"), "not an archive").unwrap();
    insta::assert_snapshot!(
        "verify_not_a_package",
        tiffin(&["verify", "notes.txt"], temp.path(), t)
    );
    insta::assert_snapshot!("pack_no_toml", tiffin(&["pack"], temp.path(), t));

    let toml = std::fs::read_to_string(fixtures().join("iris/tiffin.toml")).unwrap();
    let broken = toml.replace(
        "version = \"1.0.0\"",
        "version = \"1.0\"\nlicence = \"MIT\"",
    );
    std::fs::write(temp.path().join("tiffin.toml"), broken).unwrap();
    insta::assert_snapshot!("pack_unknown_field", tiffin(&["pack"], temp.path(), t));
    let invalid = toml
        .replace("version = \"1.0.0\"", "version = \"1.0\"")
        .replace("name = \"iris\"", "name = \"Iris\"");
    std::fs::write(temp.path().join("tiffin.toml"), invalid).unwrap();
    insta::assert_snapshot!("pack_invalid", tiffin(&["pack"], temp.path(), t));

    std::fs::write(temp.path().join("tiffin.toml"), &toml).unwrap();
    std::fs::copy(
        fixtures().join("unsafe/disguised.onnx"),
        temp.path().join("model.onnx"),
    )
    .unwrap();
    insta::assert_snapshot!("pack_pickle", tiffin(&["pack"], temp.path(), t));
}

#[test]
fn scan_names_what_a_pickle_imports() {
    let unsafe_dir = fixtures().join("unsafe");
    insta::assert_snapshot!(
        "scan_joblib",
        tiffin(&["scan", "model.joblib"], &unsafe_dir, None)
    );
    insta::assert_snapshot!(
        "scan_proto0",
        tiffin(&["scan", "model_proto0.pkl"], &unsafe_dir, None)
    );
    let onnx = fixtures().join("iris");
    insta::assert_snapshot!("scan_onnx", tiffin(&["scan", "model.onnx"], &onnx, None));
}

#[test]
fn a_scan_stopped_at_its_opcode_bound_fails() {
    // Ten million and one POPs, then STOP: no import at all, but past MAX_PICKLE_OPCODES the
    // rest of the file is unread, so scan cannot call it safe.
    let temp = tempfile::tempdir().unwrap();
    let mut stream = vec![b'0'; 10_000_001];
    stream.push(b'.');
    std::fs::write(temp.path().join("long.pkl"), &stream).unwrap();
    let out = tiffin(&["scan", "long.pkl"], temp.path(), Some(temp.path()));
    assert!(out.starts_with("exit_code: 1"), "{out}");
    assert!(
        out.contains("the bound MAX_PICKLE_OPCODES")
            && out.contains("this file is not known to be safe"),
        "{out}"
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let temp = packed();
    // A pipe whose reader is gone before tiffin starts: every write fails with a broken pipe,
    // as when the output goes to `head -1` and head has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiffin"))
        .args(["inspect", "breast_cancer-1.0.0.tiffin"])
        .current_dir(temp.path())
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
