//! Cryptographic signatures of packages, in the format of OpenSSF `model_signing` 1.x, so that
//! either tool checks what the other signed.
//!
//! `sign` writes `tiffin.sigstore.json` into the package: a Sigstore bundle whose DSSE envelope
//! signs an in-toto statement listing every file of the package (the bundle itself excepted) with
//! its sha256. The manifest already holds the sha256 of every listed file, so once `verify` has
//! checked the files against it (blake3, fast), signing hashes only `tiffin.json` and
//! `checksum.txt`. `verify_signature` checks the bundle's signature with the signer's public key
//! first, and only then the package's digests against the signed ones. Certificate mode (`cert`)
//! puts the signing certificate and its chain in the bundle instead of the key's hint, and checks
//! the chain against given roots.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tiffin_hash::{Algorithms, Digest, Progress};

pub use tiffin_sign::{CertificateChain, PublicKey, SigningKey, TrustRoots, Verifier};

use crate::layout::{self, CHECKSUM_FILE, MANIFEST_FILE, MAX_MANIFEST_SIZE, SIGSTORE_FILE};
use crate::package::{PackageKind, package_kind};
use crate::{Error, Problem, ProblemKind, Report, Result, VerifyOptions, verify};

/// How `sign` checks the package before signing it, and how the bundle names the signer.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The verification run first; a package with any problem is not signed. By default blake3
    /// only and no model run: the signature vouches for the bytes, which blake3 checks in full.
    pub verify: VerifyOptions,
    /// Certificate mode: the signing key's certificate and its chain go into the bundle, to be
    /// checked against root certificates; `None` names the key by its hint (key mode).
    pub certificates: Option<CertificateChain>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            verify: VerifyOptions::digests(Algorithms::BLAKE3),
            certificates: None,
        }
    }
}

/// A package `sign` signed.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    /// The package signed.
    pub path: PathBuf,
    /// Folder or archive.
    pub kind: PackageKind,
    /// The package name.
    pub name: String,
    /// The package version.
    pub version: String,
    /// Where the bundle went: `PKG/tiffin.sigstore.json`, or the archive, rewritten with it.
    pub bundle: PathBuf,
    /// True when an earlier signature was replaced.
    pub replaced: bool,
    /// Number of files the signature covers.
    pub files: usize,
    /// `sha256:<hex>` of the signed statement's subject (over every file's digest).
    pub subject_digest: String,
    /// The key hint: hex sha256 of the signer's public key PEM.
    pub key_hint: String,
    /// Certificate mode: the signing certificate's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// Signs the package at `path` (folder or archive) with `key`, after verifying it. A folder gets
