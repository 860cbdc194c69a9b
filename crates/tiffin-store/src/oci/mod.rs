//! Push and pull packages through OCI distribution registries, as CNCF ModelPack artifacts.
//!
//! A package becomes an OCI image manifest with `artifactType`
//! `application/vnd.cncf.model.manifest.v1+json`, a ModelPack config blob, and one raw layer per
//! file annotated with its path (`org.cncf.model.filepath`), so KitOps and other ModelPack tools
//! read what tiffin pushes. A pull streams each layer into the local store's staging folder,
//! checking its digest as it arrives, then builds and verifies the whole package before it
//! enters the store.

mod client;
pub mod image;
pub mod libs;
mod reference;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tiffin_hash::{Algorithms, Digest, NoProgress};
use tiffin_manifest::FileRole;

pub use client::{ClientOptions, Credentials, MAX_SMALL_BODY, PASSWORD_VAR, USERNAME_VAR};
pub use reference::{Reference, URI_SCHEME};

use crate::store::{Store, Stored, check_package_path};
use crate::{Error, Result};
use client::Client;
use tiffin_core::layout::{self, CHECKSUM_FILE, MANIFEST_FILE, SIGNATURE_FILE, parse_digest};
use tiffin_core::{PackageKind, VerifyOptions, read_manifest_bytes};

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The ModelPack artifact type.
pub const MODEL_ARTIFACT: &str = "application/vnd.cncf.model.manifest.v1+json";
/// The ModelPack config media type.
pub const MODEL_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
/// Model weights, one file, uncompressed.
pub const WEIGHT_RAW: &str = "application/vnd.cncf.model.weight.v1.raw";
/// Files that configure the weights (tiffin's manifest, signature and checksums).
pub const WEIGHT_CONFIG_RAW: &str = "application/vnd.cncf.model.weight.config.v1.raw";
/// Documentation: the model card and other documents.
pub const DOC_RAW: &str = "application/vnd.cncf.model.doc.v1.raw";
/// Code and environment descriptions (`requirements.txt`).
pub const CODE_RAW: &str = "application/vnd.cncf.model.code.v1.raw";
/// Data: the golden examples.
pub const DATASET_RAW: &str = "application/vnd.cncf.model.dataset.v1.raw";
/// A Sigstore bundle: the package's crypto signature.
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The annotation naming a layer's path inside the model folder.
pub const FILEPATH_ANNOTATION: &str = "org.cncf.model.filepath";
/// The package's Sigstore bundle, pushed as its own layer when the package has one.
pub const SIGSTORE_FILE: &str = layout::SIGSTORE_FILE;
/// The manifest annotation holding the package digest.
pub const PACKAGE_DIGEST_ANNOTATION: &str = "dev.tiffin.package.digest";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is.
    pub media_type: String,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations; layers carry [`FILEPATH_ANNOTATION`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest, as ModelPack uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`OCI_MANIFEST`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// [`MODEL_ARTIFACT`].
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// The ModelPack config blob.
    pub config: Descriptor,
    /// One layer per file.
    pub layers: Vec<Descriptor>,
    /// Name, version, creation time and the package digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The ModelPack config (`application/vnd.cncf.model.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// General information about the model.
    pub descriptor: ModelDescriptor,
    /// Technical metadata.
    pub config: ModelTechnical,
    /// The layers' content digests.
    pub modelfs: ModelFs,
}

/// The `descriptor` of a ModelPack config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelDescriptor {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The authors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// The package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The package version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the model does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SPDX license expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
}

/// The `config` of a ModelPack config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelTechnical {
    /// `onnx` or `nnef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// The `modelfs` of a ModelPack config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Each layer's uncompressed content digest, in layer order (for raw layers, the layer
    /// digest itself).
    pub diff_ids: Vec<String>,
}

