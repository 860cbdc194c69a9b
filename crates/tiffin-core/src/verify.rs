//! `verify`: every digest, the exact file list, the manifest's rules and the derived files, for a
//! package folder or an archive read as a stream.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use tiffin_hash::{Algorithms, Digest, Digests, Progress};
use tiffin_manifest::{FileEntry, Manifest, ParityResult, check_relative_path};

use crate::examples::Drift;
use crate::layout::{self, CHECKSUM_FILE, MANIFEST_FILE, SIGNATURE_FILE, SIGSTORE_FILE};
use crate::package::{PackageKind, first_entry_manifest, package_kind, read_manifest_bytes};
use crate::{Error, Result, safety};

/// How thoroughly to check file contents.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The digests to recompute. blake3 alone is a complete content check and runs at the speed
    /// of the disk; add sha256 to also prove the sha256 digests (the ones `checksum.txt` and
    /// signatures use) right.
    pub algorithms: Algorithms,
    /// Once every digest checks out, load the model: check the signature against the graph and
    /// rerun the golden examples against their tolerances.
    pub run_model: bool,
    /// The engine that loads the model and reruns the examples when `run_model` is set.
    #[cfg(feature = "run")]
    pub runtime: tiffin_runtime::Runtime,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            algorithms: Algorithms::BLAKE3,
            // A build without a runtime checks digests only, unless asked for more.
            run_model: cfg!(feature = "run"),
            #[cfg(feature = "run")]
            runtime: tiffin_runtime::Runtime::Tract,
        }
    }
}

impl VerifyOptions {
    /// Digests only, with these algorithms: the files against the manifest, no model loaded.
    /// What a signature check, a store or a pull needs, and all a build without the `run`
    /// feature can do.
    // Without the `run` feature the options have no field beyond the two set here.
    #[allow(clippy::needless_update)]
    pub fn digests(algorithms: Algorithms) -> VerifyOptions {
        VerifyOptions {
            algorithms,
            run_model: false,
            ..VerifyOptions::default()
        }
    }
}

/// The outcome of a verification: what was checked and every problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The path verified.
    pub path: PathBuf,
    /// Folder or archive.
    pub kind: PackageKind,
    /// The package name, when the manifest could be read.
    pub name: Option<String>,
    /// The package version, when the manifest could be read.
    pub version: Option<String>,
    /// `sha256:<hex>` of `tiffin.json`.
    pub digest: String,
    /// The digests recomputed, e.g. `["blake3"]`.
    pub algorithms: Vec<&'static str>,
    /// Number of files whose content was hashed.
    pub files_checked: usize,
    /// Bytes hashed.
    pub bytes_checked: u64,
    /// True when the model was loaded and its signature checked against the graph.
    pub model_checked: bool,
    /// True when the package holds `tiffin.sigstore.json`. `verify` does not check it: that takes
    /// the signer's public key, see [`crate::sign::verify_signature`].
    pub signed: bool,
    /// How far each output of the golden examples moved, when they were rerun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examples: Option<Vec<Drift>>,
    /// How the rerun outputs compare with the original model's (`examples.parity`), by output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity: Option<BTreeMap<String, ParityResult>>,
    /// Everything wrong, in the order found; empty when the package is good.
    pub problems: Vec<Problem>,
    /// The manifest, when it could be read (not part of the JSON report: `inspect` shows it).
    #[serde(skip)]
    pub manifest: Option<Manifest>,
}

impl Report {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file concerned, as a path inside the package.
    pub file: Option<String>,
    /// The class of problem, for scripts.
    pub kind: ProblemKind,
    /// What is wrong, for people.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Classes of [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// `tiffin.json` cannot be read, breaks a rule, or is not in canonical form.
    Manifest,
    /// A file the manifest lists is not in the package.
    Missing,
    /// The package holds a file the manifest does not list.
    Extra,
    /// A file's size or content differs from the manifest.
    Changed,
    /// `checksum.txt` or `signature.json` disagrees with the manifest.
    Derived,
    /// The same path appears twice in an archive.
    Duplicate,
    /// A link, device, or path leaving the package.
    UnsafeEntry,
    /// A file that runs code when loaded (pickle, joblib, torch zip).
    UnsafeFormat,
    /// The archive ends early or is damaged.
    Truncated,
    /// The model cannot be loaded, or its graph disagrees with the declared signature.
    Model,
    /// A golden example's output moved beyond its tolerance.
    Drift,
    /// The model no longer agrees with the original model's outputs the package records.
    Parity,
    /// The cryptographic signature is missing, unreadable, made by another key, or does not
    /// match the package.
    Signature,
    /// The package holds a file the signature does not cover: it was added after signing.
    Unsigned,
}

