//! `pack`: an authoring folder (tiffin.toml and the files it names) becomes a package folder and a
//! reproducible archive, written atomically.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;
use tiffin_hash::{Algorithms, Digest, NoProgress, Progress};
use tiffin_manifest::{Authoring, Examples, FileEntry, FileRole, Manifest, Parity, ParityResult};
use tiffin_runtime::{Model, ModelSource, Tensor};

use crate::layout::{
    self, AUTHORING_FILE, CHECKSUM_FILE, MANIFEST_FILE, MODEL_CARD_FILE, SIGNATURE_FILE,
};
use crate::{Error, Result, examples, model_card, safety};

/// What to pack and where.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The authoring folder, or the `tiffin.toml` in it.
    pub source: PathBuf,
    /// Where `NAME/VERSION/` and `NAME-VERSION.tiffin` go; the authoring folder when `None`.
    pub out: Option<PathBuf>,
    /// Replace an existing package of the same name and version.
    pub force: bool,
    /// Example inputs to run and store with their outputs as golden examples (any payload form
    /// `predict` takes); overrides `[examples] inputs` of `tiffin.toml`.
    pub examples: Option<PathBuf>,
    /// The engine the model is checked on and the golden examples' outputs made with: tract
    /// unless asked otherwise. A model only ONNX Runtime runs (a graph tract mis-runs) packs
    /// with its examples this way; the manifest records it in `runtime.checked_on`.
    pub runtime: tiffin_runtime::Runtime,
}

/// A package that `pack` wrote.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The manifest written into the package.
    pub manifest: Manifest,
    /// The package digest (sha256 of `tiffin.json`).
    pub digest: Digest,
    /// The package folder, `OUT/NAME/VERSION/`.
    pub folder: PathBuf,
    /// The archive, `OUT/NAME-VERSION.tiffin`.
    pub archive: PathBuf,
    /// The archive's size in bytes.
    pub archive_size: u64,
}

/// Where a file of the package comes from.
#[derive(Debug)]
enum Content {
    /// A file of the authoring folder, copied as it is.
    File(PathBuf),
    /// Bytes tiffin makes (the signature, a model card from the template).
    Bytes(Vec<u8>),
}

/// One file going into the package.
#[derive(Debug)]
struct Input {
    path: String,
    role: FileRole,
    content: Content,
}

/// Packs the authoring folder described by `options`. On any error nothing is left at the
/// destination: the package is built in a hidden staging folder beside it and renamed into place.
/// A folder or archive already holding this exact package is kept (packing is deterministic, so
/// packing again after an interrupted pack completes it); one holding another package is
/// [`Error::AlreadyExists`] unless `force`, which swaps the folder in one step on Linux.
pub fn pack(options: &PackOptions, progress: &dyn Progress) -> Result<Packed> {
    pack_checked(options, progress, |_| Ok(()))
}