/// The ModelPack media type of a package file.
pub fn media_type_of(path: &str, role: Option<FileRole>) -> &'static str {
    match (path, role) {
        (MANIFEST_FILE | CHECKSUM_FILE | SIGNATURE_FILE, _) => WEIGHT_CONFIG_RAW,
        (SIGSTORE_FILE, _) => SIGSTORE_BUNDLE,
        (_, Some(FileRole::Model)) => WEIGHT_RAW,
        (_, Some(FileRole::Signature)) => WEIGHT_CONFIG_RAW,
        (_, Some(FileRole::Example)) => DATASET_RAW,
        (_, Some(FileRole::Environment)) => CODE_RAW,
        _ => DOC_RAW,
    }
}

/// One layer to push: the file and its descriptor.
#[derive(Debug, Clone)]
struct Layer {
    file: std::path::PathBuf,
    descriptor: Descriptor,
}

/// The manifest, config and layers of a verified package folder.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The image manifest's bytes, as pushed.
    pub manifest: Vec<u8>,
    /// The config blob's bytes.
    pub config: Vec<u8>,
    /// The package digest.
    pub package_digest: Digest,
    /// The package's name and version.
    pub name: String,
    /// See `name`.
    pub version: String,
    layers: Vec<Layer>,
}

impl Artifact {
    /// The layers' descriptors, in order.
    pub fn layers(&self) -> impl Iterator<Item = &Descriptor> {
        self.layers.iter().map(|l| &l.descriptor)
    }
}

/// Builds the ModelPack manifest and config of a package folder. The folder is verified first
/// (both digests, since the layers are named by sha256), so a damaged package is never pushed.
pub fn artifact(folder: &Path) -> Result<Artifact> {
    let options = VerifyOptions {
        algorithms: Algorithms::BOTH,
        run_model: false,
        ..VerifyOptions::default()
    };
    let report = tiffin_core::verify(folder, &options, &NoProgress)?;
    if !report.is_ok() {
        return Err(Error::Invalid {
            path: folder.to_owned(),
            problems: report.problems,
        });
    }
    artifact_of_verified(folder)
}

/// [`artifact`] of a folder known to be intact: one the local store has just checked.
fn artifact_of_verified(folder: &Path) -> Result<Artifact> {
    let bytes = read_manifest_bytes(folder, PackageKind::Folder)?;
    let manifest = tiffin_core::parse_manifest(&bytes, folder)?;
    let package_digest = layout::package_digest(&bytes);
    let listed: BTreeMap<&str, (&str, FileRole, u64)> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), (f.sha256.as_str(), f.role, f.size)))
        .collect();
    let mut layers = Vec::new();
    for walked in layout::walk(folder) {
        let (rel, entry) = walked?;
        if !entry.file_type().is_file() {
            continue;
        }
        let (digest, size, role) = match listed.get(rel.as_str()) {
            Some((sha256, role, size)) => (format!("sha256:{sha256}"), *size, Some(*role)),
            None if rel == MANIFEST_FILE => {
                (format!("sha256:{package_digest}"), bytes.len() as u64, None)
            }
            // checksum.txt (checked against the manifest by verify) and the signature bundle.
            None => {
                let d = tiffin_hash::hash_file(entry.path(), Algorithms::SHA256, &NoProgress)?;
                let sha = d.sha256.expect("sha256 was asked for");
                (format!("sha256:{sha}"), d.size, None)
            }
        };
        layers.push(Layer {
            file: entry.path().to_owned(),
            descriptor: Descriptor {
                media_type: media_type_of(&rel, role).to_owned(),
                digest,
                size,
                annotations: BTreeMap::from([(FILEPATH_ANNOTATION.to_owned(), rel)]),
            },
        });
    }
    let config = ModelConfig {
        descriptor: ModelDescriptor {
            created_at: Some(manifest.created.clone()),
            authors: manifest.authors.clone(),
            name: Some(manifest.name.clone()),
            version: Some(manifest.version.to_string()),
            description: manifest.description.clone(),
            licenses: manifest.license.iter().cloned().collect(),
        },
        config: ModelTechnical {
            format: Some(manifest.model.format.to_string()),
        },
        modelfs: ModelFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.descriptor.digest.clone()).collect(),
        },
    };
    let config_bytes = serde_json::to_vec(&config).expect("a model config always serializes");
    let image = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(MODEL_ARTIFACT.into()),
        config: Descriptor {
            media_type: MODEL_CONFIG.into(),
            digest: format!("sha256:{}", tiffin_hash::sha256(&config_bytes)),
            size: config_bytes.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: BTreeMap::from([
            (
                "org.opencontainers.image.created".to_owned(),
                manifest.created.clone(),
            ),
            (
                "org.opencontainers.image.title".to_owned(),
                manifest.name.clone(),
            ),
            (
                "org.opencontainers.image.version".to_owned(),
                manifest.version.to_string(),
            ),
            (
                PACKAGE_DIGEST_ANNOTATION.to_owned(),
                format!("sha256:{package_digest}"),
            ),
        ]),
    };
    Ok(Artifact {
        manifest: serde_json::to_vec_pretty(&image).expect("a manifest always serializes"),
        config: config_bytes,
        package_digest,
        name: manifest.name,
        version: manifest.version.to_string(),
        layers,
    })
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Where the package went, with its tag.
    pub reference: String,
    /// `sha256:<hex>` of the pushed image manifest.
    pub manifest_digest: String,
    /// The package digest.
    pub package_digest: String,
    /// Blobs pushed (the config and one per file).
    pub blobs: usize,
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs the registry already had, not sent again.
    pub skipped: usize,
    /// Bytes sent.
    pub bytes_uploaded: u64,
}

