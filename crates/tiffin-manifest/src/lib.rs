//! Format types of a tiffin package: the authoring file `tiffin.toml`, the packed manifest
//! `tiffin.json`, their JSON Schemas and their validation.
//!
//! A person writes `tiffin.toml` ([`Authoring`]); `tiffin pack` reads it, hashes the files
//! and writes `tiffin.json` ([`Manifest`]) into the package. Parsing only checks the shape
//! of a document; [`Authoring::validate`] and [`Manifest::validate`] check its content and
//! report every problem at once.
//!
//! ```
//! let toml = r#"
//! [package]
//! name = "iris"
//! version = "1.0.0"
//!
//! [model]
//! path = "model.onnx"
//!
//! [signature]
//! [[signature.inputs]]
//! name = "X"
//! dtype = "f32"
//! shape = ["batch", 4]
//! [[signature.outputs]]
//! name = "label"
//! dtype = "i64"
//! shape = ["batch"]
//! "#;
//! let authoring = tiffin_manifest::Authoring::from_toml_str(toml)?;
//! authoring.validate()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod authoring;
mod error;
mod examples;
mod manifest;
mod types;
mod validate;

pub use authoring::{Authoring, FileSpec, ModelSpec, Package};
pub use error::Error;
pub use examples::{
    Compare, Examples, ExamplesSpec, Parity, ParityResult, ParityTolerance, Tolerance,
    recorded_difference,
};
pub use manifest::{FORMAT_VERSION, FileEntry, Manifest, ModelRef};
pub use types::{
    DType, Device, Dim, FileRole, Framework, ModelFormat, Runtime, Serving, Signature, TensorSpec,
    Training, infer_format,
};
pub use validate::{
    MAX_FILES, MAX_PATH_LEN, Problem, ValidationErrors, check_relative_path, is_package_name,
};

/// The JSON Schema of the authoring file `tiffin.toml`, for editors and linters.
pub fn authoring_schema() -> schemars::Schema {
    schemars::schema_for!(Authoring)
}

/// The JSON Schema of the packed manifest `tiffin.json`.
pub fn manifest_schema() -> schemars::Schema {
    schemars::schema_for!(Manifest)
}
