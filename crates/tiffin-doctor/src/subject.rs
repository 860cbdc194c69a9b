//! What the rules look at, read once from an authoring folder or a package: the metadata, the
//! files with their sizes, and the few small files whose content the rules judge.
//!
//! Reading an authoring folder also checks what `pack` would refuse (a `tiffin.toml` that does
//! not parse or validate, a named file that is missing); reading a package runs `verify` without
//! the model. Both report as `integrity` findings, so the other rules can rely on what they get.

use std::fs;
use std::path::{Path, PathBuf};

use tiffin_hash::{Algorithms, NoProgress};
use tiffin_manifest::{
    Authoring, Device, FileRole, Manifest, ModelFormat, Runtime, Signature, Training,
};
use tiffin_runtime::ModelSource;

use super::{FileSize, Findings, Location, Rule, SubjectKind, line_of};
use tiffin_core::layout::{AUTHORING_FILE, MANIFEST_FILE, MODEL_CARD_FILE, SIGNATURE_FILE};
use tiffin_core::model_card;
use tiffin_core::{Error, Result};
use tiffin_core::{PackageKind, read_files};
use tiffin_core::{ProblemKind, VerifyOptions, verify};

/// Environment files are recognised by these names whatever their role, besides any file with
/// the role `environment`.
const ENVIRONMENT_NAMES: &[&str] = &[
    "pyproject.toml",
    "conda.yaml",
    "conda.yml",
    "environment.yaml",
    "environment.yml",
    "Pipfile",
];

/// True when a file of the package is an environment description the dependency rule reads.
pub(crate) fn is_environment(path: &str, role: FileRole) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    role == FileRole::Environment
        || ENVIRONMENT_NAMES.contains(&name)
        || (name.starts_with("requirements") && name.ends_with(".txt"))
}

/// The metadata both `tiffin.toml` and `tiffin.json` hold.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) version: String,
    pub(crate) authors: Vec<String>,
    pub(crate) license: Option<String>,
    pub(crate) created: Option<String>,
    pub(crate) training: Option<Training>,
    pub(crate) runtime: Runtime,
    pub(crate) device: Device,
    pub(crate) signature: Signature,
    /// The model's path inside the package (a file, or an NNEF folder without the `/`).
    pub(crate) model_path: String,
    /// The model format, when it could be resolved.
    pub(crate) format: Option<ModelFormat>,
}

/// Where the golden examples come from.
#[derive(Debug)]
pub(crate) enum ExampleSource {
    /// None declared.
    None,
    /// A package's stored inputs and golden outputs.
    Golden,
    /// An authoring folder's example inputs, to be run at pack time.
    Inputs(PathBuf),
}

/// An authoring folder or a package, as the rules see it.
#[derive(Debug)]
pub(crate) struct Subject {
    pub(crate) kind: SubjectKind,
    /// The authoring folder, or the package folder or archive.
    pub(crate) root: PathBuf,
    /// `tiffin.toml` or `tiffin.json`: where metadata findings point.
    pub(crate) meta_file: &'static str,
    /// Its text, to find the line of a field.
    pub(crate) meta_text: String,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    /// `None` when the metadata could not be read at all.
    pub(crate) meta: Option<Meta>,
    /// The package's files (or those pack would write) and their sizes.
    pub(crate) files: Vec<FileSize>,
    /// For an authoring folder: each file to pack, its path in the package and its source.
    pub(crate) sources: Vec<(String, PathBuf)>,
    /// The model card's location and text.
    pub(crate) card: Option<(String, String)>,
    /// Environment files: location, and content.
    pub(crate) environment: Vec<(String, Vec<u8>)>,
    pub(crate) examples: ExampleSource,
    /// An authoring folder's file of the original model's outputs (`[examples] expected`), as
    /// written in tiffin.toml; a package's is in its manifest.
    pub(crate) expected: Option<String>,
    /// The package manifest (packages only).
    pub(crate) manifest: Option<Manifest>,
    /// False when integrity failed so badly that the content rules cannot trust what they read.
    pub(crate) content_ok: bool,
}

