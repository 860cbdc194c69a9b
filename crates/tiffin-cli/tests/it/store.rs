//! The local store as a user drives it: add, list, tag, rm, gc, and store names in place of paths.

use crate::{fixtures, tiffin};

#[test]
fn add_list_tag_resolve_rm_and_gc() {
    let temp = tempfile::tempdir().unwrap();
    let t = Some(temp.path());
    let out = temp.path().to_str().unwrap();
    for fixture in ["breast_cancer", "iris"] {
        let source = fixtures().join(fixture);
        let packed = tiffin(
            &["-q", "pack", source.to_str().unwrap(), "--out", out],
            temp.path(),
            t,
        );
        assert!(packed.starts_with("exit_code: 0"), "{packed}");
    }
    insta::assert_snapshot!("store_list_empty", tiffin(&["list"], temp.path(), t));
    insta::assert_snapshot!(
        "store_add_archive",
        tiffin(
            &["add", "--no-run", "breast_cancer-1.0.0.tiffin"],
            temp.path(),
            t
        )
    );
    insta::assert_snapshot!(
        "store_add_again",
        tiffin(&["add", "breast_cancer/1.0.0"], temp.path(), t)
    );
    let added = tiffin(&["add", "iris/1.0.0"], temp.path(), t);
    assert!(added.starts_with("exit_code: 0"), "{added}");
    insta::assert_snapshot!(
        "store_tag",
        tiffin(&["tag", "iris:1.0.0", "iris:prod"], temp.path(), t)
    );
    insta::assert_snapshot!("store_list", tiffin(&["list"], temp.path(), t));

    // Store names work wherever a package path does.
    let verified = tiffin(&["verify", "--no-run", "iris:prod"], temp.path(), t);
    assert!(verified.contains("verified iris 1.0.0"), "{verified}");
    // A bare name means its newest version, unless a file or folder of that name is here.
    let elsewhere = temp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let inspected = tiffin(&["inspect", "breast_cancer"], &elsewhere, t);
    assert!(inspected.starts_with("exit_code: 0"), "{inspected}");
    insta::assert_snapshot!(
        "store_unknown",
        tiffin(&["verify", "churn:9.9.9"], temp.path(), t)
    );

    // The package stays while another tag names it; gc frees nothing still used.
    insta::assert_snapshot!(
        "store_rm_tag",
        tiffin(&["rm", "iris:1.0.0"], temp.path(), t)
    );
    insta::assert_snapshot!("store_gc_nothing", tiffin(&["gc"], temp.path(), t));
    insta::assert_snapshot!(
        "store_rm_last_tag",
        tiffin(&["rm", "iris:prod"], temp.path(), t)
    );
    let gc = tiffin(&["gc", "--json"], temp.path(), t);
    assert!(gc.contains("\"blobs\": "), "{gc}");
    assert!(
        !gc.contains("\"blobs\": 0,"),
        "iris's files should be freed: {gc}"
    );
    let listed = tiffin(&["list", "--json"], temp.path(), t);
    assert!(
        listed.contains("breast_cancer:1.0.0") && !listed.contains("iris"),
        "{listed}"
    );
}

#[test]
fn an_onnx_runtime_image_refuses_what_cannot_serve_with_it_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let t = Some(temp.path());
    std::fs::write(temp.path().join("LICENSE"), "MIT License").unwrap();
    std::fs::write(temp.path().join("libonnxruntime.so"), "not a library").unwrap();
    let out = tiffin(
        &["image", "--ort-lib", "libonnxruntime.so", "--out", "layout"],
        temp.path(),
        t,
    );
    assert!(
        out.starts_with("exit_code: 2") && out.contains("--ort-notice"),
        "{out}"
    );
    let args = [
        "image",
        "--ort-lib",
        "libonnxruntime.so",
        "--ort-notice",
        "LICENSE",
        "--out",
        "layout",
    ];
    let out = tiffin(&args, temp.path(), t);
    assert!(out.starts_with("exit_code: 1"), "{out}");
    if cfg!(feature = "ort") {
        // This build can serve with ONNX Runtime; the library is what is wrong.
        assert!(out.contains("it is not ONNX Runtime"), "{out}");
    } else {
        assert!(out.contains("built without ONNX Runtime support"), "{out}");
    }
    assert!(!temp.path().join("layout").exists());
}
