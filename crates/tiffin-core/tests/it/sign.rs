//! Signing: round trips on folders and archives, and every way a signed package can fail its
//! check (no bundle, another key, a changed bundle, a tampered file, a file added after signing,
//! a signature over another file list), each naming what differs.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use tiffin_core::hash::{Algorithms, NoProgress};
use tiffin_core::layout::SIGSTORE_FILE;
use tiffin_core::{
    CertificateChain, ProblemKind, PublicKey, SignOptions, SignatureOptions, SignatureReport,
    Signed, SigningKey, TrustRoots, Verifier, VerifyOptions,
};

use crate::support::*;

fn key_path(name: &str) -> PathBuf {
    fixtures().join("keys").join(name)
}

fn signer() -> SigningKey {
    SigningKey::from_pem_file(&key_path("signer.pem")).unwrap()
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem_file(&key_path(name)).unwrap()
}

fn sign(path: &Path) -> Signed {
    tiffin_core::sign(path, &signer(), &SignOptions::default(), &NoProgress).unwrap()
}

/// Checks with sha256 recomputed too and without running the model: these tests are about bytes.
fn options(bundle: Option<PathBuf>) -> SignatureOptions {
    SignatureOptions {
        bundle,
        verify: VerifyOptions {
            algorithms: Algorithms::BOTH,
            run_model: false,
            ..VerifyOptions::default()
        },
    }
}

fn check(path: &Path, key: &str) -> SignatureReport {
    tiffin_core::verify_signature(path, &public(key).into(), &options(None), &NoProgress).unwrap()
}

/// Every problem of a signature report, its own and the package's, as `file: message`.
fn all_problems(report: &SignatureReport) -> Vec<String> {
    let package = report.package.iter().flat_map(|p| &p.problems);
    report
        .problems
        .iter()
        .chain(package)
        .map(|p| format!("{}: {}", p.file.as_deref().unwrap_or("-"), p.message))
        .collect()
}

fn has(report: &SignatureReport, file: &str, kind: ProblemKind, text: &str) -> bool {
    let package = report.package.iter().flat_map(|p| &p.problems);
    report
        .problems
        .iter()
        .chain(package)
        .any(|p| p.file.as_deref() == Some(file) && p.kind == kind && p.message.contains(text))
}

/// Asserts that `file` has a problem of `kind` whose message holds `text`.
#[track_caller]
fn assert_problem(report: &SignatureReport, file: &str, kind: ProblemKind, text: &str) {
    assert!(has(report, file, kind, text), "{:?}", all_problems(report));
}

/// Asserts that the signature bundle itself has a problem whose message holds `text`.
#[track_caller]
fn assert_signature_problem(report: &SignatureReport, text: &str) {
    assert_problem(report, SIGSTORE_FILE, ProblemKind::Signature, text);
}