impl Subject {
    /// The model as the runtime reads it.
    pub(crate) fn model_source(&self) -> Result<ModelSource> {
        let meta = self.meta.as_ref().ok_or_else(|| Error::NotAPackage {
            path: self.root.clone(),
            reason: "its metadata could not be read".to_owned(),
        })?;
        match (self.kind, &self.manifest) {
            (SubjectKind::Authoring, _) => {
                let path = self.root.join(&meta.model_path);
                if path.is_dir() {
                    Ok(ModelSource::Dir(path))
                } else {
                    Ok(ModelSource::Bytes(
                        fs::read(&path).map_err(Error::read(&path))?,
                    ))
                }
            }
            (kind, Some(manifest)) => {
                tiffin_core::model_source(&self.root, package_kind(kind), manifest)
            }
            (_, None) => Err(Error::NotAPackage {
                path: self.root.clone(),
                reason: "its manifest could not be read".to_owned(),
            }),
        }
    }
}

pub(crate) fn package_kind(kind: SubjectKind) -> PackageKind {
    match kind {
        SubjectKind::Archive => PackageKind::Archive,
        _ => PackageKind::Folder,
    }
}

/// Reads an authoring folder through its `tiffin.toml`.
pub(crate) fn authoring(toml_path: &Path, findings: &mut Findings) -> Result<Subject> {
    let dir = toml_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let text = tiffin_core::layout::read_authoring(toml_path)?;
    let mut subject = Subject {
        kind: SubjectKind::Authoring,
        root: dir.clone(),
        meta_file: AUTHORING_FILE,
        meta_text: text.clone(),
        name: None,
        version: None,
        meta: None,
        files: Vec::new(),
        sources: Vec::new(),
        card: None,
        environment: Vec::new(),
        examples: ExampleSource::None,
        expected: None,
        manifest: None,
        content_ok: true,
    };
    let a = match Authoring::from_toml_str(&text) {
        Ok(a) => a,
        Err(e) => {
            findings.fail(
                Rule::Integrity,
                format!("tiffin.toml does not parse: {e}"),
                "correct tiffin.toml; docs/schema/tiffin.toml.schema.json documents every field",
                Location::file(AUTHORING_FILE),
            );
            subject.content_ok = false;
            return Ok(subject);
        }
    };
    if let Err(errors) = a.validate() {
        for p in errors.0 {
            // The version and metadata rules judge these fields themselves, with their own fixes.
            if matches!(
                p.field.as_str(),
                "package.version" | "package.license" | "package.created"
            ) {
                continue;
            }
            let rule = if p.field.starts_with("signature") {
                Rule::Signature
            } else {
                Rule::Integrity
            };
            let key = p.field.rsplit('.').next().unwrap_or(&p.field).to_owned();
            let key = key.split('[').next().unwrap_or(&key).to_owned();
            findings.fail(
                rule,
                format!("{}: {}", p.field, p.message),
                "correct this field of tiffin.toml; pack refuses the file until then",
                Location::line(AUTHORING_FILE, line_of(&text, &key)),
            );
        }
    }
    subject.name = Some(a.package.name.clone());
    subject.version = Some(a.package.version.clone());

    let model_path = a.model.path.trim_end_matches('/').to_owned();
    add_source(
        &dir,
        &model_path,
        FileRole::Model,
        true,
        &text,
        &mut subject,
        findings,
    )?;
    subject.files.push(FileSize {
        path: SIGNATURE_FILE.to_owned(),
        role: FileRole::Signature,
        size: tiffin_core::layout::signature_json(&a.signature).len() as u64,
    });
    match &a.package.model_card {
        Some(card) => {
            let path = dir.join(card);
            match fs::read_to_string(&path) {
                Ok(body) => {
                    subject.files.push(FileSize {
                        path: MODEL_CARD_FILE.to_owned(),
                        role: FileRole::ModelCard,
                        size: body.len() as u64,
                    });
                    subject.sources.push((MODEL_CARD_FILE.to_owned(), path));
                    subject.card = Some((card.clone(), body));
                }
                Err(e) => findings.fail(
                    Rule::Integrity,
                    format!("`{card}` (package.model_card) cannot be read: {e}"),
                    "put the model card there, or correct package.model_card",
                    Location::line(AUTHORING_FILE, line_of(&text, "model_card")),
                ),
            }
        }
        None => {
            let body = model_card::render(&a, None);
            subject.files.push(FileSize {
                path: MODEL_CARD_FILE.to_owned(),
                role: FileRole::ModelCard,
                size: body.len() as u64,
            });
            subject.card = Some((
                format!("{MODEL_CARD_FILE} (written by pack from tiffin.toml)"),
                body,
            ));
        }
    }
    for spec in &a.files {
        add_source(
            &dir,
            &spec.path,
            spec.role,
            false,
            &text,
            &mut subject,
            findings,
        )?;
    }
    for (path, source) in &subject.sources {
        let role = subject
            .files
            .iter()
            .find(|f| &f.path == path)
            .map_or(FileRole::Extra, |f| f.role);
        if is_environment(path, role) {
            let bytes = fs::read(source).map_err(Error::read(source))?;
            subject.environment.push((path.clone(), bytes));
        }
    }
    if let Some(expected) = a.examples.as_ref().and_then(|e| e.expected.as_ref()) {
        if dir.join(expected).is_file() {
            subject.expected = Some(expected.clone());
        } else {
            findings.fail(
                Rule::Integrity,
                format!("`{expected}` (examples.expected) is not a file"),
                "write the original model's outputs there, or correct examples.expected",
                Location::line(AUTHORING_FILE, line_of(&text, "expected")),
            );
        }
    }
    if let Some(examples) = &a.examples {
        let path = dir.join(&examples.inputs);
        if path.is_file() {
            subject.examples = ExampleSource::Inputs(path);
        } else {
            findings.fail(
                Rule::Integrity,
                format!("`{}` (examples.inputs) is not a file", examples.inputs),
                "write the example inputs there, or correct examples.inputs",
                Location::line(AUTHORING_FILE, line_of(&text, "inputs")),
            );
        }
    }
    subject.meta = Some(Meta {
        version: a.package.version.clone(),
        authors: a.package.authors.clone(),
        license: a.package.license.clone(),
        created: a.package.created.clone(),
        training: a.training.clone(),
        runtime: a.runtime.clone(),
        device: a.device.clone(),
        signature: a.signature.clone(),
        model_path,
        format: a.model.resolved_format().ok(),
    });
    Ok(subject)
}