/// The tag a package version is pushed under when the reference gives none: the version, with
/// `+` (not allowed in tags) written `_`.
pub fn default_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Pushes a package to `reference` (tagged with the package version when it names no tag),
/// verified first. Layers are files, so an archive is added to the local store (verified there,
/// each file's sha256 checked by its blob) and pushed from its folder there. A blob the
/// registry already has is not sent again.
pub fn push(package: &Path, reference: &Reference, options: &ClientOptions) -> Result<PushReport> {
    if reference.digest.is_some() {
        return Err(Error::BadReference {
            given: reference.to_string(),
            reason: "a push writes a tag, not a digest: give `host/repository:tag`".into(),
        });
    }
    let artifact = match tiffin_core::package_kind(package)? {
        PackageKind::Folder => artifact(package)?,
        PackageKind::Archive => {
            let verify = VerifyOptions {
                algorithms: Algorithms::BLAKE3,
                run_model: false,
                ..VerifyOptions::default()
            };
            let stored = crate::Store::open_default()?.add(package, &verify)?;
            artifact_of_verified(&stored.entry.path)?
        }
    };
    let reference = match &reference.tag {
        Some(_) => reference.clone(),
        None => reference.with_tag(&default_tag(&artifact.version)),
    };
    let client = Client::connect(&reference, options, true)?;
    let mut report = PushReport {
        reference: reference.to_string(),
        manifest_digest: format!("sha256:{}", tiffin_hash::sha256(&artifact.manifest)),
        package_digest: format!("sha256:{}", artifact.package_digest),
        blobs: artifact.layers.len() + 1,
        uploaded: 0,
        skipped: 0,
        bytes_uploaded: 0,
    };
    let config_digest = format!("sha256:{}", tiffin_hash::sha256(&artifact.config));
    if client.has_blob(&config_digest)? {
        report.skipped += 1;
    } else {
        client.upload_blob(
            &config_digest,
            artifact.config.len() as u64,
            &mut &artifact.config[..],
        )?;
        report.uploaded += 1;
        report.bytes_uploaded += artifact.config.len() as u64;
    }
    for layer in &artifact.layers {
        let d = &layer.descriptor;
        if client.has_blob(&d.digest)? {
            report.skipped += 1;
            continue;
        }
        let mut file = File::open(&layer.file).map_err(Error::read(&layer.file))?;
        client.upload_blob(&d.digest, d.size, &mut file)?;
        report.uploaded += 1;
        report.bytes_uploaded += d.size;
    }
    let tag = reference.tag.as_deref().expect("the tag was set above");
    client.put_manifest(tag, OCI_MANIFEST, &artifact.manifest)?;
    Ok(report)
}

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// What was pulled.
    pub reference: String,
    /// `sha256:<hex>` of the image manifest.
    pub manifest_digest: String,
    /// The package as stored.
    pub stored: Stored,
    /// Blobs fetched from the registry.
    pub fetched: usize,
    /// Blobs the store already had (an earlier or interrupted pull, or another package).
    pub reused: usize,
    /// Bytes fetched.
    pub bytes_fetched: u64,
}

