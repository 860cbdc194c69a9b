//! `tiffin sign` and `tiffin verify --key` as a user runs them, with their errors.

use crate::{fixtures, packed, tiffin};

/// Packs the breast-cancer fixture into a temp folder and copies the test keys beside it, so that
/// every path in the output is inside the temp folder.
fn packed_with_keys() -> tempfile::TempDir {
    let temp = packed();
    for key in [
        "signer.pem",
        "signer.pub.pem",
        "other.pub.pem",
        "ed25519.pem",
        "signer.cert.pem",
        "intermediate.pem",
        "root.pem",
        "other-root.pem",
    ] {
        std::fs::copy(fixtures().join("keys").join(key), temp.path().join(key)).unwrap();
    }
    temp
}

#[test]
fn sign_then_verify_with_and_without_the_key() {
    let temp = packed_with_keys();
    let dir = temp.path();
    let t = Some(dir);
    let folder = "breast_cancer/1.0.0";
    let archive = "breast_cancer-1.0.0.tiffin";
    insta::assert_snapshot!(
        "sign_folder",
        tiffin(&["sign", folder, "--key", "signer.pem"], dir, t)
    );
    insta::assert_snapshot!(
        "sign_archive",
        tiffin(&["sign", archive, "--key", "signer.pem"], dir, t)
    );
    insta::assert_snapshot!(
        "sign_again",
        tiffin(&["sign", folder, "--key", "signer.pem"], dir, t)
    );
    insta::assert_snapshot!(
        "verify_signed_not_checked",
        tiffin(&["verify", "--no-run", folder], dir, t)
    );
    insta::assert_snapshot!(
        "verify_signed_with_key",
        tiffin(&["verify", folder, "--key", "signer.pub.pem"], dir, t)
    );
    insta::assert_snapshot!(
        "verify_signed_archive_with_key",
        tiffin(
            &["verify", "--no-run", archive, "--key", "signer.pub.pem"],
            dir,
            t
        )
    );
    insta::assert_snapshot!(
        "verify_signed_other_key",
        tiffin(&["verify", archive, "--key", "other.pub.pem"], dir, t)
    );

    let json = tiffin(
        &["sign", "--json", archive, "--key", "signer.pem"],
        dir,
        None,
    );
    let body = json.split("----- stdout -----\n").nth(1).unwrap();
    let body = body.split("----- stderr -----").next().unwrap();
    let signed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(signed["replaced"], true);
    assert_eq!(signed["kind"], "archive");
    let json = tiffin(
        &[
            "verify",
            "--json",
            "--no-run",
            archive,
            "--key",
            "signer.pub.pem",
        ],
        dir,
        None,
    );
    assert!(json.starts_with("exit_code: 0"), "{json}");
    assert!(json.contains("\"signature_valid\": true"), "{json}");
}

#[test]
fn a_changed_signed_package_names_each_file() {
    let temp = packed_with_keys();
    let dir = temp.path();
    let t = Some(dir);
    let folder = dir.join("breast_cancer/1.0.0");
    let out = tiffin(
        &["sign", "breast_cancer/1.0.0", "--key", "signer.pem"],
        dir,
        t,
    );
    assert!(out.starts_with("exit_code: 0"), "{out}");
    let model = folder.join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    std::fs::write(folder.join("notes.txt"), "added after signing").unwrap();
    insta::assert_snapshot!(
        "verify_signed_tampered",
        tiffin(
            &["verify", "breast_cancer/1.0.0", "--key", "signer.pub.pem"],
            dir,
            t
        )
    );
}

#[test]
fn signing_errors_say_what_to_do() {
    let temp = packed_with_keys();
    let dir = temp.path();
    let t = Some(dir);
    insta::assert_snapshot!(
        "verify_unsigned_with_key",
        tiffin(
            &[
                "verify",
                "--no-run",
                "breast_cancer-1.0.0.tiffin",
                "--key",
                "signer.pub.pem"
            ],
            dir,
            t
        )
    );
    insta::assert_snapshot!(
        "sign_ed25519_key",
        tiffin(
            &["sign", "breast_cancer-1.0.0.tiffin", "--key", "ed25519.pem"],
            dir,
            t
        )
    );
    insta::assert_snapshot!(
        "sign_with_public_key",
        tiffin(
            &[
                "sign",
                "breast_cancer-1.0.0.tiffin",
                "--key",
                "signer.pub.pem"
            ],
            dir,
            t
        )
    );
    insta::assert_snapshot!(
        "verify_signature_without_key",
        tiffin(
            &[
                "verify",
                "breast_cancer-1.0.0.tiffin",
                "--signature",
                "x.sig"
            ],
            dir,
            t
        )
    );
}

#[test]
fn certificate_mode_signs_and_checks_against_the_root() {
    let temp = packed_with_keys();
    let dir = temp.path();
    let t = Some(dir);
    let archive = "breast_cancer-1.0.0.tiffin";
    insta::assert_snapshot!(
        "sign_certificate",
        tiffin(
            &[
                "sign",
                archive,
                "--key",
                "signer.pem",
                "--cert",
                "signer.cert.pem",
                "--cert-chain",
                "intermediate.pem"
            ],
            dir,
            t
        )
    );
    insta::assert_snapshot!(
        "verify_certificate",
        tiffin(
            &["verify", "--no-run", archive, "--root", "root.pem"],
            dir,
            t
        )
    );
    insta::assert_snapshot!(
        "verify_certificate_other_root",
        tiffin(
            &["verify", "--no-run", archive, "--root", "other-root.pem"],
            dir,
            t
        )
    );
}
