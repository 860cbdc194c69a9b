//! `convert`: an ONNX package becomes a new package whose model is NNEF, written only when the
//! golden examples give the same outputs within tolerance on the converted model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tiffin_manifest::{
    Authoring, ExamplesSpec, FileRole, FileSpec, ModelFormat, ModelSpec, Package,
};
use tiffin_runtime::{LoadOptions, Model, ModelSource};

use crate::examples::Drift;
use crate::layout::{MODEL_CARD_FILE, SIGNATURE_FILE};
use crate::package::{package_kind, read_files};
use crate::{Error, PackOptions, Packed, Result};

/// The model file of a converted package.
const NNEF_MODEL: &str = "model.nnef.tar";

/// What to convert and where to write the result.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The ONNX package (folder or archive).
    pub package: PathBuf,
    /// Where the new package goes; the original's folder when `None`.
    pub out: Option<PathBuf>,
    /// Replace an existing package of the same name and version.
    pub force: bool,
}

/// The outcome of a conversion: the drift table, load times, and the new package when written.
#[derive(Debug, Serialize)]
pub struct Conversion {
    /// Drift of each output of the golden examples, NNEF against the package's golden outputs.
    pub drifts: Vec<Drift>,
    /// Load and optimize time of the ONNX model, in milliseconds.
    pub onnx_load_ms: f64,
    /// Load and optimize time of the NNEF model, in milliseconds.
    pub nnef_load_ms: f64,
    /// The new package's folder, archive and digest; `None` when drift refused it.
    #[serde(skip)]
    pub packed: Option<Packed>,
}

impl Conversion {
    /// True when every output stayed within tolerance.
    pub fn passed(&self) -> bool {
        self.drifts.iter().all(Drift::passed)
    }
}

