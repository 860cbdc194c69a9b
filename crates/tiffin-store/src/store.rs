//! The local content-addressed store: blobs by sha256, packages by digest, tags `name:version`.
//!
//! Layout under the store's root (`$TIFFIN_HOME`, else the user's data folder + `/tiffin`):
//!
//! ```text
//! blobs/sha256/<hex>          every file of every package, once, read-only
//! packages/<hex>/             a package folder (hex of its digest), files hard-linked to blobs
//! tags/<name>/<version>       `sha256:<hex>` of the package the tag names
//! tmp/                        staging: blobs and packages are built here, then renamed
//! ```
//!
//! Every write is a rename of something complete: a blob is written to `tmp/`, fsynced, checked
//! against its digest and renamed into `blobs/` (an existing blob is kept); a package is built in
//! `tmp/` from links to its blobs, verified, and renamed into `packages/` (if another process got
//! there first, its copy stays and ours is dropped); a tag is written to `tmp/` and renamed over
//! the old one. So an interrupted add or pull leaves only blobs, which are valid by construction
//! and let a rerun skip what already arrived, and `gc` removes the ones no package uses.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tiffin_hash::{Algorithms, Digest, Hasher, NoProgress};
use tiffin_manifest::is_package_name;

use crate::{Error, Result};
use tiffin_core::layout::{self, MANIFEST_FILE, parse_digest};
use tiffin_core::{PackageKind, VerifyOptions, package_kind, parse_manifest, read_manifest_bytes};

/// The variable that moves the store.
pub const HOME_VAR: &str = "TIFFIN_HOME";

/// Bytes copied per read while a blob is written.
const CHUNK: usize = 1 << 20;

/// Staging entries older than this are litter of a killed process, which `gc` removes. Younger
/// ones may belong to an add or pull running right now.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// The store's default root: `$TIFFIN_HOME`, else `tiffin` in the user's data folder.
pub fn default_root() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os(HOME_VAR).filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    dirs::data_dir()
        .map(|d| d.join("tiffin"))
        .ok_or_else(|| Error::Store {
            reason: format!(
                "this system has no user data folder for the local store: set {HOME_VAR} to a \
                 folder, e.g. `export {HOME_VAR}=$HOME/.tiffin`"
            ),
        })
}

/// Finds a package for a command-line argument: an existing path wins; otherwise `name:version`,
/// `name` (its newest version), `sha256:<hex>` or a hex prefix of a digest, in the default store.
pub fn resolve(arg: &Path) -> Result<PathBuf> {
    if arg.exists() {
        return Ok(arg.to_owned());
    }
    let text = arg.to_string_lossy();
    let root = default_root()?;
    if !root.join("packages").is_dir() {
        return Err(Error::NotInStore {
            given: text.into_owned(),
            root,
            known: Vec::new(),
        });
    }
    Store::open(&root)?.resolve(&text)
}

/// A package in the store, as `list` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// The tag `name:version`, or `None` for a package no tag names.
    pub tag: Option<String>,
    /// The package name from its manifest.
    pub name: String,
    /// The package version from its manifest.
    pub version: String,
    /// `sha256:<hex>` of `tiffin.json`.
    pub digest: String,
    /// Bytes of every file of the package.
    pub size: u64,
    /// The package folder.
    pub path: PathBuf,
}

/// What `add` (or a pull) put into the store.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    /// The package, under the tag `name:version` of its manifest.
    pub entry: Entry,
    /// False when the store already held this exact package.
    pub new: bool,
    /// The digest the tag named before, when it named another package.
    pub replaced: Option<String>,
}

/// What `rm` removed.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// The tags removed.
    pub tags: Vec<String>,
    /// The package removed, when no tag named it any more.
    pub package: Option<String>,
}

/// What `gc` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Collected {
    /// Blobs no package uses, removed.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Staging entries left by killed processes, removed.
    pub staging: usize,
    /// Tags whose package is gone (a removal stopped halfway), removed.
    pub tags: usize,
}

