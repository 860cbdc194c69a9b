//! The one error type of tiffin-core: every message names the thing at fault and how to fix it.

use std::path::PathBuf;

use crate::safety::UnsafeFormat;

/// Why a package could not be packed, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// What was being written.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The folder given to `pack` has no authoring file.
    #[error(
        "no tiffin.toml in {}: write one describing the model (see fixtures/churn_model/tiffin.toml)",
        dir.display()
    )]
    NoAuthoringFile {
        /// The folder that was searched.
        dir: PathBuf,
    },
    /// The authoring file or manifest could not be parsed, or failed validation.
    #[error("{}", path.display())]
    Manifest {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        source: tiffin_manifest::Error,
    },
    /// A file named by `tiffin.toml` is missing or is not a regular file.
    #[error("{}: {reason}", path.display())]
    BadInput {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A file to be packed executes code when loaded.
    #[error("refusing {}: it is {format}; {}", path.display(), crate::safety::UNSAFE_FIX)]
    UnsafeFile {
        /// The file at fault.
        path: PathBuf,
        /// What it was recognised as.
        format: UnsafeFormat,
    },
    /// The package version already exists at the destination.
    #[error(
        "{} already exists and holds another package: bump the version in tiffin.toml, or \
         pass --force to replace it",
        path.display()
    )]
    AlreadyExists {
        /// The existing folder or archive, which is not the package being packed (a pack of
        /// the same package again keeps it and succeeds).
        path: PathBuf,
    },
    /// The path is neither a package folder nor a package archive.
    #[error("{} is not a tiffin package: {reason}", path.display())]
    NotAPackage {
        /// The path given.
        path: PathBuf,
        /// Why it was not recognised.
        reason: String,
    },
    /// An input is past one of tiffin's resource bounds, so it was refused before it could
    /// take memory or time without end (docs/resources.md lists every bound).
    #[error(
        "{}: {found}, more than the bound {bound} ({limit}) allows: {fix}",
        path.display()
    )]
    TooLarge {
        /// The package or file at fault.
        path: PathBuf,
        /// What was counted or measured, with its value, e.g. `holds 100009 entries`.
        found: String,
        /// The name of the bound, e.g. `MAX_ENTRIES`.
        bound: &'static str,
        /// The value of the bound.
        limit: u64,
        /// How to fix the input.
        fix: &'static str,
    },
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] tiffin_hash::Error),
    /// The model could not be loaded, checked or run.
    #[cfg(feature = "run")]
    #[error("{}", path.display())]
    Model {
        /// The package or model file concerned.
        path: PathBuf,
        /// What the runtime said (boxed: runtime errors are large, and errors should be cheap to
        /// move around on the happy path).
        source: Box<tiffin_runtime::Error>,
    },
    /// A payload (a request, example inputs) does not fit the signature.
    #[cfg(feature = "run")]
    #[error(transparent)]
    Payload(#[from] crate::payload::PayloadError),
    /// A package failed verification, so it will not be loaded.
    #[error(
        "{} failed verification: {}",
        path.display(),
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Invalid {
        /// The package.
        path: PathBuf,
        /// What verification found, each with its file.
        problems: Vec<crate::Problem>,
    },
    /// `doctor` found failures in an authoring folder, so `pack` refused it.
    #[error(
        "{}: not packed, {} check(s) failed:\n{}\nfix them, or pass --skip-check RULE to pack anyway",
        path.display(),
        failures.len(),
        failures.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n")
    )]
    Checks {
        /// The authoring folder.
        path: PathBuf,
        /// Each failure: `[rule] message (location); fix: ...`.
        failures: Vec<String>,
    },
    /// The model was to be run (verify's model check), but this build of tiffin-core has no
    /// runtime: its `run` feature is off.
    #[error(
        "cannot load the model of {}: this build of tiffin-core has no model runtime (its `run` \
         feature is off); verify with `run_model: false`, or build with the feature",
        path.display()
    )]
    NoRuntime {
        /// The package.
        path: PathBuf,
    },
    /// A key file could not be used to sign or check a signature.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it and what to give instead.
        reason: String,
    },
    /// A package could not be signed.
    #[error("{}: not signed: {reason}", path.display())]
    Sign {
        /// The package.
        path: PathBuf,
        /// Why, and how to fix it.
        reason: String,
    },
    /// Golden example files could not be read or written.
    #[error("{}: {reason}", path.display())]
    Examples {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The packaged model disagrees with the original model's outputs past the parity tolerance.
    #[error(
        "{}: the packaged model disagrees with the original model's outputs:\n{table}fix the \
         export (a float64 model fed float32, a wrong opset or converter option), or where a known \
         cause explains it, allow it in [examples.parity.OUTPUT] (abs, rel, min_agreement)",
        path.display()
    )]
    Parity {
        /// The file of expected outputs.
        path: PathBuf,
        /// The comparison, one row per output (see `examples::parity_table`).
        table: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tiffin_sign::Error> for Error {
    fn from(e: tiffin_sign::Error) -> Error {
        match e {
            tiffin_sign::Error::Read { path, source } => Error::Read { path, source },
            tiffin_sign::Error::Key { path, reason } => Error::Key { path, reason },
            // The enum is non-exhaustive; its message is kept whole.
            other => Error::Key {
                path: PathBuf::new(),
                reason: other.to_string(),
            },
        }
    }
}

impl Error {
    /// The [`Error::Read`] of `path`, for `map_err` on an I/O result.
    pub fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Read { path, source }
    }

    /// The [`Error::Write`] of `path`, for `map_err` on an I/O result.
    pub fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Write { path, source }
    }
}