/// `tiffin.sigstore.json`, written atomically; an archive is rewritten with the bundle as an entry
/// (same header conventions as `pack`) into a temporary file renamed over it, so that a failure
/// leaves the old archive whole. An earlier signature is replaced.
pub fn sign(
    path: &Path,
    key: &SigningKey,
    options: &SignOptions,
    progress: &dyn Progress,
) -> Result<Signed> {
    let kind = package_kind(path)?;
    let report = verify(path, &options.verify, progress)?;
    if !report.is_ok() {
        return Err(Error::Sign {
            path: path.to_owned(),
            reason: format!(
                "it fails verification, and a signature would vouch for a broken package: {}; \
                 pack it again",
                report
                    .problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    let Some(manifest) = report.manifest.as_ref() else {
        return Err(Error::Sign {
            path: path.to_owned(),
            reason: "its manifest cannot be read; pack it again".to_owned(),
        });
    };
    let manifest_digest = report_digest(&report);
    // A verified package holds exactly the manifest's files, tiffin.json, and a checksum.txt equal
    // to the one derived from the manifest; so every digest is known without reading a file.
    let checksums = layout::checksums(manifest, &manifest_digest);
    let mut files: Vec<(String, Digest)> = layout::checksum_lines(manifest, &manifest_digest)
        .into_iter()
        .map(|line| (line.path, line.sha256))
        .collect();
    files.push((
        CHECKSUM_FILE.to_owned(),
        tiffin_hash::sha256(checksums.as_bytes()),
    ));
    let subject = format!("{}-{}", manifest.name, manifest.version);
    let signed = tiffin_sign::sign_files(
        &subject,
        &mut files,
        SIGSTORE_FILE,
        key,
        options.certificates.as_ref(),
    )
    .map_err(|reason| Error::Sign {
        path: path.to_owned(),
        reason,
    })?;
    let bytes = signed.bytes;
    let (bundle_path, replaced) = match kind {
        PackageKind::Folder => {
            let target = path.join(SIGSTORE_FILE);
            let replaced = target.symlink_metadata().is_ok();
            // The temporary file is made beside the package folder, not in it: a crash before
            // the rename must not leave a file the manifest does not list inside the package.
            let beside = path
                .canonicalize()
                .map_err(Error::read(path))?
                .parent()
                .map_or_else(|| path.to_owned(), Path::to_owned);
            write_atomically(&beside, &target, &bytes)?;
            (target, replaced)
        }
        PackageKind::Archive => {
            let mtime = layout::epoch_seconds(&manifest.created);
            (path.to_owned(), rewrite_archive(path, &bytes, mtime)?)
        }
    };
    Ok(Signed {
        path: path.to_owned(),
        kind,
        name: manifest.name.clone(),
        version: manifest.version.to_string(),
        bundle: bundle_path,
        replaced,
        files: files.len(),
        subject_digest: format!("sha256:{}", signed.subject_digest),
        key_hint: signed.key_hint,
        certificate: options
            .certificates
            .as_ref()
            .map(|c| c.subject().to_owned()),
    })
}

/// The manifest digest of a report, which holds it as `sha256:<hex>`.
fn report_digest(report: &Report) -> Digest {
    crate::layout::parse_digest(&report.digest).expect("verify reports the digest as sha256:<hex>")
}

/// Writes `bytes` to `target` in `dir` through a temporary file renamed over it.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tiffin-sign-")
        .tempfile_in(dir)
        .map_err(Error::write(dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(Error::write(tmp.path()))?;
    layout::set_mode(tmp.path(), 0o644)?;
    crate::crash::point("renaming the signature into place");
    tmp.persist(target).map_err(|e| Error::Write {
        path: target.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Copies the archive at `path` into a temporary file beside it with the bundle as an entry in
/// its sorted place (after `tiffin.json`, which stays first), dropping an older bundle, then
/// renames the copy over the archive. Returns whether an older bundle was dropped.
fn rewrite_archive(path: &Path, bundle: &[u8], mtime: u64) -> Result<bool> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".tiffin-sign-")
        .suffix(".tiffin")
        .tempfile_in(dir)
        .map_err(Error::write(dir))?;
    let file = File::open(path).map_err(Error::read(path))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
    let mut replaced = false;
    let mut written = false;
    let write_err = |e| Error::Write {
        path: tmp.path().to_owned(),
        source: e,
    };
    let append_bundle = |builder: &mut tar::Builder<_>| {
        layout::append_entry(
            builder,
            SIGSTORE_FILE,
            bundle.len() as u64,
            mtime,
            &mut &bundle[..],
        )
        .map_err(write_err)
    };
    let mut count = layout::EntryCount::new(path);
    for (index, entry) in archive.entries().map_err(Error::read(path))?.enumerate() {
        count.add()?;
        let mut entry = entry.map_err(Error::read(path))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entry.header().entry_type().is_dir() {
            continue;
        }
        if name == SIGSTORE_FILE {
            replaced = true;
            continue;
        }
        if index > 0 && !written && name.as_str() > SIGSTORE_FILE {
            append_bundle(&mut builder)?;
            written = true;
        }
        let size = entry.size();
        let mut counted = Counted {
            inner: &mut entry,
            bytes: 0,
        };
        layout::append_entry(&mut builder, &name, size, mtime, &mut counted).map_err(write_err)?;
        if counted.bytes != size {
            // The archive verified a moment ago: it was changed while being signed.
            return Err(Error::Sign {
                path: path.to_owned(),
                reason: format!(
                    "its entry {name} holds {} of its {size} bytes: the archive changed while \
                     it was signed; sign it again",
                    counted.bytes
                ),
            });
        }
    }
    if !written {
        append_bundle(&mut builder)?;
    }
    let mut writer = builder.into_inner().map_err(write_err)?;
    writer.flush().map_err(write_err)?;
    drop(writer);
    tmp.as_file().sync_all().map_err(write_err)?;
    layout::set_mode(tmp.path(), 0o644)?;
    crate::crash::point("renaming the signed archive into place");
    tmp.persist(path).map_err(|e| Error::Write {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(replaced)
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// What `verify_signature` checks.
#[derive(Debug, Clone, Default)]
pub struct SignatureOptions {
    /// A bundle outside the package (a detached signature, such as one `model_signing sign`
    /// wrote beside the folder) instead of the package's own `tiffin.sigstore.json`.
    pub bundle: Option<PathBuf>,
    /// The verification of the package's files run once the signature checks out.
    pub verify: VerifyOptions,
}

/// The outcome of checking a package's signature and then its files.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    /// The package checked.
    pub path: PathBuf,
    /// The detached bundle checked, or `None` for the package's own `tiffin.sigstore.json`.
    pub detached: Option<PathBuf>,
    /// The hint of the key that checked the signature (hex sha256 of its public key PEM): the key
    /// given, or in certificate mode the signing certificate's key once its chain checked out.
    pub key_hint: String,
    /// Certificate mode: the signing certificate's subject, once its chain checked out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The hint the bundle names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_hint: Option<String>,
    /// True when the bundle's signature verified with the key given.
    pub signature_valid: bool,
    /// Number of files the signature covers.
    pub signed_files: usize,
    /// Signature problems first, then every difference between the package and the signed file
    /// list; the package's own problems are in `package`.
    pub problems: Vec<Problem>,
    /// The verification of the package, run once the signature verified.
    pub package: Option<Report>,
}

impl SignatureReport {
    /// True when the signature verified, the package matches the signed list, and the package
    /// itself verified.
    pub fn is_ok(&self) -> bool {
        self.signature_valid
            && self.problems.is_empty()
            && self.package.as_ref().is_some_and(Report::is_ok)
    }
}

/// Checks the signature of the package at `path` with `verifier` (the signer's public key, or root
/// certificates the bundle's certificate chain must lead to), then every file: the package is
/// verified (`options.verify`) and each file's sha256 is compared with the signed one. An `Err`
/// means the package or the detached bundle cannot be read; a package that is unsigned, signed by
/// another key, or changed since signing is an `Ok` report whose `is_ok` is false, each problem
/// naming the file.
pub fn verify_signature(
    path: &Path,
    verifier: &Verifier,
    options: &SignatureOptions,
    progress: &dyn Progress,
) -> Result<SignatureReport> {
    let kind = package_kind(path)?;
    let mut small = read_small_files(path, kind)?;
    let bundle_bytes = match &options.bundle {
        Some(detached) => Some(read_capped(detached)?),
        None => small.remove(SIGSTORE_FILE),
    };
    // With a detached bundle, a bundle inside the package is checked when the detached one covers
    // it (`model_signing sign` of a folder `tiffin sign` signed before), and never required: it
    // is a signature, not content.
    let inner_bundle = small
        .remove(SIGSTORE_FILE)
        .map(|bytes| tiffin_hash::sha256(&bytes));
    let mut report = SignatureReport {
        path: path.to_owned(),
        detached: options.bundle.clone(),
        key_hint: verifier.key_hint(),
        certificate: None,
        signer_hint: None,
        signature_valid: false,
        signed_files: 0,
        problems: Vec::new(),
        package: None,
    };
    let bundle_name = match &options.bundle {
        Some(detached) => detached.display().to_string(),
        None => SIGSTORE_FILE.to_owned(),
    };
    let fail = |report: &mut SignatureReport, message: String| {
        report.problems.push(Problem {
            file: Some(bundle_name.clone()),
            kind: ProblemKind::Signature,
            message,
        });
    };
    let Some(bundle_bytes) = bundle_bytes else {
        fail(
            &mut report,
            format!(
                "is missing: the package is not signed; sign it with `tiffin sign {} --key \
                 PRIVATE.pem`, or give a detached bundle with --signature FILE",
                path.display()
            ),
        );
        return Ok(report);
    };
    let check = tiffin_sign::check_bundle(&bundle_bytes, verifier);
    report.key_hint = check.key_hint;
    report.certificate = check.certificate;
    report.signer_hint = check.signer_hint;
    report.signature_valid = check.signature_valid;
    let signed = match check.outcome {
        Ok(signed) => signed,
        Err(message) => {
            fail(&mut report, message);
            return Ok(report);
        }
    };
    let ignored = signed.clone();
    let signed = signed.files;
    report.signed_files = signed.len();

    let package = verify(path, &options.verify, progress)?;
    let mut actual = package_digests(&package, small.get(CHECKSUM_FILE));
    if let Some(digest) = inner_bundle {
        actual.insert(SIGSTORE_FILE.to_owned(), Some(digest));
    }
    let signed: BTreeMap<String, Digest> = signed.into_iter().collect();
    for (name, signed_digest) in &signed {
        match actual.get(name) {
            None => report.problems.push(Problem {
                file: Some(name.clone()),
                kind: ProblemKind::Missing,
                message: "is covered by the signature but not in the package: the signature is \
                          over another file list"
                    .to_owned(),
            }),
            Some(Some(found)) if found != signed_digest => report.problems.push(Problem {
                file: Some(name.clone()),
                kind: ProblemKind::Changed,
                message: format!(
                    "differs from the signed file (sha256 {found}, signed {signed_digest}): \
                     changed after signing"
                ),
            }),
            // Same digest; or a file outside the manifest, which verify reports itself.
            Some(_) => {}
        }
    }
    for name in actual.keys() {
        if !signed.contains_key(name) && !ignored.ignores(name) && name != SIGSTORE_FILE {
            report.problems.push(Problem {
                file: Some(name.clone()),
                kind: ProblemKind::Unsigned,
                message: "is in the package but not covered by the signature: it was added after \
                          signing (sign the package again if it belongs)"
                    .to_owned(),
            });
        }
    }
    report.package = Some(package);
    Ok(report)
}

/// The files the package holds (the bundle excepted) and the sha256 known for each: the
/// manifest's for listed files (which `verify` checked against the files), the computed one for
/// `tiffin.json` and `checksum.txt`, none for files outside the manifest.
fn package_digests(
    package: &Report,
    checksums: Option<&Vec<u8>>,
) -> BTreeMap<String, Option<Digest>> {
    let mut out = BTreeMap::new();
    let missing: Vec<&str> = package
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Missing)
        .filter_map(|p| p.file.as_deref())
        .collect();
    if let Some(manifest) = &package.manifest {
        for f in &manifest.files {
            if !missing.contains(&f.path.as_str()) {
                out.insert(f.path.clone(), Digest::from_hex(&f.sha256).ok());
            }
        }
    }
    out.insert(MANIFEST_FILE.to_owned(), Some(report_digest(package)));
    if let Some(bytes) = checksums {
        out.insert(CHECKSUM_FILE.to_owned(), Some(tiffin_hash::sha256(bytes)));
    }
    for p in &package.problems {
        if let (ProblemKind::Extra, Some(file)) = (p.kind, &p.file) {
            out.insert(file.clone(), None);
        }
    }
    out
}

/// Who a package's own bundle says signed it, read without checking anything: for display
/// beside a package, never as a verdict. [`verify_signature`] is the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureClaim {
    /// The key hint the bundle names (hex sha256 of the signer's public key PEM), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hint: Option<String>,
    /// Certificate mode: the subject of the signing certificate the bundle carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// What the package's own `tiffin.sigstore.json` claims about its signer, or `None` when the
/// package holds no bundle. A bundle that cannot be decoded is an [`Error::Invalid`] naming it.
pub fn signature_claim(path: &Path) -> Result<Option<SignatureClaim>> {
    let kind = package_kind(path)?;
    let Some(bytes) = read_small_files(path, kind)?.remove(SIGSTORE_FILE) else {
        return Ok(None);
    };
    let claim = tiffin_sign::claim(&bytes).map_err(|message| Error::Invalid {
        path: path.to_owned(),
        problems: vec![Problem {
            file: Some(SIGSTORE_FILE.to_owned()),
            kind: ProblemKind::Signature,
            message,
        }],
    })?;
    Ok(Some(SignatureClaim {
        key_hint: claim.key_hint,
        certificate: claim.certificate,
    }))
}

/// Reads `tiffin.sigstore.json` and `checksum.txt` of a package, whichever it holds, each capped
/// at the manifest size limit. An archive is walked by seeking past the other entries' data.
fn read_small_files(path: &Path, kind: PackageKind) -> Result<BTreeMap<&'static str, Vec<u8>>> {
    let mut out = BTreeMap::new();
    match kind {
        PackageKind::Folder => {
            for name in [SIGSTORE_FILE, CHECKSUM_FILE] {
                let file = path.join(name);
                if file.symlink_metadata().is_ok_and(|m| m.is_file()) {
                    out.insert(name, read_capped(&file)?);
                }
            }
        }
        PackageKind::Archive => {
            let file = File::open(path).map_err(Error::read(path))?;
            let mut archive = tar::Archive::new(file);
            let mut count = layout::EntryCount::new(path);
            for entry in archive.entries_with_seek().map_err(Error::read(path))? {
                count.add()?;
                // A damaged archive is verify's to report, entry by entry.
                let Ok(entry) = entry else { break };
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(name) = [SIGSTORE_FILE, CHECKSUM_FILE]
                    .into_iter()
                    .find(|n| *n == name)
                else {
                    continue;
                };
                if entry.header().entry_type() != tar::EntryType::Regular || out.contains_key(name)
                {
                    continue;
                }
                let mut bytes = Vec::new();
                entry
                    .take(MAX_MANIFEST_SIZE)
                    .read_to_end(&mut bytes)
                    .map_err(Error::read(path))?;
                out.insert(name, bytes);
            }
        }
    }
    Ok(out)
}

/// Reads a small file (a bundle, a checksum list), refusing one over the manifest size limit:
/// on its size before reading, and again while reading, should it grow in between.
fn read_capped(path: &Path) -> Result<Vec<u8>> {
    layout::read_file_capped(
        path,
        "give the bundle `tiffin sign` or `model_signing sign` wrote",
    )
}