/// [`pack`], with `check` run on the authoring folder once tiffin.toml and the model have passed
/// pack's own checks and before anything is written: a policy on top of them (`tiffin-doctor`'s
/// checklist, which `tiffin pack` applies) whose error refuses the folder.
pub fn pack_checked(
    options: &PackOptions,
    progress: &dyn Progress,
    check: impl FnOnce(&Path) -> Result<()>,
) -> Result<Packed> {
    let (dir, toml_path) = authoring_paths(&options.source)?;
    let text = layout::read_authoring(&toml_path)?;
    let manifest_err = |source| Error::Manifest {
        path: toml_path.clone(),
        source,
    };
    let mut authoring = Authoring::from_toml_str(&text).map_err(manifest_err)?;
    authoring.validate().map_err(|e| manifest_err(e.into()))?;
    let version: semver::Version = authoring.package.version.parse().expect("validated semver");

    let out = options.out.clone().unwrap_or_else(|| dir.clone());
    let folder = layout::folder_path(&out, &authoring.package.name, &version);
    let archive = layout::archive_path(&out, &authoring.package.name, &version);
    // Without --force an existing folder or archive is kept, and is fine only when it holds
    // exactly the package this pack makes (checked once the package is built): packing is
    // deterministic, so a rerun after an interrupted pack completes it, and a rerun after a
    // finished one changes nothing.
    let existing = |path: &Path| path.symlink_metadata().is_ok();

    let mut inputs = collect_inputs(&dir, &authoring)?;
    let created = created_time(&authoring, &toml_path, &inputs)?;
    let model_path = authoring.model.path.trim_end_matches('/').to_owned();
    let examples_file = options
        .examples
        .clone()
        .or_else(|| authoring.examples.as_ref().map(|e| dir.join(&e.inputs)));
    let expected_file = authoring
        .examples
        .as_ref()
        .and_then(|e| e.expected.as_ref())
        .map(|e| dir.join(e));
    if let (Some(given), Some(expected)) = (&options.examples, &expected_file) {
        return Err(Error::BadInput {
            path: given.clone(),
            reason: format!(
                "the original model's outputs in {} belong to the inputs of [examples] inputs; \
                 pack without --examples, or remove `expected` from [examples]",
                expected.display()
            ),
        });
    }
    let (examples, per_shape_dims) = check_model(
        &dir,
        &authoring,
        examples_file.as_deref(),
        expected_file.as_deref(),
        &options.runtime,
    )?;
    authoring.runtime.per_shape_dims = per_shape_dims;
    authoring.runtime.checked_on = vec![options.runtime.name().to_owned()];
    if let Some(golden) = &examples {
        // The card tiffin writes shows the agreement with the original model, known only now.
        if let (None, Some(parity)) = (&authoring.package.model_card, &golden.parity) {
            for input in inputs.iter_mut().filter(|i| i.role == FileRole::ModelCard) {
                input.content = Content::Bytes(
                    model_card::render(&authoring, Some(&parity.results)).into_bytes(),
                );
            }
        }
        let expected = golden
            .parity
            .as_ref()
            .map(|p| (examples::EXPECTED_FILE, &p.bytes));
        for (path, bytes) in [
            (examples::INPUTS_FILE, &golden.inputs),
            (examples::OUTPUTS_FILE, &golden.outputs),
        ]
        .into_iter()
        .chain(expected)
        {
            if inputs.iter().any(|i| i.path == path) {
                return Err(Error::BadInput {
                    path: dir.join(path),
                    reason: format!(
                        "tiffin writes `{path}` for the golden examples; rename your file"
                    ),
                });
            }
            inputs.push(Input {
                path: path.to_owned(),
                role: FileRole::Example,
                content: Content::Bytes(bytes.clone()),
            });
        }
    }

    // After the model check, so that a model tiffin cannot load is reported as such first.
    check(&dir)?;

    fs::create_dir_all(&out).map_err(Error::write(&out))?;
    let staging = tempfile::Builder::new()
        .prefix(".tiffin-pack-")
        .tempdir_in(&out)
        .map_err(Error::write(&out))?;
    let entries = stage(staging.path(), &inputs, progress)?;
    let mut manifest =
        Manifest::from_authoring(&authoring, created, model_path, entries).map_err(manifest_err)?;
    if examples.is_some() {
        let given = authoring
            .examples
            .as_ref()
            .map(|e| e.tolerance.clone())
            .unwrap_or_default();
        let parity = examples
            .as_ref()
            .and_then(|g| g.parity.as_ref())
            .map(|p| Parity {
                expected: examples::EXPECTED_FILE.to_owned(),
                source: authoring
                    .examples
                    .as_ref()
                    .and_then(|e| e.expected_from.clone())
                    .or_else(|| authoring.framework.clone()),
                outputs: p.results.clone(),
            });
        manifest.examples = Some(Examples {
            inputs: examples::INPUTS_FILE.to_owned(),
            outputs: examples::OUTPUTS_FILE.to_owned(),
            tolerance: examples::tolerances(&authoring.signature, &given),
            parity,
        });
    }
    manifest.validate().map_err(|e| manifest_err(e.into()))?;
    let json = manifest.to_canonical_json();
    let digest = layout::package_digest(&json);
    let checksums = layout::checksums(&manifest, &digest);
    write_new(&staging.path().join(MANIFEST_FILE), &json)?;
    write_new(&staging.path().join(CHECKSUM_FILE), checksums.as_bytes())?;
    crate::crash::point("package staged");
    let keep_folder = !options.force && existing(&folder) && {
        if !holds_package(&folder, &json) {
            return Err(Error::AlreadyExists { path: folder });
        }
        true
    };

    let archive_tmp = tempfile::Builder::new()
        .prefix(".tiffin-pack-")
        .suffix(".tiffin")
        .tempfile_in(&out)
        .map_err(Error::write(&out))?;
    write_archive(
        archive_tmp.as_file(),
        staging.path(),
        &manifest,
        &json,
        &checksums,
    )
    .map_err(Error::write(archive_tmp.path()))?;
    let archive_size = archive_tmp
        .as_file()
        .metadata()
        .map_err(Error::read(archive_tmp.path()))?
        .len();
    // Temporary files are created private (0600); an archive is as readable as any other file.
    layout::set_mode(archive_tmp.path(), 0o644)?;

    let keep_archive =
        !options.force && existing(&archive) && {
            let ours = tiffin_hash::hash_file(archive_tmp.path(), Algorithms::SHA256, &NoProgress)?;
            let theirs = tiffin_hash::hash_file(&archive, Algorithms::SHA256, &NoProgress)
                .map_err(|_| Error::AlreadyExists {
                    path: archive.clone(),
                })?;
            if ours.sha256 != theirs.sha256 {
                return Err(Error::AlreadyExists { path: archive });
            }
            true
        };
    crate::crash::point("archive staged");

    if !keep_folder {
        install_folder(staging, &folder, options.force)?;
    }
    crate::crash::point("package folder in place");
    if !keep_archive {
        let persisted = if options.force {
            archive_tmp.persist(&archive).map_err(|e| e.error)
        } else {
            archive_tmp.persist_noclobber(&archive).map_err(|e| e.error)
        };
        if let Err(e) = persisted {
            // The folder is already in place; take it back out so that a failed pack leaves
            // nothing, unless it was there before this pack.
            if !keep_folder {
                let _ = fs::remove_dir_all(&folder);
            }
            return Err(Error::Write {
                path: archive,
                source: e,
            });
        }
    }
    crate::crash::point("archive in place");
    Ok(Packed {
        manifest,
        digest,
        folder,
        archive,
        archive_size,
    })
}

