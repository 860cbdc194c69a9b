//! Helpers the integration tests of tiffin's crates share: the repository's fixtures, packed
//! into temporary folders, verified, copied. (tiffin-core's own tests keep a copy of their own:
//! a dev-dependency on this crate would build a second tiffin-core into them.)

#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use tiffin_core::hash::NoProgress;
use tiffin_core::{PackOptions, Packed, Report, VerifyOptions};

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Packs a fixture straight from `fixtures/` into a fresh temp folder.
pub fn pack_fixture(name: &str) -> (tempfile::TempDir, Packed) {
    let out = tempfile::tempdir().unwrap();
    let packed = pack_into(&fixtures().join(name), out.path());
    (out, packed)
}

/// Packs the authoring folder `source` into `out`, panicking with the reason when it fails.
pub fn pack_into(source: &Path, out: &Path) -> Packed {
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

/// Verifies a package completely: both digests, the model loaded, the examples rerun.
pub fn verify(path: &Path) -> Report {
    let options = VerifyOptions {
        algorithms: tiffin_core::hash::Algorithms::BOTH,
        run_model: true,
        ..VerifyOptions::default()
    };
    tiffin_core::verify(path, &options, &NoProgress).unwrap()
}

/// The problems of a report as `file: message` lines, for readable assertions.
pub fn problems(report: &Report) -> Vec<String> {
    report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.file.as_deref().unwrap_or("-"), p.message))
        .collect()
}

/// Copies a folder tree (package folders are flat or shallow).
pub fn copy_tree(from: &Path, to: &Path) {
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
