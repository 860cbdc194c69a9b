//! Helpers shared by the integration tests: fixture paths, packing into temp folders.

use std::path::{Path, PathBuf};

use tiffin_core::hash::NoProgress;
use tiffin_core::{PackOptions, Packed};

/// The repository's `fixtures/` folder.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
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