#[test]
fn a_signed_folder_verifies_and_signing_again_gives_the_same_bytes() {
    let (_out, packed) = pack_fixture("churn_model");
    let signed = sign(&packed.folder);
    assert!(!signed.replaced);
    assert_eq!(signed.bundle, packed.folder.join(SIGSTORE_FILE));
    // Every listed file, tiffin.json and checksum.txt.
    assert_eq!(signed.files, packed.manifest.files.len() + 2);
    assert_eq!(signed.key_hint, public("signer.pub.pem").hint());
    let first = std::fs::read(&signed.bundle).unwrap();

    // `verify` accepts the bundle and says the package is signed.
    let plain = verify(&packed.folder);
    assert!(plain.is_ok(), "{:?}", problems(&plain));
    assert!(plain.signed);

    let report = check(&packed.folder, "signer.pub.pem");
    assert!(report.is_ok(), "{:?}", all_problems(&report));
    assert!(report.signature_valid);
    assert_eq!(report.signed_files, signed.files);
    assert_eq!(
        report.signer_hint.as_deref(),
        Some(signed.key_hint.as_str())
    );

    let again = sign(&packed.folder);
    assert!(again.replaced);
    assert_eq!(std::fs::read(&again.bundle).unwrap(), first);
    // Nothing but the bundle was left behind in the folder (no temporary file).
    let names: Vec<String> = std::fs::read_dir(&packed.folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_signed_archive_verifies_stays_reproducible_and_matches_the_folders_bundle() {
    let (_out, packed) = pack_fixture("breast_cancer");
    let folder = sign(&packed.folder);
    let signed = sign(&packed.archive);
    assert!(!signed.replaced);
    assert_eq!(signed.bundle, packed.archive);

    let entries = entries(&packed.archive);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "tiffin.json", "{names:?}");
    let mut sorted = names[1..].to_vec();
    sorted.sort_unstable();
    assert_eq!(names[1..], sorted[..], "entries stay sorted");
    let bundle = &entries.iter().find(|(n, _)| n == SIGSTORE_FILE).unwrap().1;
    // The folder and the archive hold the same files, so they carry the same signature.
    assert_eq!(*bundle, std::fs::read(&folder.bundle).unwrap());

    let plain = verify(&packed.archive);
    assert!(plain.is_ok(), "{:?}", problems(&plain));
    assert!(plain.signed);
    let report = check(&packed.archive, "signer.pub.pem");
    assert!(report.is_ok(), "{:?}", all_problems(&report));

    let bytes = std::fs::read(&packed.archive).unwrap();
    let again = sign(&packed.archive);
    assert!(again.replaced);
    assert_eq!(std::fs::read(&packed.archive).unwrap(), bytes);
}

#[test]
fn an_unsigned_package_checked_with_a_key_fails_naming_the_fix() {
    let (_out, packed) = pack_fixture("iris");
    for path in [&packed.folder, &packed.archive] {
        let report = check(path, "signer.pub.pem");
        assert!(!report.is_ok());
        assert_signature_problem(
            &report,
            "is missing: the package is not signed; sign it with `tiffin sign",
        );
        assert!(!verify(path).signed);
    }
}

#[test]
fn another_key_is_named_as_such() {
    let (_out, packed) = pack_fixture("iris");
    sign(&packed.folder);
    sign(&packed.archive);
    for path in [&packed.folder, &packed.archive] {
        let report = check(path, "other.pub.pem");
        assert!(!report.is_ok());
        assert!(!report.signature_valid);
        assert!(
            report.package.is_none(),
            "nothing is trusted before the signature"
        );
        let expected = format!(
            "was signed by another key (the bundle names the key {}",
            public("signer.pub.pem").hint()
        );
        assert_signature_problem(&report, &expected);
    }
}

#[test]
fn a_bundle_changed_after_signing_fails_its_signature() {
    let (_out, packed) = pack_fixture("iris");
    let signed = sign(&packed.folder);
    let text = std::fs::read_to_string(&signed.bundle).unwrap();
    let mut bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Swap in a payload listing other digests, keeping the signature.
    let other = tiffin_core::hash::sha256(b"another statement");
    bundle["dsseEnvelope"]["payload"] = serde_json::Value::String(BASE64.encode(other.0));
    std::fs::write(&signed.bundle, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let report = check(&packed.folder, "signer.pub.pem");
    assert_signature_problem(
        &report,
        "names the key given, but its signature does not verify",
    );

    // Without a key hint (older bundles), the message covers both causes.
    bundle["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("publicKey");
    std::fs::write(&signed.bundle, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let report = check(&packed.folder, "signer.pub.pem");
    assert_signature_problem(&report, "does not verify with the key given");

    std::fs::write(&signed.bundle, b"{\"not\": \"a bundle\"}").unwrap();
    let report = check(&packed.folder, "signer.pub.pem");
    assert_signature_problem(&report, "is not a Sigstore bundle");
}

#[test]
fn a_tampered_file_is_named_in_a_folder_and_an_archive() {
    let (out, packed) = pack_fixture("iris");
    sign(&packed.folder);
    sign(&packed.archive);

    let model = packed.folder.join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    let report = check(&packed.folder, "signer.pub.pem");
    assert!(report.signature_valid && !report.is_ok());
    assert_problem(
        &report,
        "model.onnx",
        ProblemKind::Changed,
        "content differs",
    );

    // A tampered archive: rebuilt with the flipped model, everything else as signed.
    let tampered = out.path().join("tampered.tiffin");
    let raw: Vec<Vec<u8>> = entries(&packed.archive)
        .into_iter()
        .map(|(name, data)| {
            let data = if name == "model.onnx" {
                bytes.clone()
            } else {
                data
            };
            raw_entry(&name, tar::EntryType::Regular, &data, data.len() as u64)
        })
        .collect();
    write_raw_archive(&tampered, &raw);
    let report = check(&tampered, "signer.pub.pem");
    assert!(report.signature_valid && !report.is_ok());
    assert_problem(
        &report,
        "model.onnx",
        ProblemKind::Changed,
        "content differs",
    );
}

#[test]
fn a_tampered_file_behind_a_resealed_manifest_is_named_against_the_signature() {
    // A hostile packer edits a file and rewrites tiffin.json and checksum.txt to match: the
    // package verifies, but its files differ from the signed ones, and the signature says which.
    let (_out, packed) = pack_fixture("iris");
    sign(&packed.folder);
    let card = packed.folder.join("model-card.md");
    let mut text = std::fs::read_to_string(&card).unwrap();
    text.push_str("\nAlso approved for medical use.\n");
    std::fs::write(&card, text).unwrap();
    reseal(&packed.folder);
    assert!(verify(&packed.folder).is_ok());

    let report = check(&packed.folder, "signer.pub.pem");
    assert!(!report.is_ok());
    for file in ["model-card.md", "tiffin.json", "checksum.txt"] {
        assert!(
            has(
                &report,
                file,
                ProblemKind::Changed,
                "differs from the signed file"
            ),
            "{file}: {:?}",
            all_problems(&report)
        );
    }
    assert_eq!(report.problems.len(), 3, "{:?}", all_problems(&report));
}

#[test]
fn a_file_added_after_signing_is_named() {
    let (_out, packed) = pack_fixture("iris");
    sign(&packed.folder);
    std::fs::write(packed.folder.join("notes.txt"), "added later").unwrap();
    let report = check(&packed.folder, "signer.pub.pem");
    assert!(!report.is_ok());
    assert_problem(
        &report,
        "notes.txt",
        ProblemKind::Unsigned,
        "not covered by the signature: it was added after signing",
    );
    assert!(has(
        &report,
        "notes.txt",
        ProblemKind::Extra,
        "not listed in the manifest"
    ));
}

#[test]
fn a_signature_over_another_file_list_names_each_difference() {
    // The package gains a listed file and loses another after signing, manifest resealed: it
    // verifies on its own, and the signed list says what is new and what is gone.
    let (_out, packed) = pack_fixture("breast_cancer");
    sign(&packed.folder);
    let manifest_path = packed.folder.join("tiffin.json");
    let mut manifest =
        tiffin_core::manifest::Manifest::from_json_slice(&std::fs::read(&manifest_path).unwrap())
            .unwrap();
    let gone = "requirements.txt";
    std::fs::remove_file(packed.folder.join(gone)).unwrap();
    manifest.files.retain(|f| f.path != gone);
    let mut added = manifest.files[0].clone();
    added.path = "extra/notes.txt".to_owned();
    std::fs::create_dir_all(packed.folder.join("extra")).unwrap();
    std::fs::write(packed.folder.join(&added.path), "new").unwrap();
    manifest.files.push(added);
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    std::fs::write(&manifest_path, manifest.to_canonical_json()).unwrap();
    reseal(&packed.folder);
    assert!(
        verify(&packed.folder).is_ok(),
        "{:?}",
        problems(&verify(&packed.folder))
    );

    let report = check(&packed.folder, "signer.pub.pem");
    assert!(!report.is_ok());
    assert_problem(
        &report,
        gone,
        ProblemKind::Missing,
        "is covered by the signature but not in the package",
    );
    assert_problem(
        &report,
        "extra/notes.txt",
        ProblemKind::Unsigned,
        "not covered by the signature",
    );
}

#[test]
fn a_detached_bundle_checks_the_package_it_signed() {
    let (out, packed) = pack_fixture("iris");
    let signed = sign(&packed.folder);
    let detached = out.path().join("iris.sig");
    std::fs::rename(&signed.bundle, &detached).unwrap();
    let report = tiffin_core::verify_signature(
        &packed.folder,
        &public("signer.pub.pem").into(),
        &options(Some(detached.clone())),
        &NoProgress,
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", all_problems(&report));
    assert_eq!(report.detached.as_ref(), Some(&detached));
    // The same detached bundle checks the archive of the same package.
    let report = tiffin_core::verify_signature(
        &packed.archive,
        &public("signer.pub.pem").into(),
        &options(Some(detached)),
        &NoProgress,
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", all_problems(&report));

    let err = tiffin_core::verify_signature(
        &packed.folder,
        &public("signer.pub.pem").into(),
        &options(Some(out.path().join("nope.sig"))),
        &NoProgress,
    )
    .unwrap_err();
    assert!(chain(&err).contains("nope.sig"), "{}", chain(&err));
}

#[test]
fn a_broken_package_is_not_signed() {
    let (_out, packed) = pack_fixture("iris");
    std::fs::write(packed.folder.join("notes.txt"), "extra").unwrap();
    let err = tiffin_core::sign(
        &packed.folder,
        &signer(),
        &SignOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("not signed: it fails verification") && text.contains("notes.txt"),
        "{text}"
    );
    assert!(!packed.folder.join(SIGSTORE_FILE).exists());
}

#[test]
fn a_file_named_like_the_bundle_cannot_be_packed() {
    let err = tiffin_core::manifest::check_relative_path(SIGSTORE_FILE).unwrap_err();
    assert!(
        err.contains("is reserved: `tiffin sign` writes it"),
        "{err}"
    );
}

fn roots(name: &str) -> Verifier {
    Verifier::Certificates(TrustRoots::from_pem_file(&key_path(name)).unwrap())
}

/// Checks the signature in certificate mode against the root certificates in `root`.
fn check_roots(path: &Path, root: &str) -> SignatureReport {
    tiffin_core::verify_signature(path, &roots(root), &options(None), &NoProgress).unwrap()
}

fn sign_with_certificates(path: &Path, intermediate: bool) -> Signed {
    let chain = CertificateChain::from_pem_files(
        &key_path("signer.cert.pem"),
        intermediate
            .then(|| key_path("intermediate.pem"))
            .as_deref(),
    )
    .unwrap();
    let options = SignOptions {
        certificates: Some(chain),
        ..SignOptions::default()
    };
    tiffin_core::sign(path, &signer(), &options, &NoProgress).unwrap()
}

#[test]
fn a_certificate_signature_checks_against_its_root_and_no_other() {
    let (_out, packed) = pack_fixture("iris");
    let signed = sign_with_certificates(&packed.archive, true);
    assert_eq!(signed.certificate.as_deref(), Some("CN=tiffin test signer"));
    let report = check_roots(&packed.archive, "root.pem");
    assert!(report.is_ok(), "{:?}", all_problems(&report));
    assert_eq!(report.certificate.as_deref(), Some("CN=tiffin test signer"));
    assert_eq!(report.key_hint, public("signer.pub.pem").hint());

    // The signing certificate's key checks it in key mode too.
    assert!(check(&packed.archive, "signer.pub.pem").is_ok());

    let report = check_roots(&packed.archive, "other-root.pem");
    assert_signature_problem(
        &report,
        "has a certificate chain that does not lead to a root given: `CN=tiffin test intermediate` is issued by `CN=tiffin test root`",
    );
}

#[test]
fn a_chain_without_its_intermediate_or_a_key_signature_fails_certificate_mode() {
    let (_out, packed) = pack_fixture("iris");
    sign_with_certificates(&packed.folder, false);
    let report = check_roots(&packed.folder, "root.pem");
    assert_signature_problem(
        &report,
        "`CN=tiffin test signer` is issued by `CN=tiffin test intermediate`, which is neither a given root",
    );
    // The intermediate as a trusted root is enough.
    let report = check_roots(&packed.folder, "intermediate.pem");
    assert!(report.is_ok(), "{:?}", all_problems(&report));

    sign(&packed.folder);
    let report = check_roots(&packed.folder, "root.pem");
    assert_signature_problem(&report, "was signed with a key, not a certificate");
}

#[test]
fn a_certificate_for_another_key_is_not_used_to_sign() {
    let (_out, packed) = pack_fixture("iris");
    let certificates =
        CertificateChain::from_pem_files(&key_path("signer.cert.pem"), None).unwrap();
    let other = SigningKey::from_pem_file(&key_path("other.pem")).unwrap();
    let options = SignOptions {
        certificates: Some(certificates),
        ..SignOptions::default()
    };
    let err = tiffin_core::sign(&packed.folder, &other, &options, &NoProgress).unwrap_err();
    assert!(
        err.to_string().contains(
            "the certificate `CN=tiffin test signer` is for another key than the one given"
        ),
        "{err}"
    );
    let err = CertificateChain::from_pem_files(&key_path("signer.pub.pem"), None).unwrap_err();
    assert!(
        chain(&err).contains("not a PEM file of certificates"),
        "{}",
        chain(&err)
    );
}

#[test]
fn a_chain_through_a_non_ca_or_to_a_certificate_that_may_not_sign_is_refused() {
    let (out, packed) = pack_fixture("iris");
    let other = SigningKey::from_pem_file(&key_path("other.pem")).unwrap();
    let chain_file = out.path().join("chain.pem");
    let mut chain_pem = std::fs::read(key_path("signer.cert.pem")).unwrap();
    chain_pem.extend(std::fs::read(key_path("intermediate.pem")).unwrap());
    std::fs::write(&chain_file, chain_pem).unwrap();
    for (leaf, chain, expected) in [
        (
            "issued-by-leaf.cert.pem",
            chain_file.clone(),
            "the certificate `CN=tiffin test signer` issued another but is not a CA",
        ),
        (
            "cannot-sign.cert.pem",
            key_path("intermediate.pem"),
            "is signed with the certificate `CN=tiffin test cannot sign`, which may not sign",
        ),
    ] {
        let certificates = CertificateChain::from_pem_files(&key_path(leaf), Some(&chain)).unwrap();
        let sign_options = SignOptions {
            certificates: Some(certificates),
            ..SignOptions::default()
        };
        tiffin_core::sign(&packed.folder, &other, &sign_options, &NoProgress).unwrap();
        let report = check_roots(&packed.folder, "root.pem");
        assert!(
            has(&report, SIGSTORE_FILE, ProblemKind::Signature, expected),
            "{leaf}: {:?}",
            all_problems(&report)
        );
    }
}

#[test]
fn the_package_report_of_a_signature_check_loads_the_model_and_a_failed_one_is_refused() {
    let (_out, packed) = pack_fixture("iris");
    sign(&packed.archive);
    sign(&packed.folder);
    let report = check(&packed.archive, "signer.pub.pem");
    assert!(report.is_ok(), "{:?}", all_problems(&report));
    let loaded = tiffin_core::load_verified(
        &packed.archive,
        report.package.unwrap(),
        &tiffin_core::runtime::LoadOptions::default(),
    )
    .expect("a verified package loads on its report");
    assert_eq!(loaded.digest, format!("sha256:{}", packed.digest));
    let outputs = loaded
        .predict_json(&serde_json::json!({"X": [[5.1, 3.5, 1.4, 0.2]]}), true)
        .unwrap();
    assert!(outputs.get("label").is_some(), "{outputs}");

    let model = packed.folder.join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    let report = check(&packed.folder, "signer.pub.pem");
    let refused = tiffin_core::load_verified(
        &packed.folder,
        report.package.unwrap(),
        &tiffin_core::runtime::LoadOptions::default(),
    )
    .unwrap_err();
    assert!(refused.to_string().contains("model.onnx"), "{refused}");
}

#[test]
fn a_bundle_over_max_manifest_size_is_refused_before_reading() {
    let (_out, packed) = pack_fixture("breast_cancer");
    // A sparse file: it claims 64 MiB and one byte without taking the disk or memory.
    let bundle = std::fs::File::create(packed.folder.join("tiffin.sigstore.json")).unwrap();
    bundle
        .set_len(tiffin_core::layout::MAX_MANIFEST_SIZE + 1)
        .unwrap();
    let err = tiffin_core::signature_claim(&packed.folder).unwrap_err();
    assert!(
        err.to_string().contains(
            "is 67108865 bytes, more than the bound MAX_MANIFEST_SIZE (67108864) allows: give \
             the bundle `tiffin sign` or `model_signing sign` wrote"
        ),
        "{err}"
    );
}

#[test]
fn a_chain_of_max_chain_certificates_verifies_and_a_longer_one_is_refused() {
    // tiffin-sign's MAX_CHAIN is 8: the signing certificate and up to seven intermediates
    // before a root given (fixtures/keys/make_long_chain.sh).
    let sign_under = |path: &Path, leaf: &str| {
        let chain = CertificateChain::from_pem_files(
            &key_path(leaf),
            Some(key_path("long-intermediates.pem").as_path()),
        )
        .unwrap();
        let options = SignOptions {
            certificates: Some(chain),
            ..SignOptions::default()
        };
        tiffin_core::sign(path, &signer(), &options, &NoProgress).unwrap();
    };
    let (_out, packed) = pack_fixture("iris");
    sign_under(&packed.folder, "long7-signer.cert.pem");
    let report = check_roots(&packed.folder, "long-root.pem");
    assert!(report.is_ok(), "{:?}", all_problems(&report));

    sign_under(&packed.archive, "long8-signer.cert.pem");
    let report = check_roots(&packed.archive, "long-root.pem");
    assert_signature_problem(
        &report,
        "holds a chain longer than 8 certificates without reaching a root",
    );
}