/// A local store rooted at a folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, making its folders if needed.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_owned(),
        };
        for dir in [
            store.root.join("blobs").join("sha256"),
            store.root.join("packages"),
            store.root.join("tags"),
            store.root.join("tmp"),
        ] {
            fs::create_dir_all(&dir).map_err(Error::write(&dir))?;
        }
        Ok(store)
    }

    /// Opens the store at [`default_root`].
    pub fn open_default() -> Result<Store> {
        Store::open(&default_root()?)
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob of `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.to_hex())
    }

    /// True when the store holds the blob of `digest`.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The package folder of `digest` (whether or not it is there).
    pub fn package_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("packages").join(digest.to_hex())
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Writes a blob from `reader`, hashing as it streams, and returns its digest. With
    /// `expected`, the data must have exactly that digest and size (more bytes are not read) or
    /// nothing is stored and the error names both digests; `what` says where the data came from.
    pub fn write_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<(&Digest, u64)>,
        what: &str,
    ) -> Result<Digest> {
        let tmp = self.tmp();
        let mut file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmp)
            .map_err(Error::write(&tmp))?;
        let mut hasher = Hasher::new(Algorithms::SHA256);
        // A source that sends more than announced is cut off one byte past the size, so a
        // hostile registry cannot fill the disk; the size check below then refuses it.
        let limit = expected.map_or(u64::MAX, |(_, size)| size.saturating_add(1));
        let mut limited = reader.take(limit);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Read {
                        path: PathBuf::from(what),
                        source,
                    });
                }
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(Error::write(file.path()))?;
        }
        let digests = hasher.finalize();
        let digest = digests.sha256.expect("sha256 was asked for");
        if let Some((want, size)) = expected
            && (digest != *want || digests.size != size)
        {
            return Err(Error::BlobDigest {
                expected: format!("sha256:{want}"),
                actual: format!("sha256:{digest}"),
                expected_size: size,
                actual_size: digests.size,
                source_name: what.to_owned(),
            });
        }
        file.as_file()
            .sync_all()
            .map_err(Error::write(file.path()))?;
        read_only(file.path())?;
        let dest = self.blob_path(&digest);
        if dest.is_file() {
            // The same content is there already (content addressing): ours is dropped.
            return Ok(digest);
        }
        tiffin_core::crash::point("renaming a blob into place");
        if let Err(err) = file.persist_noclobber(&dest) {
            // Another process stored the same blob between our check and our rename.
            if !dest.is_file() {
                return Err(Error::Write {
                    path: dest,
                    source: err.error,
                });
            }
        }
        sync_dir(dest.parent().expect("a blob has a folder"));
        Ok(digest)
    }

    /// Puts a package folder or archive into the store: its files become blobs (a file already
    /// stored is not stored again), the package is built from them and verified with `options`,
    /// then tagged `name:version`.
    pub fn add(&self, package: &Path, options: &VerifyOptions) -> Result<Stored> {
        self.add_checked(package, options, None)
    }

    /// As [`Store::add`], and with a verifier, the package must carry a signature it accepts
    /// over exactly its files (see [`Store::commit_checked`]).
    pub fn add_checked(
        &self,
        package: &Path,
        options: &VerifyOptions,
        signer: Option<&tiffin_core::sign::Verifier>,
    ) -> Result<Stored> {
        let files = match package_kind(package)? {
            PackageKind::Folder => self.blobs_of_folder(package)?,
            PackageKind::Archive => self.blobs_of_archive(package)?,
        };
        self.commit_checked(&files, options, signer)
    }

    fn blobs_of_folder(&self, folder: &Path) -> Result<Vec<(String, Digest)>> {
        let mut files = Vec::new();
        for walked in tiffin_core::layout::walk(folder) {
            let (rel, entry) = walked?;
            if entry.file_type().is_dir() {
                continue;
            }
            if !entry.file_type().is_file() {
                return Err(Error::NotAPackage {
                    path: folder.to_owned(),
                    reason: format!(
                        "`{rel}` is not a regular file; packages hold regular files only \
                         (repack it with `tiffin pack`)"
                    ),
                });
            }
            let mut file = File::open(entry.path()).map_err(Error::read(entry.path()))?;
            let digest = self.write_blob(&mut file, None, &entry.path().to_string_lossy())?;
            files.push((rel, digest));
        }
        Ok(files)
    }

    fn blobs_of_archive(&self, archive: &Path) -> Result<Vec<(String, Digest)>> {
        let file = File::open(archive).map_err(Error::read(archive))?;
        let mut tar = tar::Archive::new(std::io::BufReader::new(file));
        let mut files = Vec::new();
        let mut count = tiffin_core::layout::EntryCount::new(archive);
        for entry in tar.entries().map_err(Error::read(archive))? {
            count.add()?;
            let mut entry = entry.map_err(Error::read(archive))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            match entry.header().entry_type() {
                tar::EntryType::Regular => {}
                tar::EntryType::Directory => continue,
                other => {
                    return Err(Error::NotAPackage {
                        path: archive.to_owned(),
                        reason: format!(
                            "entry `{name}` is a {other:?}; packages hold regular files only \
                             (repack it with `tiffin pack`)"
                        ),
                    });
                }
            }
            let what = format!("{}:{name}", archive.display());
            let digest = self.write_blob(&mut entry, None, &what)?;
            files.push((name, digest));
        }
        Ok(files)
    }

    /// Builds a package from blobs already in the store (`files` maps package paths to blob
    /// digests), verifies it with `options`, and moves it into place and tags it. Nothing but
    /// the blobs is left behind when anything fails: the package and its tag appear only once
    /// the whole package verified.
    pub fn commit(&self, files: &[(String, Digest)], options: &VerifyOptions) -> Result<Stored> {
        self.commit_checked(files, options, None)
    }

    /// As [`Store::commit`], and with a verifier, the package's `tiffin.sigstore.json` must
    /// hold a signature it accepts over exactly the package's files, checked before anything
    /// enters the store; an unsigned package is refused.
    pub fn commit_checked(
        &self,
        files: &[(String, Digest)],
        options: &VerifyOptions,
        signer: Option<&tiffin_core::sign::Verifier>,
    ) -> Result<Stored> {
        let tmp = self.tmp();
        let staging = tempfile::Builder::new()
            .prefix("pkg-")
            .tempdir_in(&tmp)
            .map_err(Error::write(&tmp))?;
        let mut seen = BTreeSet::new();
        for (path, digest) in files {
            check_package_path(path)?;
            if !seen.insert(path.as_str()) {
                return Err(Error::BadInput {
                    path: PathBuf::from(path),
                    reason: "appears twice in the package; a package holds each path once".into(),
                });
            }
            let dest = staging.path().join(path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(Error::write(parent))?;
            }
            link_or_copy(&self.blob_path(digest), &dest)?;
        }
        match signer {
            None => {
                let report = tiffin_core::verify(staging.path(), options, &NoProgress)?;
                if !report.is_ok() {
                    return Err(Error::Invalid {
                        path: PathBuf::from(report.name.as_deref().unwrap_or("the package")),
                        problems: report.problems,
                    });
                }
            }
            Some(signer) => {
                // Said here rather than by the signature check, which would name the staging
                // folder, a path the user never sees.
                if !files.iter().any(|(p, _)| p == layout::SIGSTORE_FILE) {
                    return Err(Error::Invalid {
                        path: PathBuf::from("the package"),
                        problems: vec![tiffin_core::Problem {
                            file: Some(layout::SIGSTORE_FILE.to_owned()),
                            kind: tiffin_core::ProblemKind::Signature,
                            message: "is missing: the package is not signed; ask its publisher \
                                      to `tiffin sign` it and push it again, or leave out \
                                      --key/--root to take it unsigned"
                                .into(),
                        }],
                    });
                }
                let check = tiffin_core::sign::SignatureOptions {
                    bundle: None,
                    verify: options.clone(),
                };
                let report = tiffin_core::sign::verify_signature(
                    staging.path(),
                    signer,
                    &check,
                    &NoProgress,
                )?;
                if !report.is_ok() {
                    let name = report.package.as_ref().and_then(|p| p.name.clone());
                    let mut problems = report.problems;
                    problems.extend(report.package.into_iter().flat_map(|p| p.problems));
                    return Err(Error::Invalid {
                        path: PathBuf::from(name.as_deref().unwrap_or("the package")),
                        problems,
                    });
                }
            }
        }
        let bytes = read_manifest_bytes(staging.path(), PackageKind::Folder)?;
        let manifest = parse_manifest(&bytes, staging.path())?;
        // Every blob is named by the sha256 it was hashed to when written, so the manifest's
        // sha256 of each file is checked here against that name, without hashing the package
        // again; verify checked the content against the manifest's blake3.
        let by_path: BTreeMap<&str, &Digest> = files.iter().map(|(p, d)| (p.as_str(), d)).collect();
        let problems: Vec<tiffin_core::Problem> = manifest
            .files
            .iter()
            .filter_map(|f| {
                let found = by_path.get(f.path.as_str())?;
                (found.to_hex() != f.sha256).then(|| tiffin_core::Problem {
                    file: Some(f.path.clone()),
                    kind: tiffin_core::ProblemKind::Changed,
                    message: tiffin_core::content_differs("sha256", found, &f.sha256),
                })
            })
            .collect();
        if !problems.is_empty() {
            return Err(Error::Invalid {
                path: PathBuf::from(format!("{}:{}", manifest.name, manifest.version)),
                problems,
            });
        }
        let digest = layout::package_digest(&bytes);
        let dest = self.package_path(&digest);
        let new = if dest.is_dir() {
            false
        } else {
            tiffin_core::crash::point("renaming the package into the store");
            match fs::rename(staging.path(), &dest) {
                Ok(()) => {
                    // The staging folder is gone; keep the guard from removing the new name.
                    let _ = staging.keep();
                    sync_dir(&self.root.join("packages"));
                    true
                }
                // Another process renamed the same package into place first: ours is dropped.
                Err(_) if dest.is_dir() => false,
                Err(source) => return Err(Error::Write { path: dest, source }),
            }
        };
        if !new {
            self.attach_signature(files, &dest)?;
        }
        let tag = format!("{}:{}", manifest.name, manifest.version);
        let replaced = self
            .read_tag(&manifest.name, &manifest.version.to_string())?
            .filter(|old| *old != digest)
            .map(|old| format!("sha256:{old}"));
        self.write_tag(&manifest.name, &manifest.version.to_string(), &digest)?;
        Ok(Stored {
            entry: self.entry(Some(tag), &digest)?,
            new,
            replaced,
        })
    }

    /// The package digest covers `tiffin.json`, not the signature beside it, so the same
    /// package may arrive unsigned first and signed later. A signature that arrives with a
    /// package the store holds already is put beside it (linked in under a temporary name, then
    /// renamed over any earlier one), so the store keeps the newest signature it was given.
    fn attach_signature(&self, files: &[(String, Digest)], package: &Path) -> Result<()> {
        let Some((_, digest)) = files.iter().find(|(p, _)| p == layout::SIGSTORE_FILE) else {
            return Ok(());
        };
        let target = package.join(layout::SIGSTORE_FILE);
        // Linked in the store's tmp folder, not in the package: a crash before the rename must
        // not leave a file the manifest does not list inside the package.
        let temporary = self.tmp().join(format!(
            "sig-{}-{}",
            layout::SIGSTORE_FILE,
            std::process::id()
        ));
        let _ = fs::remove_file(&temporary);
        link_or_copy(&self.blob_path(digest), &temporary)?;
        tiffin_core::crash::point("renaming a signature into a stored package");
        fs::rename(&temporary, &target).map_err(|source| Error::Write {
            path: target.clone(),
            source,
        })?;
        sync_dir(package);
        Ok(())
    }

    fn tag_path(&self, name: &str, version: &str) -> PathBuf {
        self.root.join("tags").join(name).join(version)
    }

    fn read_tag(&self, name: &str, version: &str) -> Result<Option<Digest>> {
        let path = self.tag_path(name, version);
        match fs::read_to_string(&path) {
            Ok(text) => parse_digest(text.trim())
                .map(Some)
                .ok_or_else(|| Error::Store {
                    reason: format!(
                        "the tag file {} does not hold `sha256:<hex>`: remove it with \
                         `tiffin rm {name}:{version}`, then add the package again",
                        path.display()
                    ),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    fn write_tag(&self, name: &str, version: &str, digest: &Digest) -> Result<()> {
        let path = self.tag_path(name, version);
        let dir = path.parent().expect("a tag has a folder");
        fs::create_dir_all(dir).map_err(Error::write(dir))?;
        let tmp = self.tmp();
        let mut file = tempfile::Builder::new()
            .prefix("tag-")
            .tempfile_in(&tmp)
            .map_err(Error::write(&tmp))?;
        writeln!(file, "sha256:{digest}").map_err(Error::write(file.path()))?;
        file.as_file()
            .sync_all()
            .map_err(Error::write(file.path()))?;
        tiffin_core::crash::point("renaming a tag into place");
        file.persist(&path).map_err(|e| Error::Write {
            path: path.clone(),
            source: e.error,
        })?;
        sync_dir(dir);
        Ok(())
    }

    /// Every tag as `(name, version, digest)`, sorted by name then version.
    fn tags(&self) -> Result<Vec<(String, String, Digest)>> {
        let mut out = Vec::new();
        let tags = self.root.join("tags");
        for name in read_dir_names(&tags)? {
            for version in read_dir_names(&tags.join(&name))? {
                if let Some(digest) = self.read_tag(&name, &version)? {
                    out.push((name.clone(), version, digest));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| version_order(&a.1, &b.1)));
        Ok(out)
    }

    /// The digests of every package folder in the store.
    fn packages(&self) -> Result<Vec<Digest>> {
        Ok(read_dir_names(&self.root.join("packages"))?
            .iter()
            .filter_map(|name| Digest::from_hex(name).ok())
            .collect())
    }

    fn entry(&self, tag: Option<String>, digest: &Digest) -> Result<Entry> {
        let path = self.package_path(digest);
        let bytes = read_manifest_bytes(&path, PackageKind::Folder)?;
        let manifest = parse_manifest(&bytes, &path)?;
        let mut size = 0;
        for walked in layout::walk(&path) {
            let (_, entry) = walked?;
            if entry.file_type().is_file() {
                size += entry
                    .metadata()
                    .map_err(|e| Error::Read {
                        path: entry.path().to_owned(),
                        source: e.into(),
                    })?
                    .len();
            }
        }
        Ok(Entry {
            tag,
            name: manifest.name,
            version: manifest.version.to_string(),
            digest: format!("sha256:{digest}"),
            size,
            path,
        })
    }

    /// Every package: one entry per tag, sorted by name and version, then the packages no tag
    /// names.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut tagged = BTreeSet::new();
        for (name, version, digest) in self.tags()? {
            if self.package_path(&digest).is_dir() {
                out.push(self.entry(Some(format!("{name}:{version}")), &digest)?);
                tagged.insert(digest);
            }
        }
        for digest in self.packages()? {
            if !tagged.contains(&digest) {
                out.push(self.entry(None, &digest)?);
            }
        }
        Ok(out)
    }

    /// The digest a query names: `name:version`, `name` (the newest version), `sha256:<hex>`,
    /// or a hex prefix of at least 7 digits.
    pub fn find(&self, query: &str) -> Result<Digest> {
        let not_found = || -> Result<Digest> {
            Err(Error::NotInStore {
                given: query.to_owned(),
                root: self.root.clone(),
                known: self
                    .tags()
                    .map(|tags| {
                        tags.into_iter()
                            .map(|(n, v, d)| format!("{n}:{v} (sha256:{})", &d.to_hex()[..12]))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        };
        let prefix = query
            .strip_prefix("sha256:")
            .or_else(|| (query.len() >= 7 && is_hex(query)).then_some(query));
        if let Some(prefix) = prefix {
            let matches: Vec<Digest> = self
                .packages()?
                .into_iter()
                .filter(|d| d.to_hex().starts_with(prefix))
                .collect();
            return match matches.as_slice() {
                [one] => Ok(*one),
                [] => not_found(),
                many => Err(Error::Store {
                    reason: format!(
                        "`{query}` is the start of {} package digests ({}): give more digits",
                        many.len(),
                        many.iter()
                            .map(|d| format!("sha256:{d}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            };
        }
        if let Some((name, version)) = query.split_once(':') {
            check_tag(name, version)?;
            return match self.read_tag(name, version)? {
                Some(d) if self.package_path(&d).is_dir() => Ok(d),
                _ => not_found(),
            };
        }
        if is_package_name(query) {
            let newest = self
                .tags()?
                .into_iter()
                .filter(|(n, _, d)| n == query && self.package_path(d).is_dir())
                .max_by(|a, b| version_order(&a.1, &b.1));
            if let Some((_, _, digest)) = newest {
                return Ok(digest);
            }
        }
        not_found()
    }

    /// The package folder a query names (see [`Store::find`]).
    pub fn resolve(&self, query: &str) -> Result<PathBuf> {
        Ok(self.package_path(&self.find(query)?))
    }

    /// Tags the package `source` names as `target` (`name:version`), replacing the tag if it
    /// named another package.
    pub fn tag(&self, source: &str, target: &str) -> Result<Entry> {
        let digest = self.find(source)?;
        let (name, version) = target.split_once(':').ok_or_else(|| Error::BadReference {
            given: target.to_owned(),
            reason: "a tag is `name:version`, e.g. `churn:1.0.0` or `churn:prod`".into(),
        })?;
        check_tag(name, version)?;
        self.write_tag(name, version, &digest)?;
        self.entry(Some(target.to_owned()), &digest)
    }

    /// Removes what `query` names: a tag `name:version` (and its package, once no other tag
    /// names it), or a package by digest (and every tag naming it). Blobs stay until `gc`.
    pub fn remove(&self, query: &str) -> Result<Removed> {
        let by_tag = !query.starts_with("sha256:") && query.contains(':');
        if let Some((name, version)) = query.split_once(':').filter(|_| by_tag) {
            check_tag(name, version)?;
            if let Some(d) = self.read_tag(name, version)?
                && !self.package_path(&d).is_dir()
            {
                // A removal stopped after its package went and before its tags did: this one
                // names nothing, and removing it finishes that removal.
                let path = self.tag_path(name, version);
                fs::remove_file(&path).map_err(Error::write(&path))?;
                let _ = fs::remove_dir(self.root.join("tags").join(name));
                return Ok(Removed {
                    tags: vec![query.to_owned()],
                    package: None,
                });
            }
        }
        let digest = self.find(query)?;
        let naming: Vec<(String, String)> = self
            .tags()?
            .into_iter()
            .filter(|(_, _, d)| *d == digest)
            .map(|(name, version, _)| (name, version))
            .collect();
        let goes = |name: &str, version: &str| !by_tag || format!("{name}:{version}") == query;
        let mut removed = Removed {
            tags: Vec::new(),
            package: None,
        };
        if naming.iter().all(|(n, v)| goes(n, v)) {
            // The package goes first, in one rename: from then on its tags name nothing, and
            // every reader (list, find, serve) already passes over a tag whose package is
            // gone. Removing the tags first would show an untagged package after a crash.
            let path = self.package_path(&digest);
            let trash = self
                .tmp()
                .join(format!("rm-{}-{}", digest.to_hex(), std::process::id()));
            tiffin_core::crash::point("moving the package out of the store");
            fs::rename(&path, &trash).map_err(Error::write(&path))?;
            sync_dir(&self.root.join("packages"));
            tiffin_core::crash::point("removing the package's files");
            fs::remove_dir_all(&trash).map_err(Error::write(&trash))?;
            removed.package = Some(format!("sha256:{digest}"));
        }
        for (name, version) in naming {
            if !goes(&name, &version) {
                continue;
            }
            let path = self.tag_path(&name, &version);
            tiffin_core::crash::point("removing a tag");
            fs::remove_file(&path).map_err(Error::write(&path))?;
            // An empty name folder goes too; one that still holds versions stays.
            let _ = fs::remove_dir(self.root.join("tags").join(&name));
            removed.tags.push(format!("{name}:{version}"));
        }
        Ok(removed)
    }

    /// Removes the blobs no package uses, and staging entries of processes killed over an hour
    /// ago. Run it when no add or pull is running: a pull's blobs are not yet used by a package.
    pub fn gc(&self) -> Result<Collected> {
        let mut collected = Collected::default();
        let used = self.used_blobs()?;
        let blobs = self.root.join("blobs").join("sha256");
        for name in read_dir_names(&blobs)? {
            let path = blobs.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(Error::read(&path))?;
            let in_use = match Digest::from_hex(&name) {
                Ok(d) => used.contains(&d) || linked_elsewhere(&meta),
                // Not a blob name: litter, never something a package links.
                Err(_) => false,
            };
            if !in_use {
                tiffin_core::crash::point("removing an unused blob");
                fs::remove_file(&path).map_err(Error::write(&path))?;
                collected.blobs += 1;
                collected.bytes += meta.len();
            }
        }
        // Tags whose package is gone (a removal that stopped halfway) name nothing: readers
        // pass over them, and they go here.
        for (name, version, digest) in self.tags()? {
            if !self.package_path(&digest).is_dir() {
                let path = self.tag_path(&name, &version);
                tiffin_core::crash::point("removing a tag that names nothing");
                fs::remove_file(&path).map_err(Error::write(&path))?;
                let _ = fs::remove_dir(self.root.join("tags").join(&name));
                collected.tags += 1;
            }
        }
        let tmp = self.tmp();
        let now = SystemTime::now();
        for name in read_dir_names(&tmp)? {
            let path = tmp.join(&name);
            let old = fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP);
            if old {
                let result = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                result.map_err(Error::write(&path))?;
                collected.staging += 1;
            }
        }
        Ok(collected)
    }

    /// The digests of every file of every package. On Unix a blob's link count already tells
    /// (see [`linked_elsewhere`]); this scan also covers packages whose files were copied
    /// because the file system refused hard links.
    fn used_blobs(&self) -> Result<BTreeSet<Digest>> {
        let mut used = BTreeSet::new();
        for digest in self.packages()? {
            let path = self.package_path(&digest);
            used.insert(digest);
            let bytes = read_manifest_bytes(&path, PackageKind::Folder)?;
            let manifest = parse_manifest(&bytes, &path)?;
            let listed: BTreeMap<&str, &str> = manifest
                .files
                .iter()
                .map(|f| (f.path.as_str(), f.sha256.as_str()))
                .collect();
            for walked in layout::walk(&path) {
                let (rel, entry) = walked?;
                if !entry.file_type().is_file() {
                    continue;
                }
                if rel == MANIFEST_FILE {
                    continue;
                }
                match listed
                    .get(rel.as_str())
                    .and_then(|h| Digest::from_hex(h).ok())
                {
                    Some(d) => {
                        used.insert(d);
                    }
                    None => {
                        // checksum.txt and files the manifest does not list: hashed (small).
                        let d =
                            tiffin_hash::hash_file(entry.path(), Algorithms::SHA256, &NoProgress)?;
                        used.extend(d.sha256);
                    }
                }
            }
        }
        Ok(used)
    }
}

/// Whether a blob is also linked from a package folder (or a staging package being built).
#[cfg(unix)]
fn linked_elsewhere(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() > 1
}

/// Without link counts, only the scan of the packages tells.
#[cfg(not(unix))]
fn linked_elsewhere(_meta: &fs::Metadata) -> bool {
    false
}

/// Refuses a package path that could leave the package folder or collide with another.
pub(crate) fn check_package_path(path: &str) -> Result<()> {
    let reserved = matches!(
        path,
        MANIFEST_FILE | layout::CHECKSUM_FILE | layout::SIGSTORE_FILE
    );
    if reserved {
        return Ok(());
    }
    tiffin_manifest::check_relative_path(path).map_err(|reason| Error::BadInput {
        // A path past the bound is quoted, cut short, by the reason; shown whole here it would
        // put up to a manifest's worth of bytes into one message.
        path: if path.len() > tiffin_manifest::MAX_PATH_LEN {
            PathBuf::from("(a path too long to show)")
        } else {
            PathBuf::from(path)
        },
        reason,
    })
}

/// Checks a tag's two halves: a package name, and a version such as `1.0.0` or `prod`.
fn check_tag(name: &str, version: &str) -> Result<()> {
    if !is_package_name(name) {
        return Err(Error::BadReference {
            given: format!("{name}:{version}"),
            reason: format!(
                "`{name}` is not a package name: use lowercase letters, digits, `.`, `_` or `-`"
            ),
        });
    }
    let ok = !version.is_empty()
        && version.len() <= 128
        && !version.starts_with('.')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if !ok {
        return Err(Error::BadReference {
            given: format!("{name}:{version}"),
            reason: format!(
                "`{version}` is not a version: use letters, digits, `.`, `_`, `-` or `+`, e.g. `1.0.0`"
            ),
        });
    }
    Ok(())
}

/// Semantic versions in their order, before any other tag; other tags by their text.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
        (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn is_hex(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The names in a folder, sorted; a missing folder has none.
fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::read(dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Hard-links a blob into a package folder, so identical files are stored once; copies it where
/// the file system has no hard links (the package is then whole on its own).
fn link_or_copy(blob: &Path, dest: &Path) -> Result<()> {
    if fs::hard_link(blob, dest).is_ok() {
        return Ok(());
    }
    if !blob.is_file() {
        return Err(Error::Store {
            reason: format!(
                "the blob {} vanished while a package was being built (did `tiffin gc` run at \
                 the same time?): run the command again",
                blob.display()
            ),
        });
    }
    fs::copy(blob, dest).map_err(Error::write(dest))?;
    Ok(())
}

/// Blobs are never changed in place: a package folder's files are the same inodes, and a write
/// through one of them would corrupt every package holding that content.
fn read_only(path: &Path) -> Result<()> {
    let mut perms = fs::metadata(path).map_err(Error::read(path))?.permissions();
    perms.set_readonly(true);
    fs::set_permissions(path, perms).map_err(Error::write(path))
}

/// Makes a rename in `dir` durable. Best effort: not every platform can open a folder to sync it.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
