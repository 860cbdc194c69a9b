//! The error type of this crate: why a `tiffin.toml` or `tiffin.json` could not be read or used.

use crate::ValidationErrors;

/// Why a `tiffin.toml` or `tiffin.json` could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `tiffin.toml` is not valid TOML, or does not fit the authoring format (for
    /// example an unknown or misspelled field); the message names the field and line.
    #[error("{0}")]
    Toml(toml::de::Error),

    /// `tiffin.json` is not valid JSON, or does not fit the manifest format.
    #[error("{0}")]
    Json(serde_json::Error),

    /// `tiffin.json` was written in a format version this version of tiffin cannot read.
    #[error(
        "unsupported format_version {found}: this tiffin reads format {supported}; upgrade tiffin"
    )]
    UnsupportedFormatVersion {
        /// The `format_version` found in the file, as written there.
        found: serde_json::Value,
        /// The format version this crate reads.
        supported: u32,
    },

    /// `tiffin.json` has no `format_version`, so it is not a tiffin manifest.
    #[error(
        "tiffin.json has no `format_version`: it is not a tiffin manifest (this tiffin reads format {supported}); pack the model again with `tiffin pack`"
    )]
    MissingFormatVersion {
        /// The format version this crate reads.
        supported: u32,
    },

    /// A dtype name that is not one of the known ones.
    #[error(
        "unknown dtype `{found}`: use one of f16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, bool, string"
    )]
    UnknownDType {
        /// The name that was given.
        found: String,
    },

    /// The model format could not be told from the model's path.
    #[error(
        "cannot tell the format of model `{path}` from its name: name it `*.onnx`, `*.nnef.tar`, `*.nnef.tgz`, `*.nnef.tar.gz` or, for an NNEF folder, end it with `/`; or set `format = \"onnx\"` or `format = \"nnef\"` in [model]"
    )]
    UnknownModelFormat {
        /// The model path, as written in `tiffin.toml`.
        path: String,
    },

    /// The file parsed, but its content breaks the rules listed in the problems.
    #[error("the package description has problems:\n{0}")]
    Invalid(ValidationErrors),
}

// The wrapped errors are shown in this error's own message, so they are deliberately not exposed
// as `source()`: a caller printing the chain (`{:#}` with anyhow) would print them twice.
impl From<toml::de::Error> for Error {
    fn from(e: toml::de::Error) -> Self {
        Error::Toml(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}

impl From<ValidationErrors> for Error {
    fn from(e: ValidationErrors) -> Self {
        Error::Invalid(e)
    }
}
