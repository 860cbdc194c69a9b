//! The one error type of tiffin-store: every message names the thing at fault and how to fix it.

use std::path::PathBuf;

/// Why the store or a registry could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What tiffin-core refused: a package that does not verify, a signature that does not
    /// check out, a file that cannot be read.
    #[error(transparent)]
    Core(#[from] tiffin_core::Error),
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
    /// A file named by `tiffin.toml` is missing or is not a regular file.
    #[error("{}: {reason}", path.display())]
    BadInput {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The package version already exists at the destination.
    #[error(
        "{} already exists: bump the version in tiffin.toml, or pass --force to replace it",
        path.display()
    )]
    AlreadyExists {
        /// The existing folder or archive.
        path: PathBuf,
    },
    /// A pull into a folder found another package at the version's place.
    #[error(
        "{} holds another package ({existing}) than the one pulled ({pulled}): remove it, or \
         pull into another folder",
        path.display()
    )]
    OtherPackageAt {
        /// The `NAME/VERSION` folder.
        path: PathBuf,
        /// The digest of the package already there.
        existing: String,
        /// The digest of the package pulled.
        pulled: String,
    },
    /// The path is neither a package folder nor a package archive.
    #[error("{} is not a tiffin package: {reason}", path.display())]
    NotAPackage {
        /// The path given.
        path: PathBuf,
        /// Why it was not recognised.
        reason: String,
    },
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
        problems: Vec<tiffin_core::Problem>,
    },
    /// The local store cannot do what was asked.
    #[error("local store: {reason}")]
    Store {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Neither a path nor a package of the local store.
    #[error(
        "no file or folder `{given}`, and no package `{given}` in the local store {}: {}",
        root.display(),
        if known.is_empty() {
            "the store is empty; add a package with `tiffin add PKG` or `tiffin pull REF`".to_owned()
        } else {
            format!("it holds {}", known.join(", "))
        }
    )]
    NotInStore {
        /// The argument given.
        given: String,
        /// The store searched.
        root: PathBuf,
        /// The tags it holds, each with the start of its digest.
        known: Vec<String>,
    },
    /// A tag or registry reference is malformed.
    #[error("`{given}` is not a valid reference: {reason}")]
    BadReference {
        /// The reference given.
        given: String,
        /// What is wrong and an example of a good one.
        reason: String,
    },
    /// Data that should have a digest has another: a damaged or altered blob.
    #[error(
        "blob {expected} from {source_name} does not match its digest: got {actual_size} bytes \
         with {actual} (expected {expected_size} bytes); the copy is damaged or was altered, \
         so nothing of it was stored: push the package again, or ask the registry's operator"
    )]
    BlobDigest {
        /// The digest the blob should have.
        expected: String,
        /// The digest of what arrived.
        actual: String,
        /// The size the blob should have.
        expected_size: u64,
        /// The bytes that arrived (one more than expected means: more than expected).
        actual_size: u64,
        /// Where the data came from.
        source_name: String,
    },
    /// A registry refused a request, answered something unexpected, or could not be reached.
    #[error("registry {url}: {reason}")]
    Registry {
        /// The URL of the request.
        url: String,
        /// What happened and what to do.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Read { path, source }
    }

    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Write { path, source }
    }
}

impl From<tiffin_hash::Error> for Error {
    fn from(e: tiffin_hash::Error) -> Error {
        Error::Core(e.into())
    }
}