#[derive(Debug, Default)]
struct Findings {
    problems: Vec<Problem>,
    files_checked: usize,
    bytes_checked: u64,
    /// Whether `tiffin.sigstore.json` was seen.
    signed: bool,
    /// Whether the manifest validated: only then are the files derived from it (checksum.txt)
    /// derivable, its digests being hex and its paths writable.
    manifest_valid: bool,
}

impl Findings {
    fn push(&mut self, file: Option<&str>, kind: ProblemKind, message: impl Into<String>) {
        self.problems.push(Problem {
            file: file.map(str::to_owned),
            kind,
            message: message.into(),
        });
    }
}

/// Verifies the package at `path`. An `Err` means the path is not a package at all (or cannot be
/// read); a package with problems is an `Ok` report whose [`Report::is_ok`] is false.
pub fn verify(path: &Path, options: &VerifyOptions, progress: &dyn Progress) -> Result<Report> {
    let kind = package_kind(path)?;
    let mut findings = Findings::default();
    let manifest_bytes;
    let manifest = match kind {
        PackageKind::Folder => {
            manifest_bytes = read_manifest_bytes(path, kind)?;
            let manifest = check_manifest(&manifest_bytes, &mut findings);
            if let Some(m) = &manifest {
                verify_folder(path, m, &manifest_bytes, options, progress, &mut findings)?;
            }
            manifest
        }
        PackageKind::Archive => {
            let (bytes, manifest) = verify_archive(path, options, progress, &mut findings)?;
            manifest_bytes = bytes;
            manifest
        }
    };
    let mut model_checked = false;
    let mut drifts = None;
    let mut parity = None;
    if let (true, true, Some(m)) = (options.run_model, findings.problems.is_empty(), &manifest) {
        #[cfg(feature = "run")]
        {
            (model_checked, drifts, parity) =
                check_model(path, kind, m, &options.runtime, &mut findings)?;
        }
        #[cfg(not(feature = "run"))]
        {
            let _ = (m, &mut model_checked, &mut drifts, &mut parity);
            return Err(Error::NoRuntime {
                path: path.to_owned(),
            });
        }
    }
    let mut algorithms = Vec::new();
    if options.algorithms.sha256 {
        algorithms.push("sha256");
    }
    if options.algorithms.blake3 {
        algorithms.push("blake3");
    }
    Ok(Report {
        path: path.to_owned(),
        kind,
        name: manifest.as_ref().map(|m| m.name.clone()),
        version: manifest.as_ref().map(|m| m.version.to_string()),
        digest: format!("sha256:{}", layout::package_digest(&manifest_bytes)),
        algorithms,
        files_checked: findings.files_checked,
        bytes_checked: findings.bytes_checked,
        model_checked,
        signed: findings.signed,
        examples: drifts,
        parity,
        problems: findings.problems,
        manifest,
    })
}

#[cfg(feature = "run")]
/// What loading the model found: whether it loaded, the golden examples' drift, the parity.
type ModelCheck = (
    bool,
    Option<Vec<Drift>>,
    Option<BTreeMap<String, ParityResult>>,
);

