//! A package's model as the runtime reads it, and reruns of its golden examples: what `verify`
//! (its model check) and `run` (loading) share, kept apart from both so that neither depends on
//! the other's module.

use std::collections::BTreeMap;
use std::path::Path;

use tiffin_manifest::{FileRole, Manifest};
use tiffin_runtime::{Model, ModelSource, Tensor};

use crate::package::{PackageKind, read_files};
use crate::{Error, Result, examples};

/// The model of a verified package as the runtime reads it: the one file (in a folder), or its
/// range of the archive file, both read when the model loads; or for an NNEF folder the folder
/// itself (package folders) or a tar of its files (archives).
///
/// Like every read after verification, this one trusts that the package has not changed since
/// its digests were checked: the file (or the archive's member) is read again by the runtime, and
/// a change in between is not seen. For an archive, the member must still have the size the
/// manifest records and lie inside the archive, or its bytes are read as any other member's.
pub fn model_source(path: &Path, kind: PackageKind, manifest: &Manifest) -> Result<ModelSource> {
    let model_path = manifest.model.path.as_str();
    let prefix = format!("{model_path}/");
    let single_file = manifest
        .files
        .iter()
        .find(|f| f.path == model_path && f.role == FileRole::Model);
    if let Some(entry) = single_file {
        if kind == PackageKind::Folder {
            // Read when the model loads, by the runtime: ONNX Runtime then reads the file
            // itself and the process never holds its bytes beside the weights.
            return Ok(ModelSource::File(path.join(model_path)));
        }
        // A tiffin archive is an uncompressed tar, so a member's data is one range of the
        // file: the runtime reads it there, as it reads a folder's file, rather than from a
        // copy in memory held beside the weights (a 1 GiB model peaked at 2x its size).
        if let Some((offset, len)) = member_span(path, model_path, entry.size)? {
            return Ok(ModelSource::Span {
                path: path.to_owned(),
                offset,
                len,
            });
        }
        let mut files = read_files(path, kind, |p| p == model_path)?;
        let bytes = files
            .remove(model_path)
            .ok_or_else(|| missing(path, model_path))?;
        return Ok(ModelSource::Bytes(bytes));
    }
    match kind {
        PackageKind::Folder => Ok(ModelSource::Dir(path.join(model_path))),
        PackageKind::Archive => {
            let files = read_files(path, kind, |p| p.starts_with(&prefix))?;
            if files.is_empty() {
                return Err(missing(path, model_path));
            }
            Ok(ModelSource::Bytes(tar_of(&files, &prefix)))
        }
    }
}

/// The tensors `names` of the example file `file` among a package's `files`.
pub(crate) fn tensors_in(
    path: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    file: &str,
    names: &[&str],
) -> Result<Vec<Tensor>> {
    let bytes = files.get(file).ok_or_else(|| missing(path, file))?;
    examples::read_tensors(bytes, names).map_err(|reason| Error::Examples {
        path: path.join(file),
        reason,
    })
}

/// Where the data of the regular member `member` lies in the archive at `path`, as (offset,
/// length), when it has the manifest's `size` and lies inside the file; `None` otherwise (a
/// member missing, of another kind or size, or declared past the archive's end), which is then
/// read as before and fails there if it must.
fn member_span(path: &Path, member: &str, size: u64) -> Result<Option<(u64, u64)>> {
    let file = std::fs::File::open(path).map_err(Error::read(path))?;
    let archive_len = file.metadata().map_err(Error::read(path))?.len();
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut count = crate::layout::EntryCount::new(path);
    for entry in archive.entries_with_seek().map_err(Error::read(path))? {
        count.add()?;
        let entry = entry.map_err(Error::read(path))?;
        if entry.path_bytes().as_ref() != member.as_bytes() {
            continue;
        }
        let offset = entry.raw_file_position();
        let inside = offset
            .checked_add(size)
            .is_some_and(|end| end <= archive_len);
        let regular = entry.header().entry_type() == tar::EntryType::Regular;
        return Ok((regular && entry.size() == size && inside).then_some((offset, size)));
    }
    Ok(None)
}

