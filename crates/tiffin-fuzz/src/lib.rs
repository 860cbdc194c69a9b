//! tiffin's fuzz targets as plain functions over bytes, one per parser of untrusted input.
//!
//! libFuzzer runs them from `fuzz/` (`cargo xtask fuzz`, on a nightly toolchain); every file
//! of the committed corpora in `fuzz/corpus/<target>/` replays through them as an ordinary test
//! on stable (`tests/replay.rs`), so that an input that once crashed stays fixed. A target
//! fails by panicking: each one only feeds its input to tiffin and checks what must hold for
//! any input (no panic; what parses renders and parses back the same).

#![deny(missing_docs)]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tiffin_core::hash::{Algorithms, NoProgress};
use tiffin_core::manifest::{Authoring, Manifest, ModelFormat, Signature};
use tiffin_core::runtime::{LoadOptions, Model, ModelSource};
use tiffin_core::{VerifyOptions, hash};
use tower::ServiceExt;

/// A fuzz target: takes any bytes, panics when something that must hold does not.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name it.
pub const TARGETS: &[(&str, Target)] = &[
    ("authoring_toml", authoring_toml),
    ("manifest_json", manifest_json),
    ("checksums", checksums),
    ("pickle_scan", pickle_scan),
    ("archive", archive),
    ("signature_bundle", signature_bundle),
    ("pem", pem),
    ("oci_reference", oci_reference),
    ("oci_manifest", oci_manifest),
    ("payload_json", payload_json),
    ("request", request),
    ("onnx_model", onnx_model),
    ("nnef_model", nnef_model),
];

/// `tiffin.toml` parsed and validated.
pub fn authoring_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(authoring) = Authoring::from_toml_str(text) {
        let _ = authoring.validate();
    }
}

/// `tiffin.json` parsed and validated.
pub fn manifest_json(data: &[u8]) {
    if let Ok(manifest) = Manifest::from_json_slice(data) {
        let _ = manifest.validate();
    }
}

/// `checksum.txt`: what parses renders, and the rendering parses back to the same lines.
pub fn checksums(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(lines) = hash::parse_checksums(text) else {
        return;
    };
    let rendered = hash::render_checksums(&lines).expect("parsed lines render");
    let again = hash::parse_checksums(&rendered).expect("rendered lines parse");
    assert_eq!(again, lines, "checksum.txt does not round-trip: {text:?}");
}

/// The pickle scanner, on bytes as a file would hold them (with a generous opcode limit).
pub fn pickle_scan(data: &[u8]) {
    let _ = tiffin_core::scan::scan("model.pkl", data, 1 << 20);
    let _ = tiffin_core::safety::sniff("model.pkl", data);
}

/// An archive verified (digests only, as `verify --no-run`) and inspected, from arbitrary bytes.
pub fn archive(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("fuzz-1.0.0.tiffin");
    std::fs::write(&path, data).expect("the input written");
    let _ = tiffin_core::verify(
        &path,
        &VerifyOptions::digests(Algorithms::BOTH),
        &NoProgress,
    );
    let _ = tiffin_core::inspect(&path);
    let _ = tiffin_core::signature_claim(&path);
}

/// A signature bundle read for its claim and checked with a key (the fixtures' signer's).
pub fn signature_bundle(data: &[u8]) {
    static KEY: OnceLock<tiffin_sign::PublicKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        tiffin_sign::PublicKey::from_pem(include_bytes!("../../../fixtures/keys/signer.pub.pem"))
            .expect("the fixture key")
    });
    let _ = tiffin_sign::claim(data);
    let check = tiffin_sign::check_bundle(data, &tiffin_sign::Verifier::Key(key.clone()));
    // A bundle that lists files must have verified first.
    assert!(check.outcome.is_err() || check.signature_valid);
}

/// PEM keys and certificates, as `--key`, `--cert` and `--root` read them.
pub fn pem(data: &[u8]) {
    let _ = tiffin_sign::PublicKey::from_pem(data);
    let _ = tiffin_sign::SigningKey::from_pem(data);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("certs.pem");
    std::fs::write(&path, data).expect("the input written");
    let _ = tiffin_sign::TrustRoots::from_pem_file(&path);
    let _ = tiffin_sign::CertificateChain::from_pem_files(&path, None);
}

/// A registry reference: what parses prints and parses back the same.
pub fn oci_reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = tiffin_store::oci::Reference::from_str(text) else {
        return;
    };
    let printed = reference.to_string();
    let again = tiffin_store::oci::Reference::from_str(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again.to_string(), printed);
}

