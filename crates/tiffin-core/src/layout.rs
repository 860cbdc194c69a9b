//! The package layout: the fixed file names, where packages go, and the files derived from the manifest.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tiffin_hash::{ChecksumLine, Digest};
use tiffin_manifest::{Manifest, Signature};

use crate::error::{Error, Result};

/// The packed manifest, first entry of every archive.
pub const MANIFEST_FILE: &str = "tiffin.json";
/// The sha256 list `sha256sum -c` reads; derived from the manifest.
pub const CHECKSUM_FILE: &str = "checksum.txt";
/// The signature alone, for tools that want only the contract.
pub const SIGNATURE_FILE: &str = "signature.json";
/// The model card, the user's own or one made from the metadata.
pub const MODEL_CARD_FILE: &str = "model-card.md";
/// The cryptographic signature of the package: a Sigstore bundle in the OpenSSF `model_signing`
/// format, written by `tiffin sign`. It is the one file a package may hold beyond the manifest's
/// list, since it signs every other file and so cannot be listed in the manifest it signs.
pub const SIGSTORE_FILE: &str = "tiffin.sigstore.json";
/// The authoring file `tiffin pack` reads.
pub const AUTHORING_FILE: &str = "tiffin.toml";
/// The extension of the single-file archive.
pub const ARCHIVE_EXTENSION: &str = "tiffin";
/// A manifest larger than this is refused before it is read, so a hostile archive cannot make a
/// reader allocate without bound. Real manifests are kilobytes; golden examples live in files.
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// The most entries a package folder or archive may hold, folders included: every file the
/// manifest may list ([`tiffin_manifest::MAX_FILES`]), a folder for each, and tiffin's own files
/// (manifest, checksums, signature, card, bundle). Walks stop past it, before their bookkeeping
/// (one problem per unlisted entry, say) grows without bound on an archive of millions of empty
/// entries.
pub const MAX_ENTRIES: usize = 2 * tiffin_manifest::MAX_FILES + 8;
/// The archive's files carry the package's `created` time as their mtime, and these fixed
/// permissions, so that the same inputs always give the same bytes.
pub(crate) const ENTRY_MODE: u32 = 0o644;

/// Where the package folder of `name` `version` goes below `out`: `out/NAME/VERSION/`.
pub fn folder_path(out: &Path, name: &str, version: &semver::Version) -> PathBuf {
    out.join(name).join(version.to_string())
}

/// Where the archive of `name` `version` goes below `out`: `out/NAME-VERSION.tiffin`.
pub fn archive_path(out: &Path, name: &str, version: &semver::Version) -> PathBuf {
    out.join(format!("{name}-{version}.{ARCHIVE_EXTENSION}"))
}

/// The package digest: sha256 of the exact bytes of `tiffin.json`. Since the manifest lists every
/// other file's digests, this one value identifies the whole package.
pub fn package_digest(manifest_bytes: &[u8]) -> Digest {
    tiffin_hash::sha256(manifest_bytes)
}

/// The bytes of `signature.json`.
pub fn signature_json(signature: &Signature) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(signature).expect("a signature always serializes");
    out.push(b'\n');
    out
}

/// The bytes of `checksum.txt`: every file of the package and `tiffin.json`, sorted by path.
pub fn checksums(manifest: &Manifest, manifest_sha256: &Digest) -> String {
    let mut lines = checksum_lines(manifest, manifest_sha256);
    lines.sort_by(|a, b| a.path.cmp(&b.path));
    tiffin_hash::render_checksums(&lines)
        .expect("validated package paths hold no newline or backslash")
}

/// The sha256 of every file of the package and of `tiffin.json`, in manifest order: what
/// `checksum.txt` lists.
pub(crate) fn checksum_lines(manifest: &Manifest, manifest_sha256: &Digest) -> Vec<ChecksumLine> {
    let mut lines: Vec<ChecksumLine> = manifest
        .files
        .iter()
        .map(|f| ChecksumLine {
            sha256: Digest::from_hex(&f.sha256).expect("a validated manifest holds hex digests"),
            path: f.path.clone(),
        })
        .collect();
    lines.push(ChecksumLine {
        sha256: *manifest_sha256,
        path: MANIFEST_FILE.to_owned(),
    });
    lines
}

/// The seconds since the epoch of an RFC 3339 time, for archive mtimes; times before 1970 give 0.
pub(crate) fn epoch_seconds(rfc3339: &str) -> u64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second().max(0) as u64)
        .unwrap_or(0)
}

