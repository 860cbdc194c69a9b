//! Where tiffin packages are kept and how they travel: the local content-addressed store
//! (`$TIFFIN_HOME`: blobs by sha256, packages as folders of hard links to them, tags
//! `name:version`, every write a rename of something complete and verified) and the OCI
//! registry client that pushes and pulls packages as CNCF ModelPack artifacts.
//!
//! This is the one tiffin crate with an HTTP client and TLS (ureq on rustls); a consumer that
//! only packs, verifies or signs packages needs `tiffin-core` alone.
//!
//! Pulling a package into a folder, verified whole before it appears (`examples/pull_into.rs`
//! is this as a program, run by tiffin's CI against a registry):
//!
//! ```no_run
//! use std::path::Path;
//!
//! use tiffin_core::VerifyOptions;
//! use tiffin_core::hash::Algorithms;
//! use tiffin_store::oci::{self, ClientOptions, Credentials, Reference};
//!
//! let reference: Reference = "localhost:5000/models/churn:1.0.0".parse()?;
//! let options = ClientOptions {
//!     insecure: false,
//!     credentials: Credentials::lookup(&reference.registry)?,
//! };
//! let verify = VerifyOptions::digests(Algorithms::BLAKE3);
//! let pulled = oci::pull_into(&reference, Path::new("models"), &options, &verify, None)?;
//! println!("{}", pulled.folder.display());
//! # Ok::<(), tiffin_store::Error>(())
//! ```

#![deny(missing_docs)]

mod error;
pub mod oci;
mod store;

pub use error::{Error, Result};
pub use store::{Collected, Entry, HOME_VAR, Removed, Store, Stored, default_root, resolve};
