//! The tiffin package core: layout, pack, verify, inspect, doctor and signing, shared by the CLI
//! and the server.
//!
//! A package is a folder `NAME/VERSION/` or a single archive `NAME-VERSION.tiffin` holding the
//! model, `tiffin.json` (the manifest: metadata, signature and every file's size, sha256 and
//! blake3), `signature.json`, `model-card.md` and `checksum.txt`. The package digest is the sha256
//! of `tiffin.json`. Everything that reads or writes packages goes through this crate, so the
//! command line and the server cannot disagree about what a valid package is.

#![deny(missing_docs)]

#[cfg(feature = "run")]
mod convert;
#[cfg(feature = "run")]
mod doctor;
mod error;
pub mod examples;
#[cfg(feature = "run")]
mod init;
pub mod layout;
#[cfg(feature = "run")]
mod model_card;
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
#[cfg(feature = "run")]
pub use doctor::{
    DoctorOptions, DoctorReport, FileSize, Finding, Level, Location, Rule, Skipped, SubjectKind,
    doctor,
};
pub use error::{Error, Result};
#[cfg(feature = "run")]
pub use init::{authoring_for, render_toml};
#[cfg(feature = "run")]
pub use pack::{PackOptions, Packed, pack};
pub use package::{
    Inspection, PackageKind, inspect, package_kind, parse_manifest, read_file, read_manifest_bytes,
};
#[cfg(feature = "run")]
#[cfg(feature = "run")]
pub use rerun::unchecked_runtime_note;
#[cfg(feature = "run")]
pub use run::{Loaded, load, load_verified};
pub use sign::{
    CertificateChain, PublicKey, SignOptions, SignatureClaim, SignatureOptions, SignatureReport,
    Signed, SigningKey, TrustRoots, Verifier, sign, signature_claim, verify_signature,
};
pub use verify::{Problem, ProblemKind, Report, VerifyOptions, content_differs, verify};

/// Re-exported so that users of this crate name one version of the lower crates.
pub use tiffin_hash as hash;
pub use tiffin_manifest as manifest;
#[cfg(feature = "run")]
pub use tiffin_runtime as runtime;