/// Every entry below a package folder (directories too, not the folder itself), sorted by name,
/// each with its path inside the package, `/`-separated. Verify, read, store and push all walk a
/// folder through this one function, so they see the same entries in the same order. Past
/// [`MAX_ENTRIES`] entries the walk ends with [`Error::TooLarge`].
pub fn walk(folder: &Path) -> impl Iterator<Item = Result<(String, walkdir::DirEntry)>> + '_ {
    let mut count = EntryCount::new(folder);
    walkdir::WalkDir::new(folder)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(move |entry| {
            count.add()?;
            let entry = entry.map_err(|e| Error::Read {
                path: folder.to_owned(),
                source: e.into(),
            })?;
            let rel = entry
                .path()
                .strip_prefix(folder)
                .expect("walkdir stays below its root")
                .to_string_lossy()
                .replace('\\', "/");
            Ok((rel, entry))
        })
        // The error past the bound is the walk's last item.
        .scan(false, |ended, item| {
            if *ended {
                return None;
            }
            *ended = matches!(item, Err(Error::TooLarge { .. }));
            Some(item)
        })
}

/// Counts the entries of a folder or archive as a walk meets them, refusing the one past
/// [`MAX_ENTRIES`]. Every walk over a package's entries counts them with one.
#[derive(Debug)]
pub struct EntryCount<'a> {
    path: &'a Path,
    seen: usize,
}

impl<'a> EntryCount<'a> {
    /// A count of the entries of the package at `path`, at zero.
    pub fn new(path: &'a Path) -> EntryCount<'a> {
        EntryCount { path, seen: 0 }
    }

    /// Counts one more entry: [`Error::TooLarge`] when it is past [`MAX_ENTRIES`].
    pub fn add(&mut self) -> Result<()> {
        self.seen += 1;
        if self.seen > MAX_ENTRIES {
            return Err(Error::TooLarge {
                path: self.path.to_owned(),
                found: format!("holds more than {MAX_ENTRIES} entries"),
                bound: "MAX_ENTRIES",
                limit: MAX_ENTRIES as u64,
                fix: "a package lists at most tiffin_manifest::MAX_FILES files; put many small \
                      files into a few larger ones",
            });
        }
        Ok(())
    }
}

/// Reads a `tiffin.toml`, refusing one larger than [`MAX_MANIFEST_SIZE`] before reading it: the
/// authoring file has the manifest's bound, and is far smaller than the manifest it becomes.
pub fn read_authoring(path: &Path) -> Result<String> {
    let bytes = read_file_capped(
        path,
        "tiffin.toml describes the model; keep data in the files it names",
    )?;
    String::from_utf8(bytes)
        .map_err(|e| Error::read(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Reads a small file (`tiffin.toml`, a signature bundle), refusing one larger than
/// [`MAX_MANIFEST_SIZE`] by its size before reading, and again while reading, since the file
/// may grow after its size was taken. `fix` says what the file should be instead.
pub(crate) fn read_file_capped(path: &Path, fix: &'static str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(Error::read(path))?;
    let too_large = |size: u64| Error::TooLarge {
        path: path.to_owned(),
        found: format!("is {size} bytes"),
        bound: "MAX_MANIFEST_SIZE",
        limit: MAX_MANIFEST_SIZE,
        fix,
    };
    let declared = file.metadata().map_err(Error::read(path))?.len();
    if declared > MAX_MANIFEST_SIZE {
        return Err(too_large(declared));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::read(path))?;
    if bytes.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A digest written as `sha256:<hex>` (a package digest, a store tag), or `None`.
pub fn parse_digest(text: &str) -> Option<Digest> {
    text.strip_prefix("sha256:")
        .and_then(|hex| Digest::from_hex(hex).ok())
}

/// Appends one archive entry with the fixed header every tiffin archive uses: ustar, mode 0644,
/// owner 0:0, no user or group names, the package's creation time as mtime.
pub(crate) fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mtime: u64,
    data: &mut dyn Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(ENTRY_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, data)
}

/// Gives a staged file or folder the permissions of an ordinary one; staging paths are created
/// private (0600 and 0700) by `tempfile`.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(Error::write(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Swaps two paths in one step (`renameat2` with `RENAME_EXCHANGE`), so that each name always
/// names a whole folder. Returns false, having changed nothing, where the system or the file
/// system cannot: the caller then renames in two steps.
#[cfg(target_os = "linux")]
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Swaps two paths in one step where the system can; this one cannot, so nothing changes.
#[cfg(not(target_os = "linux"))]
pub fn exchange(_a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_count_takes_max_entries_and_refuses_the_next_naming_the_bound() {
        // The count every folder walk and archive walk keeps; the archive test in
        // tests/it/hostile.rs shows it at work on a real archive.
        let mut count = EntryCount::new(Path::new("pkg"));
        for _ in 0..MAX_ENTRIES {
            count.add().unwrap();
        }
        let err = count.add().unwrap_err().to_string();
        assert_eq!(
            err,
            "pkg: holds more than 200008 entries, more than the bound MAX_ENTRIES (200008) \
             allows: a package lists at most tiffin_manifest::MAX_FILES files; put many small \
             files into a few larger ones"
        );
    }
}