/// Loads the model of an intact package: the signature is checked against the graph as it loads,
/// then the golden examples are rerun, and compared with the original model's outputs where the
/// package records them. Returns whether the model loaded, the drifts and the parity.
#[cfg(feature = "run")]
fn check_model(
    path: &Path,
    kind: PackageKind,
    manifest: &Manifest,
    runtime: &tiffin_runtime::Runtime,
    findings: &mut Findings,
) -> Result<ModelCheck> {
    let model_file = Some(manifest.model.path.as_str());
    let note = crate::rerun::unchecked_runtime_note(manifest, runtime)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let source = crate::rerun::model_source(path, kind, manifest)?;
    let options = tiffin_runtime::LoadOptions::default()
        .with_plan_cache(0)
        .with_runtime(runtime.clone());
    let model = match tiffin_runtime::Model::load_owned(
        source,
        manifest.model.format,
        &manifest.signature,
        &options,
    ) {
        Ok(model) => model,
        Err(tiffin_runtime::Error::Signature(problems)) => {
            for p in problems {
                findings.push(
                    model_file,
                    ProblemKind::Model,
                    format!("signature: {p}{note}"),
                );
            }
            return Ok((false, None, None));
        }
        Err(e) => {
            findings.push(model_file, ProblemKind::Model, format!("{e}{note}"));
            return Ok((false, None, None));
        }
    };
    let (drifts, parity) = match crate::rerun::rerun(path, kind, manifest, &model) {
        Ok(Some(rerun)) => (Some(rerun.drifts), rerun.parity),
        Ok(None) => (None, None),
        Err(e) => {
            findings.push(
                manifest.examples.as_ref().map(|e| e.inputs.as_str()),
                ProblemKind::Drift,
                format!("{}{note}", chain(&e)),
            );
            return Ok((true, None, None));
        }
    };
    for d in drifts.iter().flatten().filter(|d| !d.passed()) {
        let message = match &d.problem {
            Some(problem) => format!("golden output `{}`: {problem}", d.output),
            None => format!(
                "golden output `{}` drifted: {} of {} outside tolerance (max abs {:.3e}, max rel {:.3e})",
                d.output, d.mismatches, d.compared, d.max_abs, d.max_rel
            ),
        };
        findings.push(
            manifest.examples.as_ref().map(|e| e.outputs.as_str()),
            ProblemKind::Drift,
            format!("{message}{note}"),
        );
    }
    if let Some(results) = &parity
        && results.values().any(|r| !r.passed())
    {
        let file = manifest
            .examples
            .as_ref()
            .and_then(|e| e.parity.as_ref())
            .map(|p| p.expected.as_str());
        for (name, r) in results.iter().filter(|(_, r)| !r.passed()) {
            findings.push(
                file,
                ProblemKind::Parity,
                format!(
                    "output `{name}` no longer agrees with the original model's: {} of {} \
                     outside tolerance (max abs {:.3e}, max rel {:.3e}; {:.2}% agree, {:.2}% \
                     required)",
                    r.mismatches,
                    r.compared,
                    r.max_abs,
                    r.max_rel,
                    r.agreement() * 100.0,
                    r.tolerance.min_agreement * 100.0
                ),
            );
        }
    }
    Ok((true, drifts, parity))
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Parses and validates `tiffin.json`; problems go to `findings`. Returns the manifest when its
/// file list can be trusted enough to check the files against.
fn check_manifest(bytes: &[u8], findings: &mut Findings) -> Option<Manifest> {
    let manifest = match Manifest::from_json_slice(bytes) {
        Ok(m) => m,
        Err(e) => {
            findings.push(Some(MANIFEST_FILE), ProblemKind::Manifest, e.to_string());
            return None;
        }
    };
    findings.manifest_valid = true;
    if let Err(errors) = manifest.validate() {
        findings.manifest_valid = false;
        for p in errors.0 {
            findings.push(
                Some(MANIFEST_FILE),
                ProblemKind::Manifest,
                format!("{}: {}", p.field, p.message),
            );
        }
    }
    if manifest.to_canonical_json() != bytes {
        findings.push(
            Some(MANIFEST_FILE),
            ProblemKind::Manifest,
            "is not in the canonical form tiffin writes (edited by hand?); pack the package again",
        );
    }
    Some(manifest)
}

/// What was found for one listed file.
struct Observed {
    digests: Digests,
    head: Vec<u8>,
}

/// Compares what was read of one file with its manifest entry.
fn compare(entry: &FileEntry, observed: &Observed, findings: &mut Findings) {
    let path = Some(entry.path.as_str());
    findings.files_checked += 1;
    findings.bytes_checked += observed.digests.size;
    if let Some(format) = safety::sniff(&entry.path, &observed.head) {
        findings.push(
            path,
            ProblemKind::UnsafeFormat,
            format!("is {format}; {}", safety::UNSAFE_FIX),
        );
    }
    if observed.digests.size != entry.size {
        findings.push(
            path,
            ProblemKind::Changed,
            format!(
                "is {} bytes, the manifest says {}",
                observed.digests.size, entry.size
            ),
        );
        return;
    }
    for (name, expected, found) in [
        ("blake3", &entry.blake3, observed.digests.blake3),
        ("sha256", &entry.sha256, observed.digests.sha256),
    ] {
        if let Some(found) = found.filter(|f| f.to_hex() != *expected) {
            findings.push(
                path,
                ProblemKind::Changed,
                content_differs(name, &found, expected),
            );
            return;
        }
    }
}

/// The problem of a file whose `algorithm` digest is `found` where the manifest says `expected`:
/// one wording for verify and for the store, which checks sha256 by blob name.
pub fn content_differs(algorithm: &str, found: &Digest, expected: &str) -> String {
    format!("content differs from the manifest ({algorithm} {found}, expected {expected})")
}

/// Checks the files derived from the manifest: `signature.json` must hold the manifest's
/// signature and `checksum.txt` the manifest's sha256 list.
fn check_derived(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    checksums: Option<&[u8]>,
    findings: &mut Findings,
) {
    match checksums {
        None => findings.push(
            Some(CHECKSUM_FILE),
            ProblemKind::Missing,
            "is missing; `sha256sum -c checksum.txt` cannot check this package",
        ),
        // Read one byte past the bound, so that a list past it is told apart from one at it.
        Some(found) if found.len() as u64 > layout::MAX_MANIFEST_SIZE => findings.push(
            Some(CHECKSUM_FILE),
            ProblemKind::Derived,
            format!(
                "is more than {} bytes, more than the bound MAX_MANIFEST_SIZE allows (it was not \
                 read further): a checksum list holds a line per file; pack the package again",
                layout::MAX_MANIFEST_SIZE
            ),
        ),
        Some(found) => {
            let digest = layout::package_digest(manifest_bytes);
            // checksum.txt is written after the manifest and records its digest, so it witnesses
            // a manifest changed after packing; say which of the two changed.
            let recorded = std::str::from_utf8(found)
                .ok()
                .and_then(|text| tiffin_hash::parse_checksums(text).ok())
                .and_then(|lines| lines.into_iter().find(|l| l.path == MANIFEST_FILE))
                .map(|line| line.sha256);
            if recorded.is_some_and(|r| r != digest) {
                findings.push(
                    Some(MANIFEST_FILE),
                    ProblemKind::Changed,
                    "differs from the digest checksum.txt records for it: the manifest was changed after packing",
                );
            } else if !findings.manifest_valid {
                // The manifest's own problems are reported; the list cannot be derived from
                // digests or paths that are not what a package holds (found by fuzzing: a
                // digest that is not hex panicked here).
            } else if found != layout::checksums(manifest, &digest).as_bytes() {
                findings.push(
                    Some(CHECKSUM_FILE),
                    ProblemKind::Derived,
                    "does not match the digests in tiffin.json; pack the package again",
                );
            }
        }
    }
    if let Some(entry) = manifest.files.iter().find(|f| f.path == SIGNATURE_FILE) {
        let expected = tiffin_hash::sha256(&layout::signature_json(&manifest.signature));
        if entry.sha256 != expected.to_hex() {
            findings.push(
                Some(SIGNATURE_FILE),
                ProblemKind::Derived,
                "does not hold the signature in tiffin.json; pack the package again",
            );
        }
    }
}

fn missing(
    expected: &BTreeMap<&str, &FileEntry>,
    seen: &BTreeSet<String>,
    findings: &mut Findings,
) {
    for path in expected.keys().filter(|p| !seen.contains(**p)) {
        findings.push(
            Some(path),
            ProblemKind::Missing,
            "is listed in the manifest but not in the package",
        );
    }
}

fn verify_folder(
    root: &Path,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    options: &VerifyOptions,
    progress: &dyn Progress,
    findings: &mut Findings,
) -> Result<()> {
    let expected: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut to_hash = Vec::new();
    let mut seen = BTreeSet::new();
    let mut checksums = None;
    for walked in crate::layout::walk(root) {
        let (rel, entry) = walked?;
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        if file_type.is_symlink() {
            findings.push(
                Some(&rel),
                ProblemKind::UnsafeEntry,
                "is a symbolic link; packages hold regular files only",
            );
        } else if !file_type.is_file() {
            findings.push(
                Some(&rel),
                ProblemKind::UnsafeEntry,
                "is not a regular file",
            );
        } else if rel == MANIFEST_FILE {
        } else if rel == SIGSTORE_FILE {
            findings.signed = true;
        } else if rel == CHECKSUM_FILE {
            // Capped as in an archive: a checksum list is a line per file, far below the bound.
            let mut bytes = Vec::new();
            File::open(entry.path())
                .and_then(|f| {
                    f.take(layout::MAX_MANIFEST_SIZE + 1)
                        .read_to_end(&mut bytes)
                })
                .map_err(Error::read(entry.path()))?;
            checksums = Some(bytes);
        } else if let Some(file) = expected.get(rel.as_str()) {
            to_hash.push((*file, entry.into_path()));
            seen.insert(rel);
        } else {
            findings.push(
                Some(&rel),
                ProblemKind::Extra,
                "is in the package but not listed in the manifest",
            );
        }
    }
    for (file, _) in &to_hash {
        progress.grow(file.size);
    }
    let observed: Vec<Result<Observed>> = to_hash
        .par_iter()
        .map(|(_, path)| {
            let digests = tiffin_hash::hash_file(path, options.algorithms, progress)?;
            let mut head = Vec::with_capacity(safety::HEAD_LEN);
            File::open(path)
                .and_then(|f| f.take(safety::HEAD_LEN as u64).read_to_end(&mut head))
                .map_err(Error::read(path))?;
            Ok(Observed { digests, head })
        })
        .collect();
    for ((file, _), observed) in to_hash.iter().zip(observed) {
        compare(file, &observed?, findings);
    }
    missing(&expected, &seen, findings);
    check_derived(manifest, manifest_bytes, checksums.as_deref(), findings);
    Ok(())
}

/// True when two zero blocks (tar's end-of-archive marker) follow the last entry's data. Without
/// this, an archive cut right after an entry would pass for a whole one.
fn ends_cleanly(path: &Path, data_end: u64) -> Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).map_err(Error::read(path))?;
    let mut marker = [1u8; 1024];
    file.seek(SeekFrom::Start(data_end))
        .map_err(Error::read(path))?;
    match file.read_exact(&mut marker) {
        Ok(()) => Ok(marker.iter().all(|&b| b == 0)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Error::Read {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// What to do after one archive entry was looked at.
enum Next {
    /// Go on with the next entry.
    Entry,
    /// Stop: the archive cannot be read further.
    Stop,
}

/// Where an entry's data lies in the archive: its first byte and its declared length.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    len: u64,
}

impl Span {
    /// Where the entry ends, tar's padding to 512-byte blocks included; `None` past `u64::MAX`,
    /// which only a hostile header declares.
    fn end(self) -> Option<u64> {
        self.len
            .div_ceil(512)
            .checked_mul(512)
            .and_then(|padded| self.start.checked_add(padded))
    }
}

/// The problem of an entry whose header declares more data than the archive holds.
fn past_the_end(span: Span, archive_len: u64) -> String {
    format!(
        "the archive ends early or is damaged (an entry of {} bytes at byte {} runs past the \
         end of the archive, {archive_len} bytes)",
        span.len, span.start
    )
}

/// The wording of an archive that ends early or is damaged, with the reason in brackets.
fn truncated(e: &dyn std::fmt::Display) -> String {
    format!("the archive ends early or is damaged ({e})")
}

/// Verifies an archive, never writing anything to disk. The manifest comes first, so each later
/// entry is checked against it as it comes. Only the headers are read in order: a tiffin archive
/// is an uncompressed tar, so each member's data is one contiguous span of the file, which is
/// hashed in place by positioned reads (on every core when only blake3 is wanted, as a folder's
/// files are) while tar seeks past it to the next header.
fn verify_archive(
    path: &Path,
    options: &VerifyOptions,
    progress: &dyn Progress,
    findings: &mut Findings,
) -> Result<(Vec<u8>, Option<Manifest>)> {
    let file = File::open(path).map_err(Error::read(path))?;
    let archive_len = file.metadata().map_err(Error::read(path))?.len();
    progress.grow(archive_len);
    // Headers are 512-byte reads, one per entry; tar seeks over the data rather than reading it.
    let mut archive = tar::Archive::new(&file);
    let mut entries = archive.entries_with_seek().map_err(Error::read(path))?;
    let mut count = layout::EntryCount::new(path);
    count.add()?;
    let manifest_bytes = first_entry_manifest(path, &mut entries)?;
    let Some(manifest) = check_manifest(&manifest_bytes, findings) else {
        return Ok((manifest_bytes, None));
    };
    let expected: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut state = ArchiveState {
        path,
        file: &file,
        archive_len,
        expected: &expected,
        seen: BTreeSet::from([MANIFEST_FILE.to_owned()]),
        checksums: None,
        options,
        progress,
    };
    // Where the data of the last entry ends (rounded up to tar's 512-byte blocks).
    let mut data_end = 0;
    for entry in entries {
        count.add()?;
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                findings.push(None, ProblemKind::Truncated, truncated(&e));
                break;
            }
        };
        let span = Span {
            start: entry.raw_file_position(),
            len: entry.size(),
        };
        if let Next::Stop = state.check_entry(&mut entry, span, findings)? {
            break;
        }
        // tar seeks over the data of an entry, and a seek past the end of the file succeeds:
        // without this, a header declaring more than the archive holds would end the walk
        // quietly, where reading the data would have failed.
        match span.end() {
            Some(end) if end <= archive_len => data_end = end,
            _ => {
                findings.push(
                    None,
                    ProblemKind::Truncated,
                    past_the_end(span, archive_len),
                );
                break;
            }
        }
    }
    if !findings
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Truncated)
        && !ends_cleanly(path, data_end)?
    {
        findings.push(
            None,
            ProblemKind::Truncated,
            "the archive ends without tar's end-of-archive marker: it was cut short",
        );
    }
    let ArchiveState {
        mut seen,
        checksums,
        ..
    } = state;
    seen.remove(MANIFEST_FILE);
    missing(&expected, &seen, findings);
    check_derived(&manifest, &manifest_bytes, checksums.as_deref(), findings);
    Ok((manifest_bytes, Some(manifest)))
}

