//! The authoring file `tiffin.toml`: what a person writes to describe a model before packing it.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{self, Problems};
use crate::{
    Device, Error, ExamplesSpec, FileRole, Framework, ModelFormat, Runtime, Serving, Signature,
    Training, ValidationErrors, infer_format,
};

/// The authoring file `tiffin.toml`: describes a trained model so that `tiffin pack` can
/// turn it into a verifiable package. Paths are relative to the folder of `tiffin.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tiffin.toml")]
pub struct Authoring {
    /// Who made the model, what it is called and what it is for.
    pub package: Package,
    /// The model file.
    pub model: ModelSpec,
    /// The framework the model was trained with, e.g. scikit-learn 1.5.2.
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
    /// Extra files to ship with the model, e.g. `requirements.txt`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSpec>,
    /// Example inputs to run at pack time; their outputs become the package's golden outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<ExamplesSpec>,
}

/// The `[package]` table: who made the model, what it is called and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Name of the package: 1 to 64 lowercase letters, digits, `.`, `_` or `-`, starting
    /// with a letter or digit, e.g. `"breast_cancer"`. It is used in folder names, archive
    /// names and OCI references.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub name: String,
    /// Version of the package, as a semantic version MAJOR.MINOR.PATCH, e.g. `"1.0.0"`.
    pub version: String,
    /// One or two sentences on what the model does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Authors, e.g. `["Ada <ada@example.com>"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// License of the model as an SPDX expression, e.g. `"Apache-2.0"` or
    /// `"MIT OR Apache-2.0"`; `"LicenseRef-<name>"` for a license of your own,
    /// `"NOASSERTION"` if unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// When the model was made, as an RFC 3339 timestamp, e.g. `"2024-05-01T12:00:00Z"`
    /// (quoted or as a TOML datetime). When absent, the packer sets it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "created_from_string_or_datetime"
    )]
    pub created: Option<String>,
    /// What the model is meant to be used for, and what not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    /// Path of your model card (a document on what the model is for and how it was
    /// made), relative to the folder of `tiffin.toml`, e.g. `"MODEL_CARD.md"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_card: Option<String>,
    /// Keywords to find the model by, e.g. `["tabular", "classification"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The `[model]` table: the model file and its format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Path of the model relative to the folder of `tiffin.toml`, e.g. `"model.onnx"`;
    /// for an NNEF folder end it with `/`, e.g. `"model/"`.
    pub path: String,
    /// Format of the model. When absent it is inferred from the path: `.onnx` is ONNX;
    /// `.nnef.tar`, `.nnef.tgz`, `.nnef.tar.gz` and folders are NNEF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// The ONNX opset the model uses, e.g. `17`; ONNX models only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opset: Option<u32>,
}

/// Reads `created` from a string or from a TOML datetime.
///
/// People naturally write `created = 2024-05-01T12:00:00Z` without quotes, which TOML
/// reads as a datetime rather than a string; both forms are accepted and kept as text so
/// that validation checks them the same way.
fn created_from_string_or_datetime<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct CreatedVisitor;

    impl<'de> serde::de::Visitor<'de> for CreatedVisitor {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp such as \"2024-05-01T12:00:00Z\"")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
            // The toml deserializer hands a datetime over as a one-entry map that only
            // `toml::value::Datetime` knows how to read.
            let datetime = toml::value::Datetime::deserialize(
                serde::de::value::MapAccessDeserializer::new(map),
            )?;
            Ok(datetime.to_string())
        }
    }

    deserializer.deserialize_any(CreatedVisitor).map(Some)
}

impl ModelSpec {
    /// The format given in `format`, or else the one inferred from `path`.
    pub fn resolved_format(&self) -> Result<ModelFormat, Error> {
        self.format.map_or_else(|| infer_format(&self.path), Ok)
    }
}

/// One `[[files]]` entry: an extra file to ship with the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path of the file relative to the folder of `tiffin.toml`, with `/` between
    /// folders, e.g. `"requirements.txt"`; it keeps this path inside the package.
    pub path: String,
    /// What the file is for, e.g. `"environment"`; `"extra"` when absent.
    #[serde(default)]
    pub role: FileRole,
}

impl Authoring {
    /// Parses a `tiffin.toml`. Unknown fields are refused with an error that names them.
    ///
    /// This only parses; call [`Authoring::validate`] to check the content.
    pub fn from_toml_str(s: &str) -> Result<Authoring, Error> {
        Ok(toml::from_str(s)?)
    }

    /// Checks every rule of the authoring file and returns all problems at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut problems = Problems::default();
        let package = &self.package;
        validate::check_name(&mut problems, "package.name", &package.name);
        validate::check_version(&mut problems, "package.version", &package.version);
        validate::check_license(&mut problems, "package.license", package.license.as_deref());
        if let Some(created) = &package.created {
            validate::check_created(&mut problems, "package.created", created);
        }
        if let Some(card) = &package.model_card
            && let Err(message) = validate::check_relative_path(card)
        {
            problems.push("package.model_card", message);
        }