/// The golden example files a pack writes.
#[derive(Debug)]
struct Golden {
    inputs: Vec<u8>,
    outputs: Vec<u8>,
    parity: Option<ParityCheck>,
}

/// The original model's outputs as stored, and how the packaged model compared with them.
#[derive(Debug)]
struct ParityCheck {
    bytes: Vec<u8>,
    results: BTreeMap<String, ParityResult>,
}

/// Checks the declared signature against the model's graph, and with example inputs, loads the
/// model, runs them and returns the golden files. A model tiffin cannot load is refused here, so
/// that every package it writes can run.
/// With the original model's outputs (`expected_file`), compares them with the packaged model's
/// and refuses past the parity tolerance.
fn check_model(
    dir: &Path,
    a: &Authoring,
    examples_file: Option<&Path>,
    expected_file: Option<&Path>,
    runtime: &tiffin_runtime::Runtime,
) -> Result<(Option<Golden>, Vec<String>)> {
    let model_path = dir.join(a.model.path.trim_end_matches('/'));
    let format = a.model.resolved_format().expect("validated model format");
    let source = if model_path.is_dir() {
        ModelSource::Dir(model_path.clone())
    } else {
        ModelSource::Bytes(fs::read(&model_path).map_err(Error::read(&model_path))?)
    };
    let model_err = |source| Error::Model {
        path: model_path.clone(),
        source: Box::new(source),
    };
    let options = tiffin_runtime::LoadOptions::default()
        .with_plan_cache(0)
        .with_runtime(runtime.clone());
    let Some(examples_file) = examples_file else {
        // tract's check types the graph without building a plan; ONNX Runtime checks the
        // signature against the session it opens.
        if *runtime == tiffin_runtime::Runtime::Tract {
            let per_shape = tiffin_runtime::check_signature(&a.signature, &source, format)
                .map_err(model_err)?;
            return Ok((None, per_shape));
        }
        Model::load(&source, format, &a.signature, &options).map_err(model_err)?;
        return Ok((None, Vec::new()));
    };
    let model = Model::load(&source, format, &a.signature, &options).map_err(model_err)?;
    let text = fs::read(examples_file).map_err(Error::read(examples_file))?;
    let payload: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| Error::Examples {
            path: examples_file.to_owned(),
            reason: format!("not JSON: {e}"),
        })?;
    let inputs = crate::payload::decode(&a.signature, &payload).map_err(|e| Error::Examples {
        path: examples_file.to_owned(),
        reason: e.to_string(),
    })?;
    let outputs = model.run(&inputs).map_err(model_err)?;
    let parity = match expected_file {
        None => None,
        Some(file) => Some(check_parity(a, file, &outputs)?),
    };
    let per_shape = model
        .per_shape_dims()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let golden = Golden {
        inputs: examples::write_tensors(&examples::tensor_names(&a.signature.inputs), &inputs),
        outputs: examples::write_tensors(&examples::tensor_names(&a.signature.outputs), &outputs),
        parity,
    };
    Ok((Some(golden), per_shape))
}

