//! `tiffin image`: a runnable OCI image (image-spec 1.1) of the static `tiffin` binary and
//! verified packages, written without a container daemon, the way ko and jib build images.
//!
//! Layer 1 holds the binary at `/usr/bin/tiffin`, `/tmp` (mode 1777), `/etc/passwd` and
//! `/etc/group` lines for user 65532 and an empty `/models` it owns; each package is a layer of
//! its own under `/models/NAME/VERSION/`, so images sharing the binary share that layer. The
//! config runs `tiffin serve /models` on 0.0.0.0:8080 as 65532. Every tar is deterministic
//! (sorted, fixed owners and modes; the binary's files dated at the epoch, a package's at its
//! creation time) and gzipped without a timestamp, so the same packages and binary give the same
//! image digest, and the same binary the same first layer.
//!
//! With ONNX Runtime ([`OnnxRuntimeFiles`]) the binary is the dynamically linked build with the
//! `ort` feature: layer 1 then also holds the loader and the shared libraries it and
//! `libonnxruntime.so` need, taken from the host (see [`super::libs`]), and a layer of its own
//! holds the library and its notices; the config serves with `TIFFIN_RUNTIME=ort`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use tiffin_hash::{Algorithms, NoProgress};

use super::client::Client;
use super::libs::{self, SharedFile};
use super::{ClientOptions, Descriptor, OCI_MANIFEST, Reference};
use crate::Store;
use crate::{Error, Result};
use tiffin_core::VerifyOptions;
use tiffin_core::layout::MANIFEST_FILE;

/// The OCI image config media type.
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A gzipped layer.
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// An uncompressed layer.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation of an index entry naming its tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The user and group the image runs as: numeric, so Kubernetes' `runAsNonRoot` can check it.
pub const USER_ID: u32 = 65532;
/// Where packages go in the image, and what its command serves.
pub const MODELS_DIR: &str = "models";
/// The port the image's command listens on.
pub const PORT: u16 = 8080;
/// Where ONNX Runtime's library goes in an image with it; `TIFFIN_ORT_LIB` names it.
pub const ORT_LIBRARY: &str = "usr/lib/onnxruntime/libonnxruntime.so";
/// Where ONNX Runtime's licence and notices go in an image with it.
pub const ORT_NOTICES: &str = "usr/share/doc/onnxruntime";
/// The symbol every ONNX Runtime library exports, and the first one tiffin looks up in it.
const ORT_MARKER: &[u8] = b"OrtGetApiBase";

/// What an image is made of.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Package folders or archives, each verified before it is put in; none for an image of
    /// the binary alone (a KServe runtime or storage-initializer image).
    pub packages: Vec<PathBuf>,
    /// The static `tiffin` binary to put at `/usr/bin/tiffin`.
    pub binary: PathBuf,
    /// Layers gzipped (the default) or plain tars.
    pub gzip: bool,
    /// The signer whose signature every package must carry, if any.
    pub signer: Option<tiffin_core::sign::Verifier>,
    /// ONNX Runtime to put in the image and serve with; `binary` is then the dynamically
    /// linked build with ONNX Runtime support.
    pub onnxruntime: Option<OnnxRuntimeFiles>,
}

/// ONNX Runtime for an image: the library and the notices that must travel with it.
#[derive(Debug, Clone)]
pub struct OnnxRuntimeFiles {
    /// `libonnxruntime.so` (any version 1.17 or later), put at [`ORT_LIBRARY`].
    pub library: PathBuf,
    /// Its licence and third-party notices (the wheel's `LICENSE` and `ThirdPartyNotices.txt`),
    /// put under [`ORT_NOTICES`] by their file names; at least one.
    pub notices: Vec<PathBuf>,
    /// The root the shared libraries are taken from: `/`, the machine building the image.
    pub root: PathBuf,
}

