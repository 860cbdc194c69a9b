//! The tiffin package core: layout, pack, verify, inspect, signing, loading and predicting,
//! shared by the CLI, the server and the other crates.
//!
//! A package is a folder `NAME/VERSION/` or a single archive `NAME-VERSION.tiffin` holding the
//! model, `tiffin.json` (the manifest: metadata, signature and every file's size, sha256 and
//! blake3), `signature.json`, `model-card.md` and `checksum.txt`. The package digest is the sha256
//! of `tiffin.json`. Everything that reads or writes packages goes through this crate, so the
//! command line and the server cannot disagree about what a valid package is.
//!
//! The default feature `run` brings the model runtime (tract, through `tiffin-runtime`): `load`,
//! `predict`, `pack` (which checks the model), `init`, `convert` and verify's model check. An
//! admission check that only verifies packages and their signatures turns it off and builds no
//! tract (`tiffin-core = { version = "0.1", default-features = false }`):
//!
//! ```no_run
//! use std::path::Path;
//!
//! use tiffin_core::hash::{Algorithms, NoProgress};
//! use tiffin_core::{PublicKey, SignatureOptions, Verifier, VerifyOptions, verify_signature};
//!
//! let key = PublicKey::from_pem_file(Path::new("signer.pub.pem"))?;
//! let options = SignatureOptions {
//!     bundle: None,
//!     verify: VerifyOptions::digests(Algorithms::BOTH),
//! };
//! let report = verify_signature(
//!     Path::new("churn-1.0.0.tiffin"),
//!     &Verifier::Key(key),
//!     &options,
//!     &NoProgress,
//! )?;
//! assert!(report.is_ok(), "refused: {:?}", report.problems);
//! # Ok::<(), tiffin_core::Error>(())
//! ```
//!
//! With `run`, a package loads once and predicts from any number of threads:
//!
//! ```no_run
//! # #[cfg(feature = "run")] {
//! use std::path::Path;
//!
//! let loaded = tiffin_core::load(
//!     Path::new("churn-1.0.0.tiffin"),
//!     &tiffin_core::runtime::LoadOptions::default(),
//! )?;
//! let outputs = loaded.predict_json(&serde_json::json!({"X": [[5.1, 3.5, 1.4, 0.2]]}), true)?;
//! println!("{outputs}");
//! # }
//! # Ok::<(), tiffin_core::Error>(())
//! ```
//!
//! `examples/verify_signature.rs` and `examples/predict.rs` are the same calls as programs, run
//! by `cargo xtask ci`. Packs held to the doctor's checklist, the local store and registries are
//! in the crates above this one (`tiffin-doctor`, `tiffin-store`).

#![deny(missing_docs)]

#[cfg(feature = "run")]
mod convert;
pub mod crash;
mod error;
pub mod examples;
#[cfg(feature = "run")]
mod init;
pub mod layout;
#[cfg(feature = "run")]
pub mod model_card;
#[cfg(feature = "run")]
mod pack;
mod package;
#[cfg(feature = "run")]
pub mod payload;
#[cfg(feature = "run")]
mod rerun;
#[cfg(feature = "run")]
mod run;
pub mod safety;
pub mod scan;
pub mod sign;
mod verify;

#[cfg(feature = "run")]
pub use convert::{Conversion, ConvertOptions, convert_to_nnef};
pub use error::{Error, Result};
#[cfg(feature = "run")]
pub use init::{authoring_for, render_toml};
#[cfg(feature = "run")]
pub use pack::{PackOptions, Packed, pack, pack_checked};
pub use package::{
    Inspection, PackageKind, inspect, package_kind, parse_manifest, read_file, read_files,
    read_manifest_bytes,
};
#[cfg(feature = "run")]
#[cfg(feature = "run")]
pub use rerun::{model_source, rerun_examples, unchecked_runtime_note};
#[cfg(feature = "run")]
pub use run::{Loaded, load, load_verified};
pub use sign::{
    CertificateChain, PublicKey, SignOptions, SignatureClaim, SignatureOptions, SignatureReport,
    Signed, SigningKey, TrustRoots, Verifier, sign, signature_claim, verify_signature,
};
pub use verify::{Problem, ProblemKind, Report, VerifyOptions, chain, content_differs, verify};

/// Re-exported so that users of this crate name one version of the lower crates.
pub use tiffin_hash as hash;
pub use tiffin_manifest as manifest;
#[cfg(feature = "run")]
pub use tiffin_runtime as runtime;