fn missing(path: &Path, model_path: &str) -> Error {
    Error::NotAPackage {
        path: path.to_owned(),
        reason: format!("the model `{model_path}` is not in it"),
    }
}

/// A plain tar of the files below `prefix`, with the prefix removed: an NNEF archive.
fn tar_of(files: &BTreeMap<String, Vec<u8>>, prefix: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &name[prefix.len()..], &bytes[..])
            .expect("writing a tar to memory cannot fail for validated package paths");
    }
    builder
        .into_inner()
        .expect("writing a tar to memory cannot fail")
}

/// Reruns a package's golden examples and compares them with the stored outputs; `None` when the
/// package has none.
pub fn rerun_examples(
    path: &Path,
    kind: PackageKind,
    manifest: &Manifest,
    model: &Model,
) -> Result<Option<Vec<examples::Drift>>> {
    Ok(rerun(path, kind, manifest, model)?.map(|r| r.drifts))
}

/// A note for a failure of the model under `runtime` when the package was packed and checked on
/// other engines only (`runtime.checked_on`), e.g. "the package was checked on ort, not tract;
/// run it with --runtime ort"; `None` when it was checked on `runtime`, or nothing is recorded.
pub fn unchecked_runtime_note(
    manifest: &Manifest,
    runtime: &tiffin_runtime::Runtime,
) -> Option<String> {
    let checked = &manifest.runtime.checked_on;
    let name = runtime.name();
    let first = checked.first()?;
    (!checked.iter().any(|c| c == name)).then(|| {
        format!(
            "the package was checked on {}, not {name}; run it with --runtime {first}",
            checked.join(", ")
        )
    })
}

/// What a rerun of the golden examples found.
pub(crate) struct Rerun {
    /// Each output against its golden value.
    pub(crate) drifts: Vec<examples::Drift>,
    /// Each output the package has the original model's value of, against that value.
    pub(crate) parity: Option<BTreeMap<String, tiffin_manifest::ParityResult>>,
}

/// Reruns the golden examples: the drift of every output from its golden value and, when the
/// package records the original model's outputs, the parity with them.
pub(crate) fn rerun(
    path: &Path,
    kind: PackageKind,
    manifest: &Manifest,
    model: &Model,
) -> Result<Option<Rerun>> {
    let Some(ex) = &manifest.examples else {
        return Ok(None);
    };
    let expected_file = ex.parity.as_ref().map(|p| p.expected.as_str());
    let files = read_files(path, kind, |p| {
        p == ex.inputs || p == ex.outputs || Some(p) == expected_file
    })?;
    let sig = &manifest.signature;
    let read = |file: &str, wanted: Vec<&str>| tensors_in(path, &files, file, &wanted);
    let inputs = read(&ex.inputs, examples::tensor_names(&sig.inputs))?;
    let golden = read(&ex.outputs, examples::tensor_names(&sig.outputs))?;
    let actual = model.run(&inputs).map_err(|source| Error::Model {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let drifts = examples::compare(sig, &ex.tolerance, &golden, &actual);
    let parity = match &ex.parity {
        None => None,
        Some(parity) => {
            // In signature order, the outputs the original model's file holds.
            let names: Vec<&str> = sig
                .outputs
                .iter()
                .map(|o| o.name.as_str())
                .filter(|n| parity.outputs.contains_key(*n))
                .collect();
            let tensors = read(&parity.expected, names.clone())?;
            let expected: Vec<(String, Tensor)> =
                names.into_iter().map(str::to_owned).zip(tensors).collect();
            let tolerances = parity
                .outputs
                .iter()
                .map(|(name, r)| (name.clone(), r.tolerance.clone()))
                .collect();
            let results =
                examples::parity(sig, &tolerances, &expected, &actual).map_err(|reason| {
                    Error::Examples {
                        path: path.join(&parity.expected),
                        reason,
                    }
                })?;
            Some(results)
        }
    };
    Ok(Some(Rerun { drifts, parity }))
}