/// Where an image goes.
#[derive(Debug, Clone)]
pub enum ImageTarget {
    /// An OCI image layout folder, which must not exist yet, tagged `tag`.
    Layout {
        /// The folder to write.
        dir: PathBuf,
        /// The tag in its `index.json` (`org.opencontainers.image.ref.name`).
        tag: String,
    },
    /// The layout as one tar (`podman load -i`, `docker load -i`), tagged `tag`.
    Archive {
        /// The tar file to write.
        file: PathBuf,
        /// The tag the loading tool gives the image.
        tag: String,
    },
    /// A registry, sending only the blobs it lacks.
    Push {
        /// Where the image goes.
        reference: Reference,
        /// How to reach the registry.
        options: ClientOptions,
    },
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// `sha256:<hex>` of the image manifest: the image's digest.
    pub digest: String,
    /// Bytes of the manifest, the config and every layer as stored.
    pub size: u64,
    /// The layers, binary first.
    pub layers: Vec<LayerReport>,
    /// The package digests, by `name:version`.
    pub packages: BTreeMap<String, String>,
    /// Where it went: the folder, the archive or the reference.
    pub target: String,
    /// With a push: blobs sent and blobs the registry had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<usize>,
    /// With a push: blobs the registry had already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<usize>,
}

/// One layer of an [`ImageReport`].
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// What it holds: `tiffin` or `NAME:VERSION`.
    pub holds: String,
    /// `sha256:<hex>` of the blob as stored.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
    /// Bytes as stored.
    pub size: u64,
}

/// A blob written into the layout being built.
struct Blob {
    descriptor: Descriptor,
    path: PathBuf,
}

/// A package checked for the image: its verified folder, name, version, creation time, licence.
struct Checked {
    folder: PathBuf,
    name: String,
    version: String,
    created: String,
    license: Option<String>,
    digest: String,
}

