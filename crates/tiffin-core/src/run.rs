//! Loading a package's model and running it: what `predict`, `verify`'s examples, `convert` and
//! the server all go through.

use std::path::{Path, PathBuf};

use tiffin_manifest::Manifest;
use tiffin_runtime::{LoadOptions, Model, Tensor};

use crate::package::{package_kind, read_files};
use crate::rerun::{model_source, rerun_examples, tensors_in};
use crate::{Error, Result, VerifyOptions, examples, payload, verify};

/// A verified package with its model loaded, ready to answer many calls from many threads.
#[derive(Debug)]
pub struct Loaded {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its digest, `sha256:<hex>`.
    pub digest: String,
    /// The model.
    pub model: Model,
}

/// Verifies a package (digests and file list; refusing it on any problem), then loads its model.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded> {
    let verify_options = VerifyOptions {
        run_model: false,
        ..VerifyOptions::default()
    };
    let report = verify::verify(path, &verify_options, &tiffin_hash::NoProgress)?;
    load_verified(path, report, options)
}

/// Loads the model of the package at `path` given the report of a verification just made of
/// that same path ([`verify`](crate::verify()), or the `package` report of
/// [`verify_signature`](crate::verify_signature)), so that a caller who verified first (a server
/// checking signatures) does not hash every file a second time. A report with any problem is
/// refused as [`load`] refuses the package.
pub fn load_verified(path: &Path, report: crate::Report, options: &LoadOptions) -> Result<Loaded> {
    if !report.is_ok() {
        return Err(Error::Invalid {
            path: path.to_owned(),
            problems: report.problems,
        });
    }
    let Some(manifest) = report.manifest else {
        return Err(Error::Invalid {
            path: path.to_owned(),
            problems: report.problems,
        });
    };
    let kind = package_kind(path)?;
    let source = model_source(path, kind, &manifest)?;
    let model = Model::load_owned(source, manifest.model.format, &manifest.signature, options)
        .map_err(|source| Error::Model {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
    Ok(Loaded {
        path: path.to_owned(),
        digest: report.digest,
        manifest,
        model,
    })
}

impl Loaded {
    /// Decodes a JSON payload (any form [`payload::decode`] takes), runs the model and encodes
    /// the outputs by name, with class labels mapped when `map_labels`.
    pub fn predict_json(
        &self,
        input: &serde_json::Value,
        map_labels: bool,
    ) -> Result<serde_json::Value> {
        let inputs = payload::decode(&self.manifest.signature, input)?;
        let outputs = self.run(&inputs)?;
        Ok(payload::encode(
            &self.manifest.signature,
            &outputs,
            map_labels,
        ))
    }

    /// Reruns the package's golden examples on the loaded model and compares them with the
    /// stored outputs, one [`examples::Drift`] per output; `None` when the package has none.
    /// A server calls this before it calls a model ready.
    pub fn check_examples(&self) -> Result<Option<Vec<examples::Drift>>> {
        let kind = package_kind(&self.path)?;
        rerun_examples(&self.path, kind, &self.manifest, &self.model)
    }

    /// The package's golden example inputs, in signature order; `None` when it has none. A
    /// server times them to learn whether merging requests pays for this model.
    pub fn example_inputs(&self) -> Result<Option<Vec<Tensor>>> {
        let Some(ex) = &self.manifest.examples else {
            return Ok(None);
        };
        let kind = package_kind(&self.path)?;
        let files = read_files(&self.path, kind, |p| p == ex.inputs)?;
        let names = examples::tensor_names(&self.manifest.signature.inputs);
        tensors_in(&self.path, &files, &ex.inputs, &names).map(Some)
    }

    /// Runs the model on inputs in signature order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.model.run(inputs).map_err(|source| Error::Model {
            path: self.path.clone(),
            source: Box::new(source),
        })
    }
}