/// Converts the package's ONNX model to NNEF and, when the golden examples agree within
/// tolerance, packs version `VERSION+nnef` of it with the same signature, metadata and files.
pub fn convert_to_nnef(options: &ConvertOptions) -> Result<Conversion> {
    let path = &options.package;
    let loaded = crate::load(path, &LoadOptions::default())?;
    let manifest = &loaded.manifest;
    let model_err = |source| Error::Model {
        path: path.clone(),
        source: Box::new(source),
    };
    if manifest.model.format != ModelFormat::Onnx {
        return Err(bad(path, "the model is already NNEF"));
    }
    let Some(ex) = &manifest.examples else {
        return Err(bad(
            path,
            "the package has no golden examples to check the conversion against; pack it with --examples FILE first",
        ));
    };
    let kind = package_kind(path)?;
    let onnx = crate::rerun::model_source(path, kind, manifest)?
        .into_bytes()
        .map_err(model_err)?;
    let onnx_load = time_load(
        &ModelSource::Bytes(onnx.clone()),
        ModelFormat::Onnx,
        manifest,
    )?;
    let nnef = tiffin_runtime::to_nnef(&ModelSource::Bytes(onnx), &manifest.signature)
        .map_err(model_err)?;
    let nnef_source = ModelSource::Bytes(nnef.clone());
    let nnef_load = time_load(&nnef_source, ModelFormat::Nnef, manifest)?;
    let nnef_model = Model::load(
        &nnef_source,
        ModelFormat::Nnef,
        &manifest.signature,
        &LoadOptions::default(),
    )
    .map_err(model_err)?;
    let drifts =
        crate::rerun::rerun_examples(path, kind, manifest, &nnef_model)?.unwrap_or_default();
    let mut conversion = Conversion {
        drifts,
        onnx_load_ms: onnx_load.as_secs_f64() * 1e3,
        nnef_load_ms: nnef_load.as_secs_f64() * 1e3,
        packed: None,
    };
    if !conversion.passed() {
        return Ok(conversion);
    }

    // Lay out an authoring folder for the new package and pack it, so that the converted package
    // goes through exactly the checks any other package does.
    let work = tempfile::tempdir().map_err(Error::write(std::env::temp_dir()))?;
    let dir = work.path();
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let dest = dir.join(name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Error::write(parent))?;
        }
        std::fs::write(&dest, bytes).map_err(Error::write(&dest))
    };
    write(NNEF_MODEL, &nnef)?;
    let keep = |role: FileRole| {
        matches!(
            role,
            FileRole::Environment | FileRole::Extra | FileRole::ModelCard
        )
    };
    let carried: BTreeMap<String, FileRole> = manifest
        .files
        .iter()
        .filter(|f| keep(f.role))
        .map(|f| (f.path.clone(), f.role))
        .collect();
    // The original model's outputs travel too: the converted model is held to them like the
    // exported one was.
    let expected = ex.parity.as_ref().map(|p| p.expected.as_str());
    let files = read_files(path, kind, |p| {
        carried.contains_key(p) || p == ex.inputs || Some(p) == expected
    })?;
    for (name, bytes) in &files {
        write(name, bytes)?;
    }
    let inputs_file = ex.inputs.clone();
    let mut version = manifest.version.clone();
    version.build = semver::BuildMetadata::new("nnef").expect("a valid build identifier");
    let authoring = Authoring {
        package: Package {
            name: manifest.name.clone(),
            version: version.to_string(),
            description: manifest.description.clone(),
            authors: manifest.authors.clone(),
            license: manifest.license.clone(),
            created: Some(manifest.created.clone()),
            intended_use: manifest.intended_use.clone(),
            model_card: carried
                .contains_key(MODEL_CARD_FILE)
                .then(|| MODEL_CARD_FILE.to_owned()),
            tags: manifest.tags.clone(),
        },
        model: ModelSpec {
            path: NNEF_MODEL.to_owned(),
            format: Some(ModelFormat::Nnef),
            opset: None,
        },
        framework: manifest.framework.clone(),
        training: manifest.training.clone(),
        runtime: manifest.runtime.clone(),
        device: manifest.device.clone(),
        serving: manifest.serving.clone(),
        signature: manifest.signature.clone(),
        files: carried
            .iter()
            .filter(|(p, _)| p.as_str() != MODEL_CARD_FILE && p.as_str() != SIGNATURE_FILE)
            .map(|(p, role)| FileSpec {
                path: p.clone(),
                role: *role,
            })
            .collect(),
        examples: Some(ExamplesSpec {
            inputs: inputs_file,
            tolerance: ex.tolerance.clone(),
            expected: ex.parity.as_ref().map(|p| p.expected.clone()),
            expected_from: ex.parity.as_ref().and_then(|p| p.source.clone()),
            parity: ex
                .parity
                .iter()
                .flat_map(|p| &p.outputs)
                .map(|(name, result)| (name.clone(), result.tolerance.clone()))
                .collect(),
        }),
    };
    write("tiffin.toml", crate::render_toml(&authoring).as_bytes())?;
    let out = options.out.clone().unwrap_or_else(|| default_out(path));
    let pack_options = PackOptions {
        source: dir.to_owned(),
        out: Some(out),
        force: options.force,
        examples: None,
        runtime: Default::default(),
    };
    conversion.packed = Some(crate::pack(&pack_options, &tiffin_hash::NoProgress)?);
    Ok(conversion)
}

fn time_load(
    source: &ModelSource,
    format: ModelFormat,
    manifest: &tiffin_manifest::Manifest,
) -> Result<Duration> {
    let start = Instant::now();
    Model::load(
        source,
        format,
        &manifest.signature,
        &LoadOptions::default().with_plan_cache(0),
    )
    .map_err(|source| Error::Model {
        path: PathBuf::from(manifest.model.path.clone()),
        source: Box::new(source),
    })?;
    Ok(start.elapsed())
}

/// Beside the original: the folder holding the archive, or the folder above `NAME/VERSION/`.
fn default_out(package: &Path) -> PathBuf {
    let parent = |p: &Path| {
        p.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
    };
    if package.is_dir() {
        parent(package)
            .and_then(|p| parent(&p))
            .unwrap_or_else(|| PathBuf::from("."))
    } else {
        parent(package).unwrap_or_else(|| PathBuf::from("."))
    }
}

fn bad(path: &Path, reason: &str) -> Error {
    Error::BadInput {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}