/// Reads the original model's outputs from `file`, compares the packaged model's `outputs` with
/// them and refuses, with the table, when an output misses its parity tolerance.
fn check_parity(a: &Authoring, file: &Path, outputs: &[Tensor]) -> Result<ParityCheck> {
    let bad = |reason: String| Error::Examples {
        path: file.to_owned(),
        reason,
    };
    let text = fs::read(file).map_err(Error::read(file))?;
    let payload: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let expected = examples::decode_expected(&a.signature, &payload).map_err(bad)?;
    let tolerances = a
        .examples
        .as_ref()
        .map(|e| e.parity.clone())
        .unwrap_or_default();
    let results = examples::parity(&a.signature, &tolerances, &expected, outputs).map_err(bad)?;
    if results.values().any(|r| !r.passed()) {
        return Err(Error::Parity {
            path: file.to_owned(),
            table: examples::parity_table(&results),
        });
    }
    let (names, tensors): (Vec<&str>, Vec<Tensor>) = expected
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor.clone()))
        .unzip();
    Ok(ParityCheck {
        bytes: examples::write_tensors(&names, &tensors),
        results,
    })
}

/// The authoring folder and its `tiffin.toml`, from a folder or a file path.
fn authoring_paths(source: &Path) -> Result<(PathBuf, PathBuf)> {
    if source.is_dir() {
        let toml = source.join(AUTHORING_FILE);
        if !toml.is_file() {
            return Err(Error::NoAuthoringFile {
                dir: source.to_owned(),
            });
        }
        Ok((source.to_owned(), toml))
    } else if source.is_file() {
        let dir = source
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok((dir.to_owned(), source.to_owned()))
    } else {
        Err(Error::Read {
            path: source.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        })
    }
}

/// Everything the package will hold besides `tiffin.json` and `checksum.txt`, checked: each
/// source is a regular file inside the authoring folder, no package path is used twice, and no
/// file is a pickle.
fn collect_inputs(dir: &Path, a: &Authoring) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    add_path(
        dir,
        a.model.path.trim_end_matches('/'),
        FileRole::Model,
        true,
        &mut inputs,
    )?;
    inputs.push(Input {
        path: SIGNATURE_FILE.to_owned(),
        role: FileRole::Signature,
        content: Content::Bytes(layout::signature_json(&a.signature)),
    });
    let card = match &a.package.model_card {
        Some(user_card) => {
            let source = regular_file(dir, user_card)?;
            Content::File(source)
        }
        None => Content::Bytes(model_card::render(a, None).into_bytes()),
    };
    inputs.push(Input {
        path: MODEL_CARD_FILE.to_owned(),
        role: FileRole::ModelCard,
        content: card,
    });
    for spec in &a.files {
        add_path(dir, &spec.path, spec.role, false, &mut inputs)?;
    }

    let mut seen = std::collections::BTreeMap::new();
    for input in &inputs {
        if let Some(role) = seen.insert(input.path.as_str(), input.role) {
            return Err(Error::BadInput {
                path: dir.join(&input.path),
                reason: format!(
                    "the package would hold `{}` twice (as {role:?} and as {:?}); list each file once \
                     and do not name a file `{SIGNATURE_FILE}` or `{MODEL_CARD_FILE}`, which tiffin writes",
                    input.path, input.role
                ),
            });
        }
    }
    for input in &inputs {
        if let Content::File(source) = &input.content {
            let head = read_head(source)?;
            if let Some(format) = safety::sniff(&input.path, &head) {
                return Err(Error::UnsafeFile {
                    path: source.clone(),
                    format,
                });
            }
        }
    }
    Ok(inputs)
}