/// Records a file `pack` would copy, or every file below a model folder; a missing or irregular
/// file is an integrity failure, as pack would refuse it.
fn add_source(
    dir: &Path,
    rel: &str,
    role: FileRole,
    allow_dir: bool,
    toml_text: &str,
    subject: &mut Subject,
    findings: &mut Findings,
) -> Result<()> {
    let source = dir.join(rel);
    let at = Location::line(
        AUTHORING_FILE,
        line_of(toml_text, &format!("path = \"{rel}")),
    );
    let meta = match source.symlink_metadata() {
        Ok(meta) => meta,
        Err(_) => {
            findings.fail(
                Rule::Integrity,
                format!("`{rel}` is named in tiffin.toml but does not exist"),
                "put the file there, or correct its path in tiffin.toml",
                at,
            );
            return Ok(());
        }
    };
    if allow_dir && meta.is_dir() {
        for entry in walkdir::WalkDir::new(&source).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::Read {
                path: source.clone(),
                source: e.into(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let sub = entry
                .path()
                .strip_prefix(dir)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_else(|_| rel.to_owned());
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            subject.files.push(FileSize {
                path: sub.clone(),
                role,
                size,
            });
            subject.sources.push((sub, entry.into_path()));
        }
        return Ok(());
    }
    if !meta.is_file() {
        findings.fail(
            Rule::Integrity,
            format!("`{rel}` is not a regular file (a link, a folder or a device)"),
            "copy the file itself into the authoring folder; packages hold regular files only",
            at,
        );
        return Ok(());
    }
    subject.files.push(FileSize {
        path: rel.to_owned(),
        role,
        size: meta.len(),
    });
    subject.sources.push((rel.to_owned(), source));
    Ok(())
}

/// Reads a package: `verify` without the model for integrity and unsafe formats, then the
/// manifest and the small files the content rules read.
pub(crate) fn package(path: &Path, findings: &mut Findings) -> Result<Subject> {
    let options = VerifyOptions {
        algorithms: Algorithms::BLAKE3,
        run_model: false,
        ..VerifyOptions::default()
    };
    let report = verify(path, &options, &NoProgress)?;
    let kind = match report.kind {
        PackageKind::Folder => SubjectKind::Folder,
        PackageKind::Archive => SubjectKind::Archive,
    };
    for p in &report.problems {
        let rule = if p.kind == ProblemKind::UnsafeFormat {
            Rule::UnsafeFormats
        } else {
            Rule::Integrity
        };
        let (message, fix) = match (p.kind, &p.file) {
            (ProblemKind::UnsafeFormat, Some(file)) => (
                format!("`{file}` {}", p.message),
                "remove it and package an ONNX or NNEF export instead",
            ),
            (_, Some(file)) => (
                format!("`{file}` {}", p.message),
                "pack the package again from its authoring folder; do not edit packages by hand",
            ),
            (_, None) => (
                p.message.clone(),
                "pack the package again from its authoring folder; do not edit packages by hand",
            ),
        };
        findings.fail(rule, message, fix, p.file.clone().and_then(Location::file));
    }
    let integrity_ok = report
        .problems
        .iter()
        .all(|p| p.kind == ProblemKind::UnsafeFormat);
    let manifest_text = tiffin_core::read_manifest_bytes(path, report.kind)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut subject = Subject {
        kind,
        root: path.to_owned(),
        meta_file: MANIFEST_FILE,
        meta_text: manifest_text,
        name: report.name.clone(),
        version: report.version.clone(),
        meta: None,
        files: Vec::new(),
        sources: Vec::new(),
        card: None,
        environment: Vec::new(),
        examples: ExampleSource::None,
        expected: None,
        manifest: None,
        content_ok: integrity_ok,
    };
    let Some(manifest) = report.manifest else {
        subject.content_ok = false;
        return Ok(subject);
    };
    if integrity_ok {
        findings.pass_unless_flagged(
            Rule::Integrity,
            format!(
                "{} files match their digests ({}); the file list is exact; checksum.txt and \
                 signature.json agree with tiffin.json",
                report.files_checked,
                report.algorithms.join("+"),
            ),
        );
    }
    subject.files = manifest
        .files
        .iter()
        .map(|f| FileSize {
            path: f.path.clone(),
            role: f.role,
            size: f.size,
        })
        .collect();
    if subject.content_ok {
        let wanted = |p: &str| {
            manifest.files.iter().any(|f| {
                f.path == p && (f.role == FileRole::ModelCard || is_environment(&f.path, f.role))
            })
        };
        for (file, bytes) in read_files(path, report.kind, wanted)? {
            let role = manifest
                .files
                .iter()
                .find(|f| f.path == file)
                .map_or(FileRole::Extra, |f| f.role);
            if role == FileRole::ModelCard {
                subject.card = Some((file, String::from_utf8_lossy(&bytes).into_owned()));
            } else {
                subject.environment.push((file, bytes));
            }
        }
    }
    if manifest.examples.is_some() {
        subject.examples = ExampleSource::Golden;
    }
    subject.meta = Some(Meta {
        version: manifest.version.to_string(),
        authors: manifest.authors.clone(),
        license: manifest.license.clone(),
        created: Some(manifest.created.clone()),
        training: manifest.training.clone(),
        runtime: manifest.runtime.clone(),
        device: manifest.device.clone(),
        signature: manifest.signature.clone(),
        model_path: manifest.model.path.clone(),
        format: Some(manifest.model.format),
    });
    subject.manifest = Some(manifest);
    Ok(subject)
}