/// Builds the image and writes it to `target`. Nothing half-written is left at the target:
/// the layout is built in a temporary folder and renamed into place (or tarred, or pushed).
pub fn build_image(options: &ImageOptions, target: &ImageTarget) -> Result<ImageReport> {
    let shared = match &options.onnxruntime {
        None => {
            check_static(&options.binary)?;
            Vec::new()
        }
        Some(ort) => check_ort(&options.binary, ort)?,
    };
    // Packages are verified into a store of their own, which gives every package (archive or
    // folder) as a verified folder of plain files.
    let work = tempfile::Builder::new()
        .prefix("tiffin-image-")
        .tempdir_in(work_parent(target))
        .map_err(Error::write(work_parent(target)))?;
    let store = Store::open(&work.path().join("store"))?;
    let verify = VerifyOptions {
        algorithms: Algorithms::BOTH,
        run_model: false,
        ..VerifyOptions::default()
    };
    let mut checked = Vec::new();
    for package in &options.packages {
        let stored = store.add_checked(package, &verify, options.signer.as_ref())?;
        let manifest = manifest_of(&stored.entry.path)?;
        checked.push(Checked {
            folder: stored.entry.path.clone(),
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            created: manifest.created.clone(),
            license: manifest.license.clone(),
            digest: stored.entry.digest.clone(),
        });
    }
    let mtime = image_time(&checked)?;
    let layout = work.path().join("layout");
    let blobs_dir = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs_dir).map_err(Error::write(&blobs_dir))?;

    let mut layers = Vec::new();
    let mut reports = Vec::new();
    // The binary's layer is dated at the epoch (as jib does), not at the packages' time: the
    // same binary then gives the same layer in every image, which a registry stores once and a
    // push of another model's image does not send again.
    let base = layer_blob(&blobs_dir, options.gzip, |tar| {
        base_layer(tar, &options.binary, &shared, 0)
    })?;
    reports.push(layer_report("tiffin", &base));
    layers.push(base);
    // ONNX Runtime in a layer of its own, also at the epoch: images of other tiffin builds with
    // the same library share it.
    if let Some(ort) = &options.onnxruntime {
        let layer = layer_blob(&blobs_dir, options.gzip, |tar| ort_layer(tar, ort, 0))?;
        reports.push(layer_report("onnxruntime", &layer));
        layers.push(layer);
    }
    for package in &checked {
        let layer = layer_blob(&blobs_dir, options.gzip, |tar| {
            package_layer(tar, package, mtime)
        })?;
        reports.push(layer_report(
            &format!("{}:{}", package.name, package.version),
            &layer,
        ));
        layers.push(layer);
    }

    let created = rfc3339(mtime)?;
    let mut env = vec!["PATH=/usr/bin:/bin".to_owned()];
    if options.onnxruntime.is_some() {
        // Read by `serve` (and every command that runs a model) as --runtime and --ort-lib.
        env.push("TIFFIN_RUNTIME=ort".to_owned());
        env.push(format!("TIFFIN_ORT_LIB=/{ORT_LIBRARY}"));
    }
    let labels: BTreeMap<String, String> = checked
        .iter()
        .map(|p| (format!("dev.tiffin.package.{}", p.name), p.digest.clone()))
        .collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": format!("{USER_ID}:{USER_ID}"),
            "Entrypoint": ["/usr/bin/tiffin"],
            "Cmd": ["serve", format!("/{MODELS_DIR}"), "--host", "0.0.0.0", "--port", PORT.to_string()],
            "Env": env,
            "ExposedPorts": { format!("{PORT}/tcp"): {} },
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": reports.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": reports.iter().map(|l| json!({
            "created": created,
            "created_by": format!("tiffin image: {}", l.holds),
        })).collect::<Vec<_>>(),
    });
    let config = write_blob(&blobs_dir, IMAGE_CONFIG, &to_bytes(&config))?;

    let mut annotations = BTreeMap::from([
        (
            "org.opencontainers.image.created".to_owned(),
            created.clone(),
        ),
        (
            "org.opencontainers.image.source".to_owned(),
            "https://github.com/tiffin-rs/tiffin".to_owned(),
        ),
    ]);
    if let Some(first) = checked.first() {
        annotations.insert("org.opencontainers.image.title".into(), first.name.clone());
        annotations.insert(
            "org.opencontainers.image.version".into(),
            first.version.clone(),
        );
        let licenses: Vec<&str> = checked
            .iter()
            .filter_map(|p| p.license.as_deref())
            .collect();
        if !licenses.is_empty() {
            annotations.insert(
                "org.opencontainers.image.licenses".into(),
                licenses.join(" AND "),
            );
        }
    } else {
        annotations.insert("org.opencontainers.image.title".into(), "tiffin".into());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor,
        "layers": layers.iter().map(|l| &l.descriptor).collect::<Vec<_>>(),
        "annotations": annotations,
    });
    let manifest_bytes = to_bytes(&manifest);
    let manifest_blob = write_blob(&blobs_dir, OCI_MANIFEST, &manifest_bytes)?;
    let size = manifest_blob.descriptor.size
        + config.descriptor.size
        + layers.iter().map(|l| l.descriptor.size).sum::<u64>();
    let mut report = ImageReport {
        digest: manifest_blob.descriptor.digest.clone(),
        size,
        layers: reports,
        packages: checked
            .iter()
            .map(|p| (format!("{}:{}", p.name, p.version), p.digest.clone()))
            .collect(),
        target: String::new(),
        uploaded: None,
        skipped: None,
    };

    match target {
        ImageTarget::Layout { dir, tag } => {
            write_layout_files(&layout, &manifest_blob.descriptor, tag)?;
            if dir.exists() {
                return Err(Error::AlreadyExists { path: dir.clone() });
            }
            std::fs::rename(&layout, dir).map_err(Error::write(dir))?;
            report.target = dir.display().to_string();
        }
        ImageTarget::Archive { file, tag } => {
            write_layout_files(&layout, &manifest_blob.descriptor, tag)?;
            let docker = json!([{
                "Config": format!("blobs/sha256/{}", hex_of(&config.descriptor.digest)),
                "RepoTags": [tag],
                "Layers": layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", hex_of(&l.descriptor.digest)))
                    .collect::<Vec<_>>(),
            }]);
            std::fs::write(layout.join("manifest.json"), to_bytes(&docker))
                .map_err(Error::write(&layout))?;
            write_archive(&layout, file, mtime)?;
            report.target = file.display().to_string();
        }
        ImageTarget::Push { reference, options } => {
            let tag = reference
                .tag
                .as_deref()
                .ok_or_else(|| Error::BadReference {
                    given: reference.to_string(),
                    reason: "an image push writes a tag: give `host/repository:tag`".into(),
                })?;
            let client = Client::connect(reference, options, true)?;
            let (mut uploaded, mut skipped) = (0, 0);
            for blob in std::iter::once(&config).chain(layers.iter().map(|l| &l.blob)) {
                let d = &blob.descriptor;
                if client.has_blob(&d.digest)? {
                    skipped += 1;
                    continue;
                }
                let mut file = File::open(&blob.path).map_err(Error::read(&blob.path))?;
                client.upload_blob(&d.digest, d.size, &mut file)?;
                uploaded += 1;
            }
            client.put_manifest(tag, OCI_MANIFEST, &manifest_bytes)?;
            report.target = reference.to_string();
            report.uploaded = Some(uploaded);
            report.skipped = Some(skipped);
        }
    }
    Ok(report)
}