/// Reads and checks a pulled manifest: a ModelPack artifact whose layers all have a safe,
/// unique path and a sha256 digest. Returns `(path, digest, size)` per layer.
pub fn layers_of(manifest: &ImageManifest, reference: &str) -> Result<Vec<(String, Digest, u64)>> {
    let bad = |reason: String| Error::Registry {
        url: reference.to_owned(),
        reason,
    };
    let is_model = manifest.artifact_type.as_deref() == Some(MODEL_ARTIFACT)
        || manifest.config.media_type == MODEL_CONFIG;
    if !is_model {
        return Err(bad(format!(
            "is not a ModelPack model (artifactType {:?}, config {}): push it with `tiffin push`",
            manifest.artifact_type.as_deref().unwrap_or("none"),
            manifest.config.media_type
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for layer in &manifest.layers {
        let path = layer.annotations.get(FILEPATH_ANNOTATION).ok_or_else(|| {
            bad(format!(
                "layer {} has no {FILEPATH_ANNOTATION} annotation, so tiffin cannot tell \
                 where it goes",
                layer.digest
            ))
        })?;
        check_package_path(path).map_err(|e| bad(format!("layer {}: {e}", layer.digest)))?;
        if !seen.insert(path.clone()) {
            return Err(bad(format!("two layers claim the path `{path}`")));
        }
        let digest = parse_digest(&layer.digest).ok_or_else(|| {
            bad(format!(
                "layer `{path}` has digest `{}`; tiffin reads sha256 digests only",
                layer.digest
            ))
        })?;
        let known = [
            WEIGHT_RAW,
            WEIGHT_CONFIG_RAW,
            DOC_RAW,
            CODE_RAW,
            DATASET_RAW,
            SIGSTORE_BUNDLE,
        ];
        if !known.contains(&layer.media_type.as_str()) {
            return Err(bad(format!(
                "layer `{path}` is {}; tiffin packages hold raw (untarred) ModelPack layers only",
                layer.media_type
            )));
        }
        out.push((path.clone(), digest, layer.size));
    }
    Ok(out)
}

/// Pulls `reference` into `store`: every blob is checked against its digest while it streams
/// (blobs the store has are not fetched again, so a rerun resumes an interrupted pull), then the
/// whole package is built and verified with `verify`, and only then tagged in the store. With
/// `signer`, the package's signature must verify too (and an unsigned package is refused)
/// before it enters the store.
pub fn pull(
    reference: &Reference,
    store: &Store,
    options: &ClientOptions,
    verify: &VerifyOptions,
    signer: Option<&tiffin_core::sign::Verifier>,
) -> Result<PullReport> {
    let target = reference.target().ok_or_else(|| Error::BadReference {
        given: reference.to_string(),
        reason: "name the version to pull: `host/repository:tag` or `@sha256:<hex>`".into(),
    })?;
    let client = Client::connect(reference, options, false)?;
    let (bytes, _) = client.manifest(target, OCI_MANIFEST)?;
    let manifest_digest = tiffin_hash::sha256(&bytes);
    if let Some(pinned) = &reference.digest
        && *pinned != format!("sha256:{manifest_digest}")
    {
        return Err(Error::BlobDigest {
            expected: pinned.clone(),
            actual: format!("sha256:{manifest_digest}"),
            expected_size: bytes.len() as u64,
            actual_size: bytes.len() as u64,
            source_name: format!("the manifest of {reference}"),
        });
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| Error::Registry {
        url: reference.to_string(),
        reason: format!("answered a manifest that is not an OCI image manifest ({e})"),
    })?;
    let layers = layers_of(&manifest, &reference.to_string())?;
    let mut fetched = 0;
    let mut reused = 0;
    let mut bytes_fetched = 0;
    let mut files = Vec::new();
    for (path, digest, size) in layers {
        if store.has_blob(&digest) {
            reused += 1;
        } else {
            let (mut body, url) = client.blob(&format!("sha256:{digest}"))?;
            store.write_blob(&mut body, Some((&digest, size)), &url)?;
            fetched += 1;
            bytes_fetched += size;
        }
        files.push((path, digest));
    }
    // `commit_checked` verifies the signature (when a signer is given) and every file before
    // the package enters the store, and only then tags it.
    let stored = store.commit_checked(&files, verify, signer)?;
    Ok(PullReport {
        reference: reference.to_string(),
        manifest_digest: format!("sha256:{manifest_digest}"),
        stored,
        fetched,
        reused,
        bytes_fetched,
    })
}

/// What [`pull_into`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PulledInto {
    /// The pull, as into the store.
    #[serde(flatten)]
    pub pull: PullReport,
    /// The package folder `DIR/NAME/VERSION`.
    pub folder: PathBuf,
    /// False when the folder held this exact package already (nothing was replaced).
    pub new: bool,
}

/// Pulls a package as [`pull`] does, but into `dir/NAME/VERSION/` instead of the local store:
/// the folder a server (or KServe's model mount) serves. The blobs go to a hidden store inside
/// `dir`, the package is verified there (digests, files, the signature when `signer` is given),
/// and only then is its folder renamed into place whole, so a server watching `dir` never sees
/// a partial package; the hidden store is removed afterwards. Pulling the same package again
/// changes nothing; another package already at that version's place is refused, not replaced.
pub fn pull_into(
    reference: &Reference,
    dir: &Path,
    options: &ClientOptions,
    verify: &VerifyOptions,
    signer: Option<&tiffin_core::sign::Verifier>,
) -> Result<PulledInto> {
    std::fs::create_dir_all(dir).map_err(Error::write(dir))?;
    let staging = tempfile::Builder::new()
        .prefix(".tiffin-pull-")
        .tempdir_in(dir)
        .map_err(Error::write(dir))?;
    let store = Store::open(staging.path())?;
    let pull = pull(reference, &store, options, verify, signer)?;
    let entry = &pull.stored.entry;
    let name_dir = dir.join(&entry.name);
    let folder = name_dir.join(&entry.version);
    let new = if folder.exists() {
        let existing = format!(
            "sha256:{}",
            tiffin_hash::sha256(&read_manifest_bytes(&folder, PackageKind::Folder)?)
        );
        if existing != entry.digest {
            return Err(Error::OtherPackageAt {
                path: folder,
                existing,
                pulled: entry.digest.clone(),
            });
        }
        false
    } else {
        std::fs::create_dir_all(&name_dir).map_err(Error::write(&name_dir))?;
        // The store's package folder holds hard links to its blobs: renamed out of the hidden
        // store, it stays a whole package of plain files once the store is gone.
        tiffin_core::crash::point("renaming the pulled package into place");
        std::fs::rename(&entry.path, &folder).map_err(Error::write(&folder))?;
        true
    };
    staging.close().map_err(Error::write(dir))?;
    Ok(PulledInto { pull, folder, new })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(path: &str, media_type: &str, digest: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            size: 1,
            annotations: BTreeMap::from([(FILEPATH_ANNOTATION.to_owned(), path.to_owned())]),
        }
    }

    fn manifest(layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(MODEL_ARTIFACT.into()),
            config: Descriptor {
                media_type: MODEL_CONFIG.into(),
                digest: format!("sha256:{}", "0".repeat(64)),
                size: 2,
                annotations: BTreeMap::new(),
            },
            layers,
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn maps_files_to_modelpack_media_types() {
        assert_eq!(
            media_type_of("model.onnx", Some(FileRole::Model)),
            WEIGHT_RAW
        );
        assert_eq!(media_type_of(MANIFEST_FILE, None), WEIGHT_CONFIG_RAW);
        assert_eq!(media_type_of(CHECKSUM_FILE, None), WEIGHT_CONFIG_RAW);
        assert_eq!(
            media_type_of(SIGNATURE_FILE, Some(FileRole::Signature)),
            WEIGHT_CONFIG_RAW
        );
        assert_eq!(
            media_type_of("model-card.md", Some(FileRole::ModelCard)),
            DOC_RAW
        );
        assert_eq!(
            media_type_of("examples/inputs.json", Some(FileRole::Example)),
            DATASET_RAW
        );
        assert_eq!(media_type_of(SIGSTORE_FILE, None), SIGSTORE_BUNDLE);
    }

    #[test]
    fn pulled_layers_must_be_safe_unique_and_modelpack() {
        let d = format!("sha256:{}", "a".repeat(64));
        let good = manifest(vec![
            layer("tiffin.json", WEIGHT_CONFIG_RAW, &d),
            layer("model.onnx", WEIGHT_RAW, &d),
        ]);
        assert_eq!(layers_of(&good, "r").unwrap().len(), 2);

        for (layers, expected) in [
            (vec![layer("../x", WEIGHT_RAW, &d)], "`..`"),
            (vec![layer("/etc/passwd", WEIGHT_RAW, &d)], "/etc/passwd"),
            (
                vec![layer("a", WEIGHT_RAW, &d), layer("a", DOC_RAW, &d)],
                "two layers claim the path `a`",
            ),
            (
                vec![layer("a", "application/vnd.cncf.model.weight.v1.tar", &d)],
                "raw (untarred)",
            ),
            (
                vec![layer("a", WEIGHT_RAW, "md5:abc")],
                "sha256 digests only",
            ),
        ] {
            let err = layers_of(&manifest(layers), "r").unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let mut image = manifest(vec![]);
        image.artifact_type = None;
        image.config.media_type = "application/vnd.oci.image.config.v1+json".into();
        let err = layers_of(&image, "r").unwrap_err().to_string();
        assert!(err.contains("is not a ModelPack model"), "{err}");
    }

    #[test]
    fn the_manifest_json_has_the_modelpack_shape() {
        let d = format!("sha256:{}", "a".repeat(64));
        let json = serde_json::to_value(manifest(vec![layer("m.onnx", WEIGHT_RAW, &d)])).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["mediaType"], OCI_MANIFEST);
        assert_eq!(json["artifactType"], MODEL_ARTIFACT);
        assert_eq!(json["config"]["mediaType"], MODEL_CONFIG);
        assert_eq!(
            json["layers"][0]["annotations"][FILEPATH_ANNOTATION],
            "m.onnx"
        );
        assert_eq!(json["layers"][0]["mediaType"], WEIGHT_RAW);
    }

    #[test]
    fn default_tags_are_valid_tags() {
        assert_eq!(default_tag("1.0.0+nnef"), "1.0.0_nnef");
        let r: Reference = "localhost:5000/m".parse().unwrap();
        let tagged = r.with_tag(&default_tag("1.0.0+nnef"));
        assert!(tagged.to_string().parse::<Reference>().is_ok());
    }
}
