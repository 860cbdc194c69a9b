//! init, predict and convert: the commands that run a model.

use crate::{fixtures, tiffin};

#[test]
fn init_reads_the_signature_from_the_graph() {
    let model = fixtures().join("iris/model.onnx");
    let out = tiffin(
        &["init", model.to_str().unwrap(), "--stdout"],
        &fixtures(),
        None,
    );
    insta::assert_snapshot!("init_iris", out);
}

#[test]
fn init_writes_a_file_that_packs() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("breast_cancer/model.onnx"),
        temp.path().join("model.onnx"),
    )
    .unwrap();
    let t = Some(temp.path());
    let out = tiffin(
        &["init", "model.onnx", "--name", "bc", "--version", "2.0.0"],
        temp.path(),
        t,
    );
    assert!(out.starts_with("exit_code: 0"), "{out}");
    let again = tiffin(&["init", "model.onnx"], temp.path(), t);
    assert!(again.contains("already exists: pass --force"), "{again}");
    let packed = tiffin(&["pack"], temp.path(), t);
    assert!(packed.contains("packed bc 2.0.0"), "{packed}");
}

/// Packs breast_cancer with golden examples into a temp folder.
fn packed_with_examples() -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let rows: Vec<serde_json::Value> = reference_rows("breast_cancer", "X", 7);
    std::fs::write(
        temp.path().join("examples.json"),
        serde_json::json!({ "X": rows }).to_string(),
    )
    .unwrap();
    let source = fixtures().join("breast_cancer");
    let args = [
        "pack",
        source.to_str().unwrap(),
        "--out",
        ".",
        "--examples",
        "examples.json",
    ];
    let out = tiffin(&args, temp.path(), Some(temp.path()));
    assert!(out.starts_with("exit_code: 0"), "{out}");
    temp
}

/// The first `n` rows of a fixture's reference input, as nested JSON lists.
fn reference_rows(fixture: &str, input: &str, n: usize) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join(fixture).join("reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensor = &reference["inputs"][input];
    let width = tensor["shape"][1].as_u64().unwrap() as usize;
    let data = tensor["data"].as_array().unwrap();
    data.chunks(width)
        .take(n)
        .map(|row| serde_json::Value::Array(row.to_vec()))
        .collect()
}

#[test]
fn verify_reruns_the_golden_examples() {
    let temp = packed_with_examples();
    let t = Some(temp.path());
    insta::assert_snapshot!(
        "verify_with_examples",
        tiffin(&["verify", "breast_cancer-1.0.0.tiffin"], temp.path(), t)
    );
}

#[test]
fn predict_answers_named_outputs_with_labels() {
    let temp = packed_with_examples();
    let t = Some(temp.path());
    let rows = reference_rows("breast_cancer", "X", 2);
    let payload = serde_json::json!({ "X": rows }).to_string();
    insta::assert_snapshot!(
        "predict",
        tiffin(
            &["predict", "breast_cancer-1.0.0.tiffin", "--input", &payload],
            temp.path(),
            t
        )
    );
    insta::assert_snapshot!(
        "predict_raw",
        tiffin(
            &[
                "predict",
                "breast_cancer/1.0.0",
                "--raw",
                "--input",
                &payload
            ],
            temp.path(),
            t
        )
    );
    let bad = r#"{"X": [[1, 2, 3]]}"#;
    insta::assert_snapshot!(
        "predict_bad_shape",
        tiffin(
            &["predict", "breast_cancer-1.0.0.tiffin", "--input", bad],
            temp.path(),
            t
        )
    );
    let unknown = r#"{"Y": [[1]]}"#;
    insta::assert_snapshot!(
        "predict_unknown_input",
        tiffin(
            &["predict", "breast_cancer-1.0.0.tiffin", "--input", unknown],
            temp.path(),
            t
        )
    );
}

#[test]
fn convert_to_nnef_checks_parity_then_packs() {
    // The CNN converts; scikit-learn models use ONNX-ML operators that have no NNEF form.
    let temp = tempfile::tempdir().unwrap();
    let t = Some(temp.path());
    let text = std::fs::read_to_string(fixtures().join("mnist_cnn/reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let examples = serde_json::json!({ "image": reference["inputs"]["image"] });
    std::fs::write(temp.path().join("examples.json"), examples.to_string()).unwrap();
    let source = fixtures().join("mnist_cnn");
    let args = [
        "pack",
        source.to_str().unwrap(),
        "--out",
        ".",
        "--examples",
        "examples.json",
    ];
    let out = tiffin(&args, temp.path(), t);
    assert!(out.starts_with("exit_code: 0"), "{out}");
    let archive = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".tiffin"))
        .unwrap();
    let out = tiffin(
        &["convert", &archive, "--to", "nnef", "--json"],
        temp.path(),
        t,
    );
    assert!(out.starts_with("exit_code: 0"), "{out}");
    let converted = archive.replace(".tiffin", "+nnef.tiffin");
    let verify = tiffin(&["verify", &converted], temp.path(), t);
    assert!(
        verify.starts_with("exit_code: 0") && verify.contains("golden examples rerun"),
        "{verify}"
    );
    let inspect = tiffin(&["inspect", "--json", &converted], temp.path(), t);
    assert!(inspect.contains("\"format\": \"nnef\""), "{inspect}");

    // scikit-learn models convert too, through the NNEF forms of tiffin's ONNX-ML operators.
    let bc = packed_with_examples();
    let converted = tiffin(
        &["convert", "breast_cancer-1.0.0.tiffin", "--to", "nnef"],
        bc.path(),
        Some(bc.path()),
    );
    assert!(
        converted.starts_with("exit_code: 0")
            && converted.contains("packed breast_cancer 1.0.0+nnef"),
        "{converted}"
    );
}

