//! The packed manifest `tiffin.json`: what the packer writes into a package and the verifier reads.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{self, Problems};
use crate::{
    Authoring, Device, Error, Examples, FileRole, Framework, ModelFormat, Runtime, Serving,
    Signature, Training, ValidationErrors,
};

/// The version of the `tiffin.json` format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The packed manifest `tiffin.json`, written by `tiffin pack`: the package metadata, the
/// model's signature and the size and digests of every file in the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tiffin.json")]
pub struct Manifest {
    /// Version of the manifest format; always 1 for this format.
    #[schemars(extend("const" = 1))]
    pub format_version: u32,
    /// Name of the package, e.g. `"breast_cancer"`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub name: String,
    /// Version of the package, a semantic version, e.g. `"1.0.0"`.
    #[schemars(with = "String")]
    pub version: semver::Version,
    /// One or two sentences on what the model does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Authors, e.g. `["Ada <ada@example.com>"]`.
    pub authors: Vec<String>,
    /// License of the model as an SPDX expression, e.g. `"Apache-2.0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// When the model was made, as an RFC 3339 timestamp, e.g. `"2024-05-01T12:00:00Z"`.
    pub created: String,
    /// What the model is meant to be used for, and what not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    /// Keywords to find the model by, e.g. `["tabular"]`.
    pub tags: Vec<String>,
    /// Where the model is in the package and its format.
    pub model: ModelRef,
    /// The framework the model was trained with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<Framework>,
    /// Where the model came from: training code and data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Training>,
    /// What the model needs from the software that runs it.
    #[serde(default)]
    pub runtime: Runtime,
    /// What the model needs from the machine that runs it.
    #[serde(default)]
    pub device: Device,
    /// How `tiffin serve` runs the model: batching and input checks.
    #[serde(default, skip_serializing_if = "Serving::is_default")]
    pub serving: Serving,
    /// The model's inputs and outputs.
    pub signature: Signature,
    /// Every file of the package except `tiffin.json` and `checksum.txt`, sorted by path.
    pub files: Vec<FileEntry>,
    /// Golden examples: inputs and the outputs the model gave for them when packed, which
    /// `tiffin verify` runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<Examples>,
}

/// Where the model is in the package and its format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Path of the model inside the package, e.g. `"model.onnx"`, or of the folder of an
    /// NNEF model, e.g. `"model"`.
    pub path: String,
    /// Format of the model.
    pub format: ModelFormat,
    /// The ONNX opset the model uses, e.g. `17`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opset: Option<u32>,
}

/// One file of the package, with the digests the verifier checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path inside the package, relative, with `/` between folders, e.g. `"model.onnx"`.
    pub path: String,
    /// What the file is for.
    pub role: FileRole,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 digest of the content: 64 lowercase hex characters.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// BLAKE3 digest of the content: 64 lowercase hex characters.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub blake3: String,
}

impl Manifest {
    /// Builds the manifest of a package from its authoring file and the pieces the packer
    /// computed: the creation time (RFC 3339), the model's path inside the package and the
    /// file entries, which are sorted by path here.
    ///
    /// Fails with [`Error::Invalid`] when the authoring file is invalid, since its version
    /// and model format must be resolved to fill the manifest.
    pub fn from_authoring(
        a: &Authoring,
        created: String,
        model_path_in_package: String,
        mut files: Vec<FileEntry>,
    ) -> Result<Manifest, Error> {
        a.validate()?;
        // `validate` has just checked the version and the model format, so neither can fail.
        let version =
            semver::Version::parse(&a.package.version).expect("validate checked package.version");
        let format = a
            .model
            .resolved_format()
            .expect("validate checked the model format");
        files.sort_by(|x, y| x.path.cmp(&y.path));
        let p = &a.package;
        Ok(Manifest {
            format_version: FORMAT_VERSION,
            name: p.name.clone(),
            version,
            description: p.description.clone(),
            authors: p.authors.clone(),
            license: p.license.clone(),
            created,
            intended_use: p.intended_use.clone(),
            tags: p.tags.clone(),
            model: ModelRef {
                path: model_path_in_package,
                format,
                opset: a.model.opset,
            },
            framework: a.framework.clone(),
            training: a.training.clone(),
            runtime: a.runtime.clone(),
            device: a.device.clone(),
            serving: a.serving.clone(),
            signature: a.signature.clone(),
            files,
            examples: None,
        })
    }

