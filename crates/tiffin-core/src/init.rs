//! `init`: a first `tiffin.toml` for a model, with the signature read from the graph.

use std::path::Path;

use tiffin_manifest::{Authoring, Device, ModelSpec, Package, Runtime, infer_format};
use tiffin_runtime::ModelSource;

use crate::{Error, Result};

/// Builds the authoring file for the model at `model` (an ONNX file, an NNEF archive or folder):
/// names, dtypes and shapes of inputs and outputs from the graph, dynamic dims named, class
/// labels and feature names where the graph carries them. The model path in it is the model's
/// file name, as `tiffin.toml` sits beside the model.
pub fn authoring_for(model: &Path, name: Option<&str>, version: &str) -> Result<Authoring> {
    let file_name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| bad(model, "give the path of a model file or NNEF folder"))?;
    let rel = if model.is_dir() {
        format!("{file_name}/")
    } else {
        file_name.clone()
    };
    let format = infer_format(&rel).map_err(|e| Error::Manifest {
        path: model.to_owned(),
        source: e,
    })?;
    let source = if model.is_dir() {
        ModelSource::Dir(model.to_owned())
    } else {
        ModelSource::Bytes(std::fs::read(model).map_err(Error::read(model))?)
    };
    let model_err = |source| Error::Model {
        path: model.to_owned(),
        source: Box::new(source),
    };
    let signature = tiffin_runtime::graph_signature(&source, format).map_err(model_err)?;
    // Typed once more with the signature read: it says which dims tract types per shape.
    let per_shape_dims =
        tiffin_runtime::check_signature(&signature, &source, format).map_err(model_err)?;
    let name = name
        .map(str::to_owned)
        .unwrap_or_else(|| package_name(&file_name));
    let authoring = Authoring {
        package: Package {
            name,
            version: version.to_owned(),
            description: None,
            authors: Vec::new(),
            license: None,
            created: None,
            intended_use: None,
            model_card: None,
            tags: Vec::new(),
        },
        model: ModelSpec {
            path: rel,
            format: Some(format),
            opset: None,
        },
        framework: None,
        training: None,
        runtime: Runtime {
            per_shape_dims,
            ..Runtime::default()
        },
        device: Device::default(),
        serving: Default::default(),
        signature,
        files: Vec::new(),
        examples: None,
    };
    authoring.validate().map_err(|e| Error::Manifest {
        path: model.to_owned(),
        source: e.into(),
    })?;
    Ok(authoring)
}

/// The TOML text of an authoring file made by [`authoring_for`], with a header saying what to
/// fill in next.
pub fn render_toml(authoring: &Authoring) -> String {
    let body = toml::to_string(authoring).expect("an authoring file always serializes to TOML");
    format!(
        "# tiffin.toml written by `tiffin init` from the model's graph. Check the signature, then\n\
         # add a description, authors, license, [training] and [examples] before `tiffin pack`.\n\
         # Every field: docs/schema/tiffin.toml.schema.json\n\n{body}"
    )
}

/// A package name from a file name: lowercase, other characters replaced by `_`, extensions off.
fn package_name(file_name: &str) -> String {
    let stem = file_name.split('.').next().unwrap_or(file_name);
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.insert(0, 'm');
        name.truncate(64);
    }
    name
}

fn bad(path: &Path, reason: &str) -> Error {
    Error::BadInput {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_from_file_names() {
        assert_eq!(package_name("model.onnx"), "model");
        assert_eq!(package_name("My Model v2.onnx"), "my_model_v2");
        assert_eq!(package_name("_x.nnef.tar"), "m_x");
    }
}