/// Adds a file, or every file below a folder when `allow_dir` (an NNEF model folder), keeping
/// its path relative to the authoring folder as its path in the package.
fn add_path(
    dir: &Path,
    rel: &str,
    role: FileRole,
    allow_dir: bool,
    inputs: &mut Vec<Input>,
) -> Result<()> {
    let source = dir.join(rel);
    let meta = source.symlink_metadata().map_err(Error::read(&source))?;
    if allow_dir && meta.is_dir() {
        for entry in walkdir::WalkDir::new(&source).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::Read {
                path: source.clone(),
                source: e.into(),
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            let sub = entry
                .path()
                .strip_prefix(dir)
                .expect("walkdir stays below its root");
            let sub = sub
                .to_str()
                .ok_or_else(|| not_utf8(entry.path()))?
                .replace('\\', "/");
            inputs.push(Input {
                path: sub.clone(),
                role,
                content: Content::File(regular_file(dir, &sub)?),
            });
        }
        return Ok(());
    }
    inputs.push(Input {
        path: rel.to_owned(),
        role,
        content: Content::File(regular_file(dir, rel)?),
    });
    Ok(())
}

/// The source of `rel`, which must be a regular file: links are refused because a package must
/// hold bytes, not pointers to whatever a link names on the packing machine.
fn regular_file(dir: &Path, rel: &str) -> Result<PathBuf> {
    let source = dir.join(rel);
    let meta = source.symlink_metadata().map_err(Error::read(&source))?;
    let reason = if meta.file_type().is_symlink() {
        "is a symbolic link; copy the file itself into the folder"
    } else if meta.is_dir() {
        "is a folder; list the files in it one by one"
    } else if !meta.is_file() {
        "is not a regular file"
    } else {
        return Ok(source);
    };
    Err(Error::BadInput {
        path: source,
        reason: reason.to_owned(),
    })
}

fn not_utf8(path: &Path) -> Error {
    Error::BadInput {
        path: path.to_owned(),
        reason: "the name is not UTF-8; rename it".to_owned(),
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(safety::HEAD_LEN);
    File::open(path)
        .and_then(|f| f.take(safety::HEAD_LEN as u64).read_to_end(&mut head))
        .map_err(Error::read(path))?;
    Ok(head)
}

/// The package's creation time: `package.created` when given; else `SOURCE_DATE_EPOCH`, the
/// reproducible-builds convention; else the newest modification time among the inputs. Never the
/// clock, so that packing the same inputs twice gives the same digest.
fn created_time(a: &Authoring, toml_path: &Path, inputs: &[Input]) -> Result<String> {
    if let Some(created) = &a.package.created {
        return Ok(created.clone());
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let seconds: i64 = epoch.trim().parse().map_err(|_| Error::BadInput {
            path: PathBuf::from("$SOURCE_DATE_EPOCH"),
            reason: format!("`{epoch}` is not a number of seconds since 1970"),
        })?;
        return rfc3339(seconds);
    }
    let sources = inputs.iter().filter_map(|i| match &i.content {
        Content::File(p) => Some(p.as_path()),
        Content::Bytes(_) => None,
    });
    let mut newest = 0;
    for path in sources.chain([toml_path]) {
        let modified = path
            .metadata()
            .and_then(|m| m.modified())
            .map_err(Error::read(path))?;
        let seconds = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        newest = newest.max(seconds);
    }
    rfc3339(newest as i64)
}

fn rfc3339(seconds: i64) -> Result<String> {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .map_err(|e| Error::BadInput {
            path: PathBuf::from("$SOURCE_DATE_EPOCH"),
            reason: format!("{seconds} is out of range: {e}"),
        })
}

/// Writes every input into the staging folder, hashing each while it is copied (one read per
/// file), files in parallel.
fn stage(staging: &Path, inputs: &[Input], progress: &dyn Progress) -> Result<Vec<FileEntry>> {
    for input in inputs {
        if let Content::File(source) = &input.content {
            progress.grow(source.metadata().map_err(Error::read(source))?.len());
        }
    }
    inputs
        .par_iter()
        .map(|input| {
            let dest = staging.join(&input.path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(Error::write(parent))?;
            }
            let mut out = File::create_new(&dest).map_err(Error::write(&dest))?;
            let digests = match &input.content {
                Content::File(source) => {
                    let file = File::open(source).map_err(Error::read(source))?;
                    tiffin_hash::copy_hashing(file, &mut out, Algorithms::BOTH, progress)
                        .map_err(Error::write(&dest))?
                }
                Content::Bytes(bytes) => tiffin_hash::copy_hashing(
                    &bytes[..],
                    &mut out,
                    Algorithms::BOTH,
                    &tiffin_hash::NoProgress,
                )
                .map_err(Error::write(&dest))?,
            };
            out.sync_all().map_err(Error::write(&dest))?;
            Ok(FileEntry {
                path: input.path.clone(),
                role: input.role,
                size: digests.size,
                sha256: digests.sha256.expect("asked for").to_hex(),
                blake3: digests.blake3.expect("asked for").to_hex(),
            })
        })
        .collect()
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create_new(path).map_err(Error::write(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::write(path))
}

/// Writes the archive: a POSIX (ustar) tar with `tiffin.json` first, then every other file sorted
/// by path, each with mode 0644, owner 0:0, no user or group names, and the package's creation
/// time as mtime, so that the same package always gives the same bytes.
fn write_archive(
    file: &File,
    staging: &Path,
    manifest: &Manifest,
    json: &[u8],
    checksums: &str,
) -> std::io::Result<()> {
    let mtime = layout::epoch_seconds(&manifest.created);
    let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let mut append = |path: &str, size: u64, data: &mut dyn Read| {
        layout::append_entry(&mut builder, path, size, mtime, data)
    };
    append(MANIFEST_FILE, json.len() as u64, &mut &json[..])?;
    let mut rest: Vec<(&str, Option<u64>)> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), Some(f.size)))
        .collect();
    rest.push((CHECKSUM_FILE, None));
    rest.sort_by_key(|(path, _)| *path);
    for (path, size) in rest {
        if path == CHECKSUM_FILE {
            append(path, checksums.len() as u64, &mut checksums.as_bytes())?;
        } else {
            let mut source = File::open(staging.join(path))?;
            append(path, size.expect("listed files have sizes"), &mut source)?;
        }
    }
    let mut writer = builder.into_inner()?;
    writer.flush()?;
    drop(writer);
    file.sync_all()
}