        self.check_model(&mut problems);
        validate::check_training(&mut problems, "training", self.training.as_ref());
        validate::check_signature(&mut problems, &self.signature);
        self.check_files(&mut problems);
        if let Some(examples) = &self.examples {
            if let Err(message) = validate::check_relative_path(&examples.inputs) {
                problems.push("examples.inputs", message);
            }
            crate::examples::check_tolerances(
                &mut problems,
                "examples.tolerance",
                &examples.tolerance,
                &self.signature,
            );
            match &examples.expected {
                Some(expected) => {
                    if let Err(message) = validate::check_relative_path(expected) {
                        problems.push("examples.expected", message);
                    }
                }
                None => {
                    if !examples.parity.is_empty() || examples.expected_from.is_some() {
                        problems.push(
                            "examples.parity",
                            "parity settings need the original model's outputs: add \
                             `expected = \"expected.json\"` to [examples]",
                        );
                    }
                }
            }
            crate::examples::check_parity(
                &mut problems,
                "examples.parity",
                &examples.parity,
                &self.signature,
            );
        }
        problems.finish()
    }

    fn check_model(&self, problems: &mut Problems) {
        // A trailing `/` marks an NNEF folder; the rest of the path follows the usual rules.
        let path = self
            .model
            .path
            .strip_suffix('/')
            .unwrap_or(&self.model.path);
        if let Err(message) = validate::check_relative_path(path) {
            problems.push("model.path", message);
        }
        match self.model.resolved_format() {
            Ok(ModelFormat::Nnef) if self.model.opset.is_some() => problems.push(
                "model.opset",
                "opset is the ONNX operator set version and this model is NNEF: remove opset",
            ),
            Ok(_) => {}
            Err(err) => problems.push("model.format", err.to_string()),
        }
    }

    fn check_files(&self, problems: &mut Problems) {
        // Before anything per file: a list past the bound would give as many problems as files.
        if self.files.len() > validate::MAX_FILES {
            problems.push("files", validate::too_many_files(self.files.len()));
            return;
        }
        // The model and the model card are shipped already; listing them again would put
        // the same path twice in the package.
        let mut first_seen: HashMap<&str, String> = HashMap::new();
        first_seen.insert(
            self.model.path.trim_end_matches('/'),
            "model.path".to_owned(),
        );
        if let Some(card) = &self.package.model_card {
            first_seen.insert(card, "package.model_card".to_owned());
        }
        for (i, file) in self.files.iter().enumerate() {
            let field = format!("files[{i}].path");
            if let Err(message) = validate::check_relative_path(&file.path) {
                problems.push(&field, message);
            }
            if let Some(first) = first_seen.get(file.path.as_str()) {
                problems.push(
                    &field,
                    format!(
                        "`{}` is listed twice (also at {first}): list each file once",
                        file.path
                    ),
                );
            } else {
                first_seen.insert(&file.path, field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [package]
        name = "m"
        version = "0.1.0"

        [model]
        path = "model.onnx"

        [signature]
        [[signature.inputs]]
        name = "x"
        dtype = "f32"
        shape = ["batch", 3]
        [[signature.outputs]]
        name = "y"
        dtype = "i64"
        shape = ["batch"]
    "#;

    #[test]
    fn minimal_file_parses_with_defaults_and_is_valid() {
        let a = Authoring::from_toml_str(MINIMAL).unwrap();
        assert_eq!(a.package.authors, Vec::<String>::new());
        assert_eq!(a.model.resolved_format().unwrap(), ModelFormat::Onnx);
        assert_eq!(a.runtime, Runtime::default());
        assert_eq!(a.device, Device::default());
        assert!(a.files.is_empty());
        a.validate().unwrap();
    }

    #[test]
    fn nnef_folder_with_trailing_slash_is_a_valid_model_path() {
        let a = Authoring::from_toml_str(&MINIMAL.replace("model.onnx", "model/")).unwrap();
        assert_eq!(a.model.resolved_format().unwrap(), ModelFormat::Nnef);
        a.validate().unwrap();
    }

    #[test]
    fn opset_on_an_nnef_model_is_a_problem() {
        let toml = MINIMAL.replace("path = \"model.onnx\"", "path = \"m.nnef.tgz\"\nopset = 17");
        let errs = Authoring::from_toml_str(&toml)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert_eq!(errs.0[0].field, "model.opset");
    }

    #[test]
    fn file_listed_again_as_the_model_is_a_problem() {
        let toml = format!("{MINIMAL}\n[[files]]\npath = \"model.onnx\"\n");
        let errs = Authoring::from_toml_str(&toml)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            errs.to_string(),
            "- files[0].path: `model.onnx` is listed twice (also at model.path): list each file once"
        );
    }
}