/// The tag an image gets when none is given: `NAME:VERSION` of its first package, else `tiffin`
/// with this build's version. A semver build suffix (`+nnef`) is not allowed in a tag: `_`.
pub fn default_tag(packages: &[PathBuf]) -> Result<String> {
    let (name, version) = match packages.first() {
        Some(first) => {
            let manifest = manifest_of(first)?;
            (manifest.name, manifest.version.to_string())
        }
        None => ("tiffin".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    };
    Ok(format!("{name}:{}", version.replace('+', "_")))
}

/// Where the temporary layout is built: beside the target, so that the final rename stays on
/// one filesystem; the system's temporary folder for a push.
fn work_parent(target: &ImageTarget) -> PathBuf {
    let beside = |path: &Path| match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    match target {
        ImageTarget::Layout { dir, .. } => beside(dir),
        ImageTarget::Archive { file, .. } => beside(file),
        ImageTarget::Push { .. } => std::env::temp_dir(),
    }
}

/// The time every file of the image carries and the config states: the newest package's
/// `created`, else `SOURCE_DATE_EPOCH`, else the epoch; never the clock, so that the same
/// inputs give the same image.
fn image_time(packages: &[Checked]) -> Result<u64> {
    let mut newest = None;
    for p in packages {
        let t: jiff::Timestamp = p.created.parse().map_err(|e| Error::BadInput {
            path: p.folder.join(MANIFEST_FILE),
            reason: format!("`created` {:?} is not an RFC 3339 time: {e}", p.created),
        })?;
        let seconds = t.as_second().max(0) as u64;
        newest = Some(newest.map_or(seconds, |n: u64| n.max(seconds)));
    }
    if let Some(newest) = newest {
        return Ok(newest);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text.trim().parse().map_err(|_| Error::BadInput {
            path: PathBuf::from("$SOURCE_DATE_EPOCH"),
            reason: format!("{text:?} is not a number of seconds"),
        }),
        Err(_) => Ok(0),
    }
}

fn rfc3339(seconds: u64) -> Result<String> {
    jiff::Timestamp::from_second(seconds as i64)
        .map(|t| t.to_string())
        .map_err(|e| Error::BadInput {
            path: PathBuf::from("created"),
            reason: format!("{seconds} is out of range: {e}"),
        })
}

/// Refuses a binary that needs a dynamic loader: the image has no C library, so only a static
/// binary runs in it. Reads the ELF program headers for a `PT_INTERP` entry.
pub fn check_static(binary: &Path) -> Result<()> {
    let bad = |reason: String| Error::BadInput {
        path: binary.to_owned(),
        reason,
    };
    let mut file = File::open(binary).map_err(Error::read(binary))?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header)
        .map_err(|_| bad("is too short to be an ELF executable".into()))?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(bad(
            "is not a 64-bit little-endian ELF executable: give a static tiffin for x86_64 \
             Linux with --binary (`cargo xtask dist` builds one)"
                .into(),
        ));
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let phoff = u64::from_le_bytes(header[32..40].try_into().expect("8 bytes"));
    let (phentsize, phnum) = (u16_at(54) as u64, u16_at(56) as u64);
    if phentsize < 4 || phnum > 4096 {
        return Err(bad("has malformed ELF program headers".into()));
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    io::Seek::seek(&mut file, io::SeekFrom::Start(phoff)).map_err(Error::read(binary))?;
    file.read_exact(&mut table)
        .map_err(|_| bad("has truncated ELF program headers".into()))?;
    const PT_INTERP: u32 = 3;
    let dynamic = table
        .chunks(phentsize as usize)
        .any(|h| u32::from_le_bytes(h[..4].try_into().expect("4 bytes")) == PT_INTERP);
    if dynamic {
        return Err(bad(
            "is dynamically linked (it names a program interpreter), and the image has no C \
             library to load it with: give a static tiffin with --binary (`cargo xtask dist` \
             builds one, or `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
             --target x86_64-unknown-linux-gnu -p tiffin-cli`); the dynamic build with ONNX \
             Runtime goes in with --ort-lib, which brings the libraries it needs"
                .into(),
        ));
    }
    Ok(())
}

/// Checks the inputs of an image with ONNX Runtime and returns the shared libraries the binary
/// and the library need: the binary must be dynamically linked (a static one cannot load the
/// library), the library must be ONNX Runtime, and its notices must be given. Whether the binary
/// was built with ONNX Runtime support it does not say without being run: the command line asks
/// it (`tiffin --version`).
fn check_ort(binary: &Path, ort: &OnnxRuntimeFiles) -> Result<Vec<SharedFile>> {
    let bad = |path: &Path, reason: &str| Error::BadInput {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if libs::dynamic(binary)?.interpreter.is_none() {
        return Err(bad(
            binary,
            "is statically linked, and a static tiffin cannot load ONNX Runtime: give the \
             dynamically linked build with ONNX Runtime support with --binary (`cargo xtask \
             dist` makes tiffin-VERSION-x86_64-unknown-linux-gnu-ort.tar.gz)",
        ));
    }
    if !holds(&ort.library, ORT_MARKER)? {
        return Err(bad(
            &ort.library,
            "does not export OrtGetApiBase, so it is not ONNX Runtime: give libonnxruntime.so \
             (version 1.17 or later) with --ort-lib",
        ));
    }
    if ort.notices.is_empty() {
        return Err(bad(
            &ort.library,
            "goes into the image without its licence and notices: give them with --ort-notice \
             (the onnxruntime wheel's onnxruntime/LICENSE and onnxruntime/ThirdPartyNotices.txt)",
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for notice in &ort.notices {
        let name = notice.file_name().and_then(|n| n.to_str());
        match name {
            Some(name) if names.insert(name) => {}
            _ => {
                return Err(bad(
                    notice,
                    "is a notice without a file name of its own: each --ort-notice goes into \
                     the image by its name, so two may not share one",
                ));
            }
        }
    }
    libs::closure(&ort.root, &[binary, &ort.library])
}

/// Whether the file at `path` holds `needle` anywhere.
fn holds(path: &Path, needle: &[u8]) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(Error::read(path))?;
    Ok(memchr::memmem::find(&bytes, needle).is_some())
}

/// The deterministic header of an image entry.
fn header(kind: tar::EntryType, mode: u32, owner: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner.into());
    h.set_gid(owner.into());
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

fn dir_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    owner: u32,
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, mode, owner, 0, mtime);
    tar.append_data(&mut h, path, io::empty())
}

fn file_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    size: u64,
    data: impl Read,
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, 0, size, mtime);
    tar.append_data(&mut h, path, data)
}

/// One entry of a layer built from a list.
enum Item {
    /// A folder with its mode and owner.
    Dir { mode: u32, owner: u32 },
    /// A file with the given bytes.
    Bytes { mode: u32, data: Vec<u8> },
    /// A file copied from the host.
    File { mode: u32, path: PathBuf },
}

/// Writes `items` (paths relative to the image's root, folders ending in `/`) in sorted order,
/// adding every parent folder not listed (0755, root's), all dated `mtime`.
fn tree_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    mut items: BTreeMap<String, Item>,
    mtime: u64,
) -> Result<()> {
    let parents: Vec<String> = items
        .keys()
        .flat_map(|path| {
            path.trim_end_matches('/')
                .match_indices('/')
                .map(|(at, _)| path[..=at].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for parent in parents {
        items.entry(parent).or_insert(Item::Dir {
            mode: 0o755,
            owner: 0,
        });
    }
    for (path, item) in items {
        match item {
            Item::Dir { mode, owner } => {
                dir_entry(tar, &path, mode, owner, mtime).map_err(|e| Error::Write {
                    path: PathBuf::from(&path),
                    source: e,
                })?
            }
            Item::Bytes { mode, data } => {
                file_entry(tar, &path, mode, data.len() as u64, &data[..], mtime).map_err(|e| {
                    Error::Write {
                        path: PathBuf::from(&path),
                        source: e,
                    }
                })?
            }
            Item::File { mode, path: source } => {
                let file = File::open(&source).map_err(Error::read(&source))?;
                let size = file.metadata().map_err(Error::read(&source))?.len();
                file_entry(tar, &path, mode, size, file, mtime).map_err(|e| Error::Write {
                    path: source.clone(),
                    source: e,
                })?;
            }
        }
    }
    Ok(())
}

/// The binary's layer: the folders, the user, `/tmp`, `/models` and `/usr/bin/tiffin`, and for
/// a dynamically linked binary the `shared` libraries it needs, sorted.
fn base_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    binary: &Path,
    shared: &[SharedFile],
    mtime: u64,
) -> Result<()> {
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\ntiffin:x:{USER_ID}:{USER_ID}:tiffin:/tmp:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\ntiffin:x:{USER_ID}:\n");
    let mut items = BTreeMap::from([
        (
            "etc/group".to_owned(),
            Item::Bytes {
                mode: 0o644,
                data: group.into_bytes(),
            },
        ),
        (
            "etc/passwd".to_owned(),
            Item::Bytes {
                mode: 0o644,
                data: passwd.into_bytes(),
            },
        ),
        (
            format!("{MODELS_DIR}/"),
            Item::Dir {
                mode: 0o755,
                owner: USER_ID,
            },
        ),
        (
            "tmp/".to_owned(),
            Item::Dir {
                mode: 0o1777,
                owner: 0,
            },
        ),
        (
            "usr/bin/tiffin".to_owned(),
            Item::File {
                mode: 0o755,
                path: binary.to_owned(),
            },
        ),
    ]);
    for file in shared {
        items.insert(
            file.in_image.clone(),
            Item::File {
                mode: 0o755,
                path: file.source.clone(),
            },
        );
    }
    tree_layer(tar, items, mtime)
}

/// ONNX Runtime's layer: the library at [`ORT_LIBRARY`], its notices under [`ORT_NOTICES`].
fn ort_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    ort: &OnnxRuntimeFiles,
    mtime: u64,
) -> Result<()> {
    let mut items = BTreeMap::from([(
        ORT_LIBRARY.to_owned(),
        Item::File {
            mode: 0o755,
            path: ort.library.clone(),
        },
    )]);
    for notice in &ort.notices {
        let name = notice.file_name().unwrap_or_default().to_string_lossy();
        items.insert(
            format!("{ORT_NOTICES}/{name}"),
            Item::File {
                mode: 0o644,
                path: notice.clone(),
            },
        );
    }
    tree_layer(tar, items, mtime)
}

/// A package's layer: `/models/NAME/VERSION/` and its files, sorted, readable by everyone.
fn package_layer<W: Write>(tar: &mut tar::Builder<W>, package: &Checked, mtime: u64) -> Result<()> {
    let root = format!("{MODELS_DIR}/{}/{}/", package.name, package.version);
    let w = |e| Error::Write {
        path: package.folder.clone(),
        source: e,
    };
    dir_entry(
        tar,
        &format!("{MODELS_DIR}/{}/", package.name),
        0o755,
        0,
        mtime,
    )
    .map_err(w)?;
    dir_entry(tar, &root, 0o755, 0, mtime).map_err(w)?;
    for item in tiffin_core::layout::walk(&package.folder) {
        let (rel, entry) = item?;
        if entry.file_type().is_dir() {
            dir_entry(tar, &format!("{root}{rel}/"), 0o755, 0, mtime).map_err(w)?;
        } else {
            let file = File::open(entry.path()).map_err(Error::read(entry.path()))?;
            let size = file.metadata().map_err(Error::read(entry.path()))?.len();
            file_entry(tar, &format!("{root}{rel}"), 0o644, size, file, mtime).map_err(w)?;
        }
    }
    Ok(())
}

/// Writes a layer: the tar into a temporary file (its sha256 is the diff_id), then the blob
/// (gzipped with no time and no name, or the tar itself), named by its sha256.
fn layer_blob(
    blobs: &Path,
    gzip: bool,
    fill: impl FnOnce(&mut tar::Builder<BufWriter<File>>) -> Result<()>,
) -> Result<Layer> {
    let tar_path = blobs.join("layer.tar.tmp");
    let file = File::create(&tar_path).map_err(Error::write(&tar_path))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    tar.mode(tar::HeaderMode::Deterministic);
    fill(&mut tar)?;
    tar.into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all())
        .map_err(Error::write(&tar_path))?;
    let diff_id = sha256_file(&tar_path)?;
    let (path, media_type) = if gzip {
        let gz_path = blobs.join("layer.tar.gz.tmp");
        let out = File::create(&gz_path).map_err(Error::write(&gz_path))?;
        let mut encoder = flate2::GzBuilder::new()
            .mtime(0)
            .write(BufWriter::new(out), flate2::Compression::default());
        let mut input = File::open(&tar_path).map_err(Error::read(&tar_path))?;
        io::copy(&mut input, &mut encoder)
            .and_then(|_| encoder.finish())
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(Error::write(&gz_path))?;
        std::fs::remove_file(&tar_path).map_err(Error::write(&tar_path))?;
        (gz_path, LAYER_GZIP)
    } else {
        (tar_path, LAYER_TAR)
    };
    let digest = if gzip {
        sha256_file(&path)?
    } else {
        diff_id.clone()
    };
    let size = std::fs::metadata(&path).map_err(Error::read(&path))?.len();
    let final_path = blobs.join(hex_of(&digest));
    std::fs::rename(&path, &final_path).map_err(Error::write(&final_path))?;
    Ok(Layer {
        blob: Blob {
            descriptor: Descriptor {
                media_type: media_type.into(),
                digest,
                size,
                annotations: BTreeMap::new(),
            },
            path: final_path,
        },
        diff_id,
    })
}

/// A layer's blob and the digest of its uncompressed tar.
struct Layer {
    blob: Blob,
    diff_id: String,
}

impl std::ops::Deref for Layer {
    type Target = Blob;
    fn deref(&self) -> &Blob {
        &self.blob
    }
}

fn layer_report(holds: &str, layer: &Layer) -> LayerReport {
    LayerReport {
        holds: holds.to_owned(),
        digest: layer.descriptor.digest.clone(),
        diff_id: layer.diff_id.clone(),
        size: layer.descriptor.size,
    }
}

fn write_blob(blobs: &Path, media_type: &str, bytes: &[u8]) -> Result<Blob> {
    let digest = format!("sha256:{}", tiffin_hash::sha256(bytes));
    let path = blobs.join(hex_of(&digest));
    std::fs::write(&path, bytes).map_err(Error::write(&path))?;
    Ok(Blob {
        descriptor: Descriptor {
            media_type: media_type.into(),
            digest,
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        },
        path,
    })
}

/// `oci-layout` and `index.json`, the index naming the manifest with its tag.
fn write_layout_files(layout: &Path, manifest: &Descriptor, tag: &str) -> Result<()> {
    let mut entry = manifest.clone();
    entry.annotations.insert(REF_NAME.into(), tag.to_owned());
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry],
    });
    for (name, bytes) in [
        (
            "oci-layout",
            to_bytes(&json!({"imageLayoutVersion": "1.0.0"})),
        ),
        ("index.json", to_bytes(&index)),
    ] {
        let path = layout.join(name);
        std::fs::write(&path, bytes).map_err(Error::write(&path))?;
    }
    Ok(())
}

/// The layout as one tar, sorted, into a temporary file renamed to `file`.
fn write_archive(layout: &Path, file: &Path, mtime: u64) -> Result<()> {
    let parent = work_parent(&ImageTarget::Archive {
        file: file.to_owned(),
        tag: String::new(),
    });
    let tmp = tempfile::NamedTempFile::new_in(&parent).map_err(Error::write(&parent))?;
    let mut tar = tar::Builder::new(BufWriter::new(tmp.as_file()));
    tar.mode(tar::HeaderMode::Deterministic);
    for item in tiffin_core::layout::walk(layout) {
        let (rel, entry) = item?;
        let w = Error::write(file);
        if entry.file_type().is_dir() {
            dir_entry(&mut tar, &format!("{rel}/"), 0o755, 0, mtime).map_err(w)?;
        } else {
            let f = File::open(entry.path()).map_err(Error::read(entry.path()))?;
            let size = f.metadata().map_err(Error::read(entry.path()))?.len();
            file_entry(&mut tar, &rel, 0o644, size, f, mtime).map_err(w)?;
        }
    }
    tar.into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()).map(|_| ()))
        .map_err(Error::write(file))?;
    // A temporary file is private (0600); the image is for others to load.
    set_readable(tmp.path())?;
    tmp.persist(file).map_err(|e| Error::Write {
        path: file.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// The manifest of a package folder or archive.
fn manifest_of(package: &Path) -> Result<tiffin_manifest::Manifest> {
    let kind = tiffin_core::package_kind(package)?;
    let bytes = tiffin_core::read_manifest_bytes(package, kind)?;
    Ok(tiffin_core::parse_manifest(&bytes, package)?)
}

#[cfg(unix)]
fn set_readable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(Error::write(path))
}

#[cfg(not(unix))]
fn set_readable(_: &Path) -> Result<()> {
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String> {
    let digests = tiffin_hash::hash_file(path, Algorithms::SHA256, &NoProgress)?;
    Ok(format!(
        "sha256:{}",
        digests.sha256.expect("sha256 was asked for")
    ))
}

fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

fn to_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_refused_naming_the_fix() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        let err = check_static(&me).unwrap_err().to_string();
        assert!(
            err.contains("dynamically linked") && err.contains("--binary"),
            "{err}"
        );
        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(text.path(), b"#!/bin/sh\necho hi\n").unwrap();
        let err = check_static(text.path()).unwrap_err().to_string();
        assert!(
            err.contains("not a 64-bit") || err.contains("too short"),
            "{err}"
        );
    }

    #[test]
    fn the_base_layer_is_deterministic_with_its_owners_and_modes() {
        let bin = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(bin.path(), b"binary").unwrap();
        let build = || {
            let mut tar = tar::Builder::new(Vec::new());
            tar.mode(tar::HeaderMode::Deterministic);
            base_layer(&mut tar, bin.path(), &[], 1_700_000_000).unwrap();
            tar.into_inner().unwrap()
        };
        let bytes = build();
        assert_eq!(bytes, build());
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        let find = |p: &str| entries.iter().find(|e| e.0 == p).unwrap().clone();
        assert_eq!(find("tmp/").1, 0o1777);
        assert_eq!(find("models/").2, u64::from(USER_ID));
        assert_eq!(find("usr/bin/tiffin").1, 0o755);
        assert!(entries.iter().all(|e| e.3 == 1_700_000_000));
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