/// What the walk over an archive's entries carries from one entry to the next.
struct ArchiveState<'a> {
    path: &'a Path,
    file: &'a File,
    archive_len: u64,
    expected: &'a BTreeMap<&'a str, &'a FileEntry>,
    /// The paths met so far, to refuse a second entry of the same path.
    seen: BTreeSet<String>,
    /// The bytes of `checksum.txt`, once met.
    checksums: Option<Vec<u8>>,
    options: &'a VerifyOptions,
    progress: &'a dyn Progress,
}

impl ArchiveState<'_> {
    /// Checks one entry after the manifest: its path and type, then its data against the
    /// manifest. Problems go to `findings`.
    fn check_entry(
        &mut self,
        entry: &mut tar::Entry<'_, &File>,
        span: Span,
        findings: &mut Findings,
    ) -> Result<Next> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let at = Some(name.as_str());
        let entry_type = entry.header().entry_type();
        // The derived names and the signature are reserved in manifests but belong in archives.
        let reserved = name == CHECKSUM_FILE || name == MANIFEST_FILE || name == SIGSTORE_FILE;
        if let (false, Err(reason)) = (reserved, check_relative_path(&name)) {
            findings.push(
                at,
                ProblemKind::UnsafeEntry,
                format!("path refused: {reason}"),
            );
            return Ok(Next::Entry);
        }
        if entry_type.is_dir() {
            return Ok(Next::Entry);
        }
        if !matches!(
            entry_type,
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            let what = match entry_type {
                tar::EntryType::Symlink => "a symbolic link",
                tar::EntryType::Link => "a hard link",
                tar::EntryType::Char | tar::EntryType::Block => "a device file",
                tar::EntryType::Fifo => "a named pipe",
                _ => "not a regular file",
            };
            findings.push(
                at,
                ProblemKind::UnsafeEntry,
                format!("is {what}; packages hold regular files only"),
            );
            return Ok(Next::Entry);
        }
        if !self.seen.insert(name.clone()) {
            findings.push(at, ProblemKind::Duplicate, "appears twice in the archive");
            return Ok(Next::Entry);
        }
        let declared = span.len;
        if name == CHECKSUM_FILE {
            let mut bytes = Vec::new();
            if let Err(e) = entry
                .take(layout::MAX_MANIFEST_SIZE + 1)
                .read_to_end(&mut bytes)
            {
                findings.push(at, ProblemKind::Truncated, truncated(&e));
                return Ok(Next::Stop);
            }
            self.checksums = Some(bytes);
            return Ok(Next::Entry);
        }
        if name == SIGSTORE_FILE {
            // Read (and its signature checked) only by `verify_signature`, given a key.
            findings.signed = true;
            return Ok(Next::Entry);
        }
        let Some(file) = self.expected.get(name.as_str()) else {
            findings.push(
                at,
                ProblemKind::Extra,
                "is in the package but not listed in the manifest",
            );
            return Ok(Next::Entry);
        };
        if declared != file.size {
            // Not read: a hostile size must not make us hash gigabytes, and the answer is known.
            findings.push(
                at,
                ProblemKind::Changed,
                format!("is {declared} bytes, the manifest says {}", file.size),
            );
            return Ok(Next::Entry);
        }
        if span.end().is_none_or(|end| end > self.archive_len) {
            findings.push(
                at,
                ProblemKind::Truncated,
                past_the_end(span, self.archive_len),
            );
            return Ok(Next::Stop);
        }
        match self.hash(span)? {
            Ok(observed) => {
                compare(file, &observed, findings);
                Ok(Next::Entry)
            }
            Err(reason) => {
                findings.push(at, ProblemKind::Truncated, reason);
                Ok(Next::Stop)
            }
        }
    }

    /// Hashes an entry's data where it lies in the archive and reads its head for the content
    /// check. The inner `Err` is the problem of an archive that turned out shorter than its
    /// length said (it shrank while it was read).
    fn hash(&self, span: Span) -> Result<std::result::Result<Observed, String>> {
        use std::io::ErrorKind::UnexpectedEof;
        use std::os::unix::fs::FileExt;
        let read = |source| Error::Read {
            path: self.path.to_owned(),
            source,
        };
        let digests = match tiffin_hash::hash_span(
            self.file,
            span.start,
            span.len,
            self.options.algorithms,
            self.progress,
        ) {
            Ok(digests) => digests,
            Err(e @ tiffin_hash::Error::SpanPastEnd { .. }) => return Ok(Err(truncated(&e))),
            Err(tiffin_hash::Error::Io(e)) if e.kind() == UnexpectedEof => {
                return Ok(Err(truncated(&e)));
            }
            Err(tiffin_hash::Error::Io(e)) => return Err(read(e)),
            Err(e) => return Err(e.into()),
        };
        // The span is within the archive, so this is at most HEAD_LEN bytes.
        let mut head = vec![0; span.len.min(safety::HEAD_LEN as u64) as usize];
        match self.file.read_exact_at(&mut head, span.start) {
            Ok(()) => Ok(Ok(Observed { digests, head })),
            Err(e) if e.kind() == UnexpectedEof => Ok(Err(truncated(&e))),
            Err(e) => Err(read(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_ends_after_its_padding_or_nowhere() {
        let end = |start, len| Span { start, len }.end();
        assert_eq!(end(512, 0), Some(512));
        assert_eq!(end(512, 1), Some(1024));
        assert_eq!(end(512, 512), Some(1024));
        assert_eq!(end(512, 513), Some(1536));
        // Sizes only a hostile header declares: the padding or the end does not fit in a u64.
        assert_eq!(end(512, u64::MAX), None);
        assert_eq!(end(u64::MAX - 511, 512), None);
    }

    #[test]
    fn an_entry_past_the_end_is_named_by_its_numbers() {
        assert_eq!(
            past_the_end(
                Span {
                    start: 2048,
                    len: 1 << 40
                },
                10240
            ),
            "the archive ends early or is damaged (an entry of 1099511627776 bytes at byte 2048 \
             runs past the end of the archive, 10240 bytes)"
        );
    }
}