/// A registry's answers as the pull path reads them: the manifest, checked layer by layer (every
/// layer it accepts has a safe path of its own and a sha256 digest), and the same bytes as a
/// Docker config file holding credentials.
pub fn oci_manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tiffin_store::oci::Credentials::from_docker_config(text, "registry.example.com");
    }
    let Ok(manifest) = serde_json::from_slice::<tiffin_store::oci::ImageManifest>(data) else {
        return;
    };
    let Ok(layers) = tiffin_store::oci::layers_of(&manifest, "registry.example.com/m:1") else {
        return;
    };
    let mut paths = std::collections::BTreeSet::new();
    for (path, digest, _) in &layers {
        assert!(
            paths.insert(path.as_str()),
            "two layers at `{path}` accepted"
        );
        let reserved = ["tiffin.json", "checksum.txt", "tiffin.sigstore.json"];
        assert!(
            reserved.contains(&path.as_str())
                || tiffin_core::manifest::check_relative_path(path).is_ok(),
            "the unsafe layer path `{path}` was accepted"
        );
        assert_eq!(digest.to_string().len(), 64, "digest of `{path}`");
    }
}

/// A signature with every kind of input a payload decodes into: floats with a named batch dim,
/// integers, strings and booleans of fixed widths.
fn payload_signature() -> &'static Signature {
    static SIGNATURE: OnceLock<Signature> = OnceLock::new();
    SIGNATURE.get_or_init(|| {
        let toml = r#"
            [package]
            name = "fuzz"
            version = "1.0.0"
            [model]
            path = "model.onnx"
            [[signature.inputs]]
            name = "x"
            dtype = "f32"
            shape = ["batch", 3]
            feature_names = ["a", "b", "c"]
            [[signature.inputs]]
            name = "n"
            dtype = "i64"
            shape = ["batch"]
            [[signature.inputs]]
            name = "s"
            dtype = "string"
            shape = ["batch", 2]
            [[signature.inputs]]
            name = "flag"
            dtype = "bool"
            shape = ["batch"]
            [[signature.outputs]]
            name = "y"
            dtype = "f32"
            shape = ["batch"]
        "#;
        Authoring::from_toml_str(toml)
            .expect("the fuzz signature parses")
            .signature
    })
}

/// A JSON payload in any form `predict` takes, decoded against a signature of every dtype kind.
pub fn payload_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = tiffin_core::payload::decode(payload_signature(), &value);
}

/// The server, with the iris fixture loaded, and a runtime to drive it.
struct Served {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/iris");
        let packed = tiffin_core::pack(
            &tiffin_core::PackOptions {
                source: fixture,
                out: Some(dir.path().to_owned()),
                force: false,
                examples: None,
                runtime: Default::default(),
            },
            &NoProgress,
        )
        .expect("the iris fixture packs");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let state =
            tiffin_server::AppState::new(tiffin_server::Config::default(), vec![packed.archive]);
        runtime
            .block_on(state.load())
            .expect("the iris package loads");
        Served {
            runtime,
            app: tiffin_server::app(state),
            _dir: dir,
        }
    })
}

/// Where a request goes, chosen by its first byte.
const ROUTES: &[(&str, &str)] = &[
    ("/v2/models/iris/infer", "application/json"),
    ("/v2/models/iris/infer", "application/octet-stream"),
    ("/invocations", "application/json"),
    ("/invocations", "text/csv"),
    ("/v1/models/iris:predict", "application/json"),
    ("/predict", "application/json"),
    ("/models/iris/predict", "application/json"),
];

/// A request body on every protocol: the first byte picks the route and content type (and for
/// the V2 binary form, the second byte the JSON header's length), the rest is the body. The
/// server must answer, never panic or hang, and never with a 500: a bad body is the client's.
pub fn request(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let served = served();
    let (path, content_type) = ROUTES[usize::from(pick) % ROUTES.len()];
    let mut builder = Request::post(path).header("content-type", content_type);
    let mut body = rest;
    if content_type == "application/octet-stream"
        && let Some((&length, after)) = rest.split_first()
    {
        builder = builder.header(
            "inference-header-content-length",
            usize::from(length).to_string(),
        );
        body = after;
    }
    let request = builder.body(Body::from(body.to_vec())).expect("a request");
    let app = served.app.clone();
    let status = served.runtime.block_on(async move {
        let response = app.oneshot(request).await.expect("the router answers");
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    });
    assert!(
        !status.is_server_error(),
        "{path} ({content_type}) answered {status} to {body:?}"
    );
}

/// ONNX bytes read for their signature and, when one is read, loaded against it through tract
/// (tract's panics are caught and reported by tiffin, never unwound through here).
pub fn onnx_model(data: &[u8]) {
    let source = ModelSource::Bytes(data.to_vec());
    let Ok(signature) = tiffin_core::runtime::graph_signature(&source, ModelFormat::Onnx) else {
        return;
    };
    let options = LoadOptions::default().with_plan_cache(0);
    let _ = Model::load(&source, ModelFormat::Onnx, &signature, &options);
}

/// NNEF bytes (a tar of `graph.nnef` and its `.dat` files) read for their signature and, when one
/// is read, loaded against it through tract, as [`onnx_model`] does for ONNX.
pub fn nnef_model(data: &[u8]) {
    let source = ModelSource::Bytes(data.to_vec());
    let Ok(signature) = tiffin_core::runtime::graph_signature(&source, ModelFormat::Nnef) else {
        return;
    };
    let options = LoadOptions::default().with_plan_cache(0);
    let _ = Model::load(&source, ModelFormat::Nnef, &signature, &options);
}