/// Whether the folder holds exactly the package whose `tiffin.json` is `json`, every file intact
/// (its digests checked, the model not run).
fn holds_package(folder: &Path, json: &[u8]) -> bool {
    let same_manifest = fs::read(folder.join(MANIFEST_FILE)).is_ok_and(|bytes| bytes == json);
    same_manifest
        && crate::verify(
            folder,
            &crate::VerifyOptions::digests(Algorithms::BLAKE3),
            &NoProgress,
        )
        .is_ok_and(|report| report.is_ok())
}

/// Renames the staging folder to `NAME/VERSION/`. With `force`, an existing folder is swapped
/// with the new one in one step where the system allows (Linux), so that a crash leaves the old
/// package or the new one at that path, never neither; the old one is removed afterwards.
fn install_folder(staging: tempfile::TempDir, folder: &Path, force: bool) -> Result<()> {
    let parent = folder.parent().expect("a package folder has a parent");
    fs::create_dir_all(parent).map_err(Error::write(parent))?;
    layout::set_mode(staging.path(), 0o755)?;
    if force && folder.is_dir() && !folder.is_symlink() {
        crate::crash::point("swapping the package folder with the new one");
        match layout::exchange(staging.path(), folder) {
            // The staging path now holds the old package, which the guard removes.
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(source) => {
                return Err(Error::Write {
                    path: folder.to_owned(),
                    source,
                });
            }
        }
    }
    let old = if force && folder.symlink_metadata().is_ok() {
        let aside = tempfile::Builder::new()
            .prefix(".tiffin-old-")
            .tempdir_in(parent)
            .map_err(Error::write(parent))?;
        let aside_path = aside.path().join("package");
        fs::rename(folder, &aside_path).map_err(Error::write(folder))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    crate::crash::point("renaming the package folder into place");
    if let Err(source) = fs::rename(&staged, folder) {
        let _ = fs::remove_dir_all(&staged);
        if let Some(old) = &old {
            let _ = fs::rename(old.path().join("package"), folder);
        }
        // Another pack of the same version won the race since the check at the start.
        if folder.symlink_metadata().is_ok() && old.is_none() {
            return Err(Error::AlreadyExists {
                path: folder.to_owned(),
            });
        }
        return Err(Error::Write {
            path: folder.to_owned(),
            source,
        });
    }
    Ok(())
}
