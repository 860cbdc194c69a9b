//! Where tiffin packages are kept and how they travel: the local content-addressed store
//! (`$TIFFIN_HOME`: blobs by sha256, packages as folders of hard links to them, tags
//! `name:version`, every write a rename of something complete and verified) and the OCI
//! registry client that pushes and pulls packages as CNCF ModelPack artifacts.
//!
//! This is the one tiffin crate with an HTTP client and TLS (ureq on rustls); a consumer that
//! only packs, verifies or signs packages needs `tiffin-core` alone.

#![deny(missing_docs)]

mod error;
pub mod oci;
mod store;

pub use error::{Error, Result};
pub use store::{Collected, Entry, HOME_VAR, Removed, Store, Stored, default_root, resolve};
