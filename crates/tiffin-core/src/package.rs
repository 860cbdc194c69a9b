//! Opening a package, folder or archive, far enough to read its manifest; and `inspect`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tiffin_manifest::Manifest;

use crate::layout::{MANIFEST_FILE, MAX_MANIFEST_SIZE};
use crate::{Error, Result};

/// The two shapes a package takes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A `NAME/VERSION/` folder holding `tiffin.json` and the files.
    Folder,
    /// A `NAME-VERSION.tiffin` tar archive whose first entry is `tiffin.json`.
    Archive,
}

impl std::fmt::Display for PackageKind {
    /// `folder` or `archive`, as the JSON reports name the kind.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PackageKind::Folder => "folder",
            PackageKind::Archive => "archive",
        })
    }
}

/// Tells whether `path` is a package folder or an archive, without reading it.
pub fn package_kind(path: &Path) -> Result<PackageKind> {
    let meta = path.metadata().map_err(Error::read(path))?;
    if meta.is_dir() {
        if path.join(MANIFEST_FILE).symlink_metadata().is_err() {
            return Err(Error::NotAPackage {
                path: path.to_owned(),
                reason: format!(
                    "the folder has no {MANIFEST_FILE}; give the NAME/VERSION folder that `tiffin pack` wrote, \
                     or run `tiffin pack` in an authoring folder"
                ),
            });
        }
        Ok(PackageKind::Folder)
    } else {
        Ok(PackageKind::Archive)
    }
}

/// Reads the bytes of `tiffin.json`, refusing one larger than [`MAX_MANIFEST_SIZE`] before
/// reading it.
pub fn read_manifest_bytes(path: &Path, kind: PackageKind) -> Result<Vec<u8>> {
    match kind {
        PackageKind::Folder => {
            let manifest = path.join(MANIFEST_FILE);
            let meta = manifest
                .symlink_metadata()
                .map_err(Error::read(&manifest))?;
            if !meta.is_file() {
                return Err(not_package(
                    path,
                    format!("{MANIFEST_FILE} is not a regular file"),
                ));
            }
            read_capped(
                File::open(&manifest).map_err(Error::read(&manifest))?,
                meta.len(),
                &manifest,
            )
        }
        PackageKind::Archive => {
            let file = File::open(path).map_err(Error::read(path))?;
            let mut archive = tar::Archive::new(BufReader::new(file));
            let mut entries = archive.entries().map_err(Error::read(path))?;
            first_entry_manifest(path, &mut entries)
        }
    }
}

/// Reads the first entry of an archive, which must be a regular `tiffin.json` of sane size.
pub(crate) fn first_entry_manifest<R: Read>(
    path: &Path,
    entries: &mut tar::Entries<'_, R>,
) -> Result<Vec<u8>> {
    let not_archive = |why: String| {
        not_package(
            path,
            format!("{why}; a tiffin archive is a tar whose first entry is {MANIFEST_FILE}"),
        )
    };
    let entry = match entries.next() {
        None => return Err(not_archive("it is empty".into())),
        Some(Err(e)) => return Err(not_archive(format!("it is not a readable tar ({e})"))),
        Some(Ok(entry)) => entry,
    };
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    if name != MANIFEST_FILE || entry.header().entry_type() != tar::EntryType::Regular {
        return Err(not_archive(format!("its first entry is `{name}`")));
    }
    let size = entry
        .header()
        .size()
        .map_err(|e| not_archive(format!("bad header ({e})")))?;
    read_capped(entry, size, Path::new(MANIFEST_FILE))
}

/// Reads one file of a package (folder or archive) by its path in the package, e.g. the model
/// card to show it. Call it on a verified package, for a file its manifest lists.
pub fn read_file(path: &Path, file: &str) -> Result<Vec<u8>> {
    let kind = package_kind(path)?;
    read_files(path, kind, |p| p == file)?
        .remove(file)
        .ok_or_else(|| not_package(path, format!("it holds no file `{file}`")))
}