/// `--runtime ort` verifies and predicts as tract does: the same report, the same labels and
/// probabilities within a few ulps; a library that cannot be loaded is named.
#[cfg(feature = "ort")]
#[test]
fn onnx_runtime_verifies_and_predicts_as_tract_does() {
    let library = std::env::var("TIFFIN_ORT_LIB")
        .expect("TIFFIN_ORT_LIB names no library: the `ort` tests need libonnxruntime.so");
    let temp = packed_with_examples();
    let t = Some(temp.path());
    let ort = ["--runtime", "ort", "--ort-lib", &library];
    let verify = ["verify", "breast_cancer-1.0.0.tiffin"];
    assert_eq!(
        tiffin(&[&verify[..], &ort].concat(), temp.path(), t),
        tiffin(&verify, temp.path(), t)
    );
    let payload = serde_json::json!({ "X": reference_rows("breast_cancer", "X", 5) }).to_string();
    let predict = ["predict", "breast_cancer-1.0.0.tiffin", "--input", &payload];
    let answer = |args: &[&str]| -> serde_json::Value {
        let out = tiffin(args, temp.path(), t);
        let json = out
            .split("----- stdout -----\n")
            .nth(1)
            .and_then(|s| s.split("----- stderr -----").next())
            .unwrap_or_else(|| panic!("{out}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let (a, b) = (answer(&[&predict[..], &ort].concat()), answer(&predict));
    assert_eq!(a["label"], b["label"]);
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect()
    };
    let (pa, pb) = (numbers(&a["probabilities"]), numbers(&b["probabilities"]));
    assert_eq!(pa.len(), pb.len());
    assert!(
        pa.iter()
            .zip(&pb)
            .all(|(x, y)| (x - y).abs() <= 1e-5 + 1e-5 * y.abs()),
        "{a} vs {b}"
    );
    let missing = tiffin(
        &[
            &predict[..],
            &["--runtime", "ort", "--ort-lib", "/no/libonnxruntime.so"],
        ]
        .concat(),
        temp.path(),
        t,
    );
    assert!(
        missing.contains("cannot load ONNX Runtime from /no/libonnxruntime.so"),
        "{missing}"
    );
}

/// `pack --runtime ort` checks the model and makes the golden outputs with ONNX Runtime and
/// records it; the package verifies on both engines (tract runs this model too), and a failure
/// on an engine the package was not checked on would name the one it was.
#[cfg(feature = "ort")]
#[test]
fn a_package_packed_on_onnx_runtime_records_it() {
    let library = std::env::var("TIFFIN_ORT_LIB")
        .expect("TIFFIN_ORT_LIB names no library: the `ort` tests need libonnxruntime.so");
    let temp = tempfile::tempdir().unwrap();
    let t = Some(temp.path());
    let rows = reference_rows("breast_cancer", "X", 3);
    std::fs::write(
        temp.path().join("examples.json"),
        serde_json::json!({ "X": rows }).to_string(),
    )
    .unwrap();
    let source = fixtures().join("breast_cancer");
    let ort = ["--runtime", "ort", "--ort-lib", &library];
    let pack = [
        "pack",
        source.to_str().unwrap(),
        "--out",
        ".",
        "--examples",
        "examples.json",
    ];
    let out = tiffin(&[&pack[..], &ort].concat(), temp.path(), t);
    assert!(out.starts_with("exit_code: 0"), "{out}");
    let folder = temp.path().join("breast_cancer/1.0.0");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("tiffin.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["runtime"]["checked_on"],
        serde_json::json!(["ort"])
    );
    for engine in [&ort[..], &[][..]] {
        let verify = ["verify", "breast_cancer-1.0.0.tiffin"];
        let out = tiffin(&[&verify[..], engine].concat(), temp.path(), t);
        assert!(out.starts_with("exit_code: 0"), "{out}");
    }
    let loaded = tiffin_core::load(&folder, &tiffin_core::runtime::LoadOptions::default()).unwrap();
    assert_eq!(
        tiffin_core::unchecked_runtime_note(
            &loaded.manifest,
            &tiffin_core::runtime::Runtime::Tract
        )
        .as_deref(),
        Some("the package was checked on ort, not tract; run it with --runtime ort")
    );
    let ort_runtime = tiffin_core::runtime::Runtime::Ort {
        library: library.clone().into(),
    };
    assert_eq!(
        tiffin_core::unchecked_runtime_note(&loaded.manifest, &ort_runtime),
        None
    );
}

/// A build without ONNX Runtime says so when asked for it, rather than running tract.
#[cfg(not(feature = "ort"))]
#[test]
fn a_build_without_onnx_runtime_refuses_it() {
    let temp = packed_with_examples();
    let t = Some(temp.path());
    let out = tiffin(
        &["verify", "breast_cancer-1.0.0.tiffin", "--runtime", "ort"],
        temp.path(),
        t,
    );
    assert!(out.starts_with("exit_code: 1"), "{out}");
    assert!(out.contains("built without ONNX Runtime"), "{out}");
}
