//! End-to-end tests of the `tiffin` binary: help text, output and errors pinned as snapshots.

mod commands;
mod doctor;
mod help;
mod run;
mod serve;
mod sign;
mod store;

use std::path::Path;
use std::process::Command;

/// A fixed creation time, so that packed digests (and so snapshots) are the same on every machine.
const SOURCE_DATE_EPOCH: &str = "1700000000";

/// Packs the breast-cancer fixture into a temp folder, as the README does.
pub(crate) fn packed() -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let source = fixtures().join("breast_cancer");
    let out = temp.path().to_str().unwrap();
    let output = tiffin(
        &["pack", source.to_str().unwrap(), "--out", out],
        temp.path(),
        Some(temp.path()),
    );
    assert!(output.starts_with("exit_code: 0"), "{output}");
    temp
}

/// Runs `tiffin` with `args` in `cwd` and renders exit status, stdout and stderr, with the temp
/// folder replaced by `[TEMP]` so snapshots do not depend on where the test ran.
pub(crate) fn tiffin(args: &[&str], cwd: &Path, temp: Option<&Path>) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tiffin"))
        .args(args)
        .current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .env("COLUMNS", "100")
        // The runtime comes from the arguments alone (CI sets TIFFIN_ORT_LIB for the tests of
        // `--runtime ort`, which pass it as --ort-lib).
        .env_remove("TIFFIN_ORT_LIB")
        .env_remove("TIFFIN_RUNTIME")
        // The local store: inside the test's temp folder, so tests never touch the user's, and
        // a fixed missing folder for tests without one.
        .env(
            "TIFFIN_HOME",
            temp.map_or_else(
                || Path::new("/nonexistent/tiffin-home").to_path_buf(),
                |t| t.join("store"),
            ),
        )
        .output()
        .unwrap();
    let mut text = format!(
        "exit_code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(temp) = temp {
        // Both spellings: as given, and canonicalized (macOS puts temp under /private).
        for spelling in [temp.to_path_buf(), temp.canonicalize().unwrap()] {
            text = text.replace(&spelling.display().to_string(), "[TEMP]");
        }
    }
    text
}

/// The repository's fixtures folder.
pub(crate) fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .canonicalize()
        .unwrap()
}
