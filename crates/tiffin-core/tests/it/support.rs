//! Helpers shared by the integration tests: fixture paths, packing into temp folders, raw tar.

use std::path::{Path, PathBuf};

use tiffin_core::hash::NoProgress;
use tiffin_core::{PackOptions, Packed, Report, VerifyOptions};

/// The repository's `fixtures/` folder.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Every fixture folder that holds a `tiffin.toml`, by name.
pub(crate) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("tiffin.toml").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 5,
        "expected the committed fixtures, found {names:?}"
    );
    names
}

/// Packs a fixture straight from `fixtures/` into a fresh temp folder.
pub(crate) fn pack_fixture(name: &str) -> (tempfile::TempDir, Packed) {
    let out = tempfile::tempdir().unwrap();
    let packed = pack_into(&fixtures().join(name), out.path());
    (out, packed)
}

pub(crate) fn pack_into(source: &Path, out: &Path) -> Packed {
    let options = PackOptions {
        source: source.to_owned(),
        out: Some(out.to_owned()),
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    tiffin_core::pack(&options, &NoProgress)
        .unwrap_or_else(|e| panic!("packing {}: {e}", source.display()))
}

pub(crate) fn verify(path: &Path) -> Report {
    let options = VerifyOptions {
        algorithms: tiffin_core::hash::Algorithms::BOTH,
        run_model: true,
        ..VerifyOptions::default()
    };
    tiffin_core::verify(path, &options, &NoProgress).unwrap()
}

/// The problems of a report as `file: message` lines, for readable assertions.
pub(crate) fn problems(report: &Report) -> Vec<String> {
    report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.file.as_deref().unwrap_or("-"), p.message))
        .collect()
}

/// Copies a folder tree (package folders are flat or shallow).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// One raw tar entry, written byte by byte so that tests can make entries the `tar` crate's
/// builder refuses to write (`..` paths, absolute paths, lying sizes).
pub(crate) fn raw_entry(name: &str, kind: tar::EntryType, data: &[u8], declared: u64) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    if kind == tar::EntryType::Symlink || kind == tar::EntryType::Link {
        old.linkname[..6].copy_from_slice(b"/etc/x");
    }
    header.set_size(declared);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// The entries of an archive as (path, bytes), in order.
pub(crate) fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), data)
        })
        .collect()
}

/// Writes an archive from raw entries and the end-of-archive marker.
pub(crate) fn write_raw_archive(path: &Path, raw_entries: &[Vec<u8>]) {
    let mut bytes: Vec<u8> = raw_entries.concat();
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(path, bytes).unwrap();
}

/// An error with all its causes, as `tiffin` prints it (`a: b: c`).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Re-seals a package folder after its files were edited: recomputes every listed file's size
/// and digests, rewrites `tiffin.json` and `checksum.txt`. This is what a hostile packer can do;
/// only what verify checks beyond digests (content, the model, the examples) can catch it.
pub(crate) fn reseal(folder: &Path) {
    use tiffin_core::hash::{Algorithms, hash_file};
    let bytes = std::fs::read(folder.join("tiffin.json")).unwrap();
    let mut manifest = tiffin_core::manifest::Manifest::from_json_slice(&bytes).unwrap();
    for f in &mut manifest.files {
        let d = hash_file(&folder.join(&f.path), Algorithms::BOTH, &NoProgress).unwrap();
        f.size = d.size;
        f.sha256 = d.sha256.unwrap().to_hex();
        f.blake3 = d.blake3.unwrap().to_hex();
    }
    let json = manifest.to_canonical_json();
    std::fs::write(folder.join("tiffin.json"), &json).unwrap();
    let checksums =
        tiffin_core::layout::checksums(&manifest, &tiffin_core::layout::package_digest(&json));
    std::fs::write(folder.join("checksum.txt"), checksums).unwrap();
}