/// Reads the files of a package whose paths `wanted` accepts, into memory, by package path. Only
/// regular files listed in the manifest should be asked for; call this on verified packages.
pub fn read_files(
    path: &Path,
    kind: PackageKind,
    wanted: impl Fn(&str) -> bool,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    match kind {
        PackageKind::Folder => {
            for walked in crate::layout::walk(path) {
                let (rel, entry) = walked?;
                if entry.file_type().is_file() && wanted(&rel) {
                    out.insert(
                        rel,
                        std::fs::read(entry.path()).map_err(Error::read(entry.path()))?,
                    );
                }
            }
        }
        PackageKind::Archive => {
            let file = File::open(path).map_err(Error::read(path))?;
            let archive_len = file.metadata().map_err(Error::read(path))?.len();
            let mut archive = tar::Archive::new(BufReader::new(file));
            // With seeks, the members not wanted are passed over rather than read: loading a
            // model beside 1 GiB of other files read that gigabyte again.
            let mut count = crate::layout::EntryCount::new(path);
            for entry in archive.entries_with_seek().map_err(Error::read(path))? {
                count.add()?;
                let mut entry = entry.map_err(Error::read(path))?;
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                if entry.header().entry_type() == tar::EntryType::Regular && wanted(&name) {
                    // The declared size only as a hint, capped by the archive's own length:
                    // an unverified archive's header could claim any size, and reading stops
                    // at the data it holds. A hint capped lower made a large model's buffer
                    // grow by doubling, and the reader zeroes the spare room it reads into, so
                    // a 1 GiB model held 1.5 GiB.
                    let hint = entry.size().min(archive_len);
                    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
                    entry.read_to_end(&mut bytes).map_err(Error::read(path))?;
                    out.insert(name, bytes);
                }
            }
        }
    }
    Ok(out)
}

fn read_capped(reader: impl Read, declared: u64, what: &Path) -> Result<Vec<u8>> {
    if declared > MAX_MANIFEST_SIZE {
        return Err(Error::TooLarge {
            path: what.to_owned(),
            found: format!("declares {declared} bytes"),
            bound: "MAX_MANIFEST_SIZE",
            limit: MAX_MANIFEST_SIZE,
            fix: "a manifest lists files and their digests; keep large data in files it lists",
        });
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    reader
        .take(MAX_MANIFEST_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::read(what))?;
    Ok(bytes)
}

fn not_package(path: &Path, reason: String) -> Error {
    Error::NotAPackage {
        path: path.to_owned(),
        reason,
    }
}

/// What `inspect` shows: the manifest, the package digest and the sizes.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The path inspected.
    pub path: PathBuf,
    /// Folder or archive.
    pub kind: PackageKind,
    /// The package digest, `sha256:<hex>` of `tiffin.json`.
    pub digest: String,
    /// Bytes of all files listed in the manifest.
    pub files_size: u64,
    /// The manifest as packed.
    pub manifest: Manifest,
}

/// Parses the manifest bytes of the package at `package`, naming its `tiffin.json` in the error.
pub fn parse_manifest(bytes: &[u8], package: &Path) -> Result<Manifest> {
    Manifest::from_json_slice(bytes).map_err(|source| Error::Manifest {
        path: package.join(MANIFEST_FILE),
        source,
    })
}

/// Reads a package's manifest and digest without checking the files: fast, and meant for people.
/// Use `verify` to check the content.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let kind = package_kind(path)?;
    let bytes = read_manifest_bytes(path, kind)?;
    let manifest = parse_manifest(&bytes, path)?;
    Ok(Inspection {
        path: path.to_owned(),
        kind,
        digest: format!("sha256:{}", crate::layout::package_digest(&bytes)),
        files_size: manifest.files.iter().map(|f| f.size).sum(),
        manifest,
    })
}