    /// Parses a `tiffin.json`.
    ///
    /// The format version is checked first, so that a manifest from a newer tiffin gets a
    /// clear "upgrade tiffin" error rather than a complaint about a field it does not know.
    /// Unknown fields are refused. This only parses; call [`Manifest::validate`] to check
    /// the content.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Manifest, Error> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        match value.get("format_version") {
            None => {
                return Err(Error::MissingFormatVersion {
                    supported: FORMAT_VERSION,
                });
            }
            Some(found) if found.as_u64() != Some(u64::from(FORMAT_VERSION)) => {
                return Err(Error::UnsupportedFormatVersion {
                    found: found.clone(),
                    supported: FORMAT_VERSION,
                });
            }
            Some(_) => {}
        }
        Ok(serde_json::from_value(value)?)
    }

    /// The canonical bytes of `tiffin.json`: pretty-printed JSON in field order, ending with
    /// a newline. The package digest is the SHA-256 of exactly these bytes.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serializing cannot fail: every map key is a string and every type serializes
        // infallibly, so an error here is a bug in this crate.
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("a Manifest always serializes to JSON");
        bytes.push(b'\n');
        bytes
    }

    /// Checks every rule of the manifest and returns all problems at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut problems = Problems::default();
        if self.format_version != FORMAT_VERSION {
            problems.push(
                "format_version",
                format!(
                    "unsupported format_version {}: this tiffin reads format {FORMAT_VERSION}; upgrade tiffin",
                    self.format_version
                ),
            );
        }
        validate::check_name(&mut problems, "name", &self.name);
        validate::check_license(&mut problems, "license", self.license.as_deref());
        validate::check_created(&mut problems, "created", &self.created);
        validate::check_training(&mut problems, "training", self.training.as_ref());
        validate::check_signature(&mut problems, &self.signature);
        self.check_files(&mut problems);
        if let Some(examples) = &self.examples {
            for (field, path) in [
                ("examples.inputs", &examples.inputs),
                ("examples.outputs", &examples.outputs),
            ] {
                if !self
                    .files
                    .iter()
                    .any(|f| &f.path == path && f.role == FileRole::Example)
                {
                    problems.push(
                        field,
                        format!("`{path}` is not among the files with role example: pack the model again"),
                    );
                }
            }
            crate::examples::check_tolerances(
                &mut problems,
                "examples.tolerance",
                &examples.tolerance,
                &self.signature,
            );
            if let Some(parity) = &examples.parity {
                if !self
                    .files
                    .iter()
                    .any(|f| f.path == parity.expected && f.role == FileRole::Example)
                {
                    problems.push(
                        "examples.parity.expected",
                        format!(
                            "`{}` is not among the files with role example: pack the model again",
                            parity.expected
                        ),
                    );
                }
                let tolerances = parity
                    .outputs
                    .iter()
                    .map(|(name, result)| (name.clone(), result.tolerance.clone()))
                    .collect();
                crate::examples::check_parity(
                    &mut problems,
                    "examples.parity.outputs",
                    &tolerances,
                    &self.signature,
                );
            }
        }
        problems.finish()
    }

    fn check_files(&self, problems: &mut Problems) {
        // Before anything per file: a list past the bound would give as many problems as files.
        if self.files.len() > validate::MAX_FILES {
            problems.push("files", validate::too_many_files(self.files.len()));
            return;
        }
        let model = &self.model.path;
        match validate::check_relative_path(model) {
            Err(message) => problems.push("model.path", message),
            Ok(()) => {
                // The model is a file of the package, or a folder holding some of its files.
                let folder = format!("{model}/");
                if !self
                    .files
                    .iter()
                    .any(|f| &f.path == model || f.path.starts_with(&folder))
                {
                    problems.push(
                        "model.path",
                        format!("`{model}` is not among the files: list the model file in files, or pack the model again"),
                    );
                }
            }
        }

        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, file) in self.files.iter().enumerate() {
            let at = format!("files[{i}]");
            if let Err(message) = validate::check_relative_path(&file.path) {
                problems.push(format!("{at}.path"), message);
            }
            if let Some(first) = first_seen.get(file.path.as_str()) {
                problems.push(
                    format!("{at}.path"),
                    format!(
                        "`{}` is listed twice (also at files[{first}]): list each file once",
                        file.path
                    ),
                );
            } else {
                first_seen.insert(&file.path, i);
                if let Some(previous) = i.checked_sub(1).map(|j| &self.files[j])
                    && previous.path > file.path
                {
                    problems.push(
                        format!("{at}.path"),
                        format!(
                            "`{}` comes after `{}`: files must be sorted by path (byte order); \
                             pack the model again so that tiffin writes them in order",
                            file.path, previous.path
                        ),
                    );
                }
            }
            validate::check_digest(problems, &format!("{at}.sha256"), "SHA-256", &file.sha256);
            validate::check_digest(problems, &format!("{at}.blake3"), "BLAKE3", &file.blake3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_json_slice_reports_a_missing_format_version() {
        let err = Manifest::from_json_slice(br#"{"name": "x"}"#).unwrap_err();
        assert!(
            matches!(err, Error::MissingFormatVersion { supported: 1 }),
            "{err}"
        );
    }

    #[test]
    fn from_json_slice_reports_a_non_integer_format_version_as_written() {
        let err = Manifest::from_json_slice(br#"{"format_version": "1"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported format_version \"1\": this tiffin reads format 1; upgrade tiffin"
        );
    }

    #[test]
    fn from_json_slice_reports_bad_json_with_its_position() {
        let err = Manifest::from_json_slice(b"{").unwrap_err().to_string();
        assert_eq!(err, "EOF while parsing an object at line 1 column 1");
    }
}
