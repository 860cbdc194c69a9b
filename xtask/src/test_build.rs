//! The workspace's test build, shared: its test executables and its `tiffin` binary.
//!
//! `cargo test --workspace` unifies dependency features across every crate and their
//! dev-dependencies, so a `cargo test -p tiffin-runtime` or a `cargo build -p tiffin-cli` later
//! resolves other features (serde_json's, for one), gets other hashes for everything above them,
//! tract included, and compiles and stores a second and third copy of the workspace. Steps that
//! need a test executable or a debug `tiffin` take them from this one build instead; in
//! `cargo xtask ci` it is the build the `test` step already made, so asking again costs nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail, ensure};

use crate::process;

/// One executable the test build wrote.
#[derive(Debug)]
pub(crate) struct Executable {
    /// The manifest of the package it belongs to.
    pub(crate) manifest: PathBuf,
    /// The target's name (`it`, `tiffin`, `tiffin_runtime`...).
    pub(crate) name: String,
    /// Whether it is a test harness (a unit or integration test), not a binary.
    pub(crate) test: bool,
    /// Its path.
    pub(crate) path: PathBuf,
}

/// Builds the workspace's tests without running them (`cargo test --workspace --no-run`, with
/// the features of the `test` step) and returns every executable cargo reports.
pub(crate) fn executables() -> Result<Vec<Executable>> {
    let mut build = process::cargo();
    build
        .args([
            "test",
            "--workspace",
            "--locked",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(crate::onnxruntime::FEATURES)
        .stdout(Stdio::piped());
    process::announce(&process::shown(&build));
    let output = build
        .spawn()
        .and_then(|child| child.wait_with_output())
        .with_context(|| format!("cannot run `{}`", process::shown(&build)))?;
    ensure!(
        output.status.success(),
        "`{}` failed ({})",
        process::shown(&build),
        output.status
    );
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// The executables among cargo's JSON messages (one per line; other lines are other messages).
fn parse(messages: &str) -> Result<Vec<Executable>> {
    let mut found = Vec::new();
    for line in messages.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(path) = message["executable"].as_str() else {
            continue;
        };
        let manifest = message["manifest_path"]
            .as_str()
            .context("a compiler-artifact message of cargo has no manifest_path")?;
        let name = message["target"]["name"]
            .as_str()
            .context("a compiler-artifact message of cargo has no target name")?;
        found.push(Executable {
            manifest: PathBuf::from(manifest),
            name: name.to_owned(),
            test: message["profile"]["test"] == true,
            path: PathBuf::from(path),
        });
    }
    Ok(found)
}

/// The test executables of the workspace crate in `crates/<package>`.
pub(crate) fn tests_of(package: &str) -> Result<Vec<Executable>> {
    let manifest = crate_dir(package).join("Cargo.toml");
    let mut tests: Vec<_> = executables()?
        .into_iter()
        .filter(|e| e.test && e.manifest == manifest)
        .collect();
    // Cargo reports them as they finish; a fixed order keeps CI logs comparable.
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    ensure!(
        !tests.is_empty(),
        "the test build reported no test executable of {}",
        manifest.display()
    );
    Ok(tests)
}

/// The debug `tiffin` binary of the test build.
pub(crate) fn tiffin() -> Result<PathBuf> {
    let manifest = crate_dir("tiffin-cli").join("Cargo.toml");
    match executables()?
        .into_iter()
        .find(|e| !e.test && e.name == "tiffin" && e.manifest == manifest)
    {
        Some(binary) => Ok(binary.path),
        None => bail!(
            "the test build reported no `tiffin` binary of {} (is the binary of tiffin-cli \
             still called `tiffin`?)",
            manifest.display()
        ),
    }
}

/// The example `name` of the workspace crate in `crates/<package>`, as the test build compiled
/// it (`cargo test` builds every example, with the test build's features).
pub(crate) fn example(package: &str, name: &str) -> Result<PathBuf> {
    let manifest = crate_dir(package).join("Cargo.toml");
    match executables()?
        .into_iter()
        .find(|e| !e.test && e.name == name && e.manifest == manifest)
    {
        Some(example) => Ok(example.path),
        None => bail!(
            "the test build reported no example `{name}` of {}",
            manifest.display()
        ),
    }
}

/// The folder of a workspace crate.
fn crate_dir(package: &str) -> PathBuf {
    process::workspace_root().join("crates").join(package)
}

/// Runs one test executable the way `cargo test` does: from its package's folder, with
/// `CARGO_MANIFEST_DIR` set, plus the given variables.
pub(crate) fn run(test: &Executable, env: &[(&str, &str)]) -> Result<()> {
    let dir = test.manifest.parent().unwrap_or(Path::new("."));
    let mut command = std::process::Command::new(&test.path);
    command
        .current_dir(dir)
        .env("CARGO_MANIFEST_DIR", dir)
        .envs(env.iter().copied());
    process::announce(&process::shown(&command));
    process::run(&mut command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executables_and_binaries_among_other_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/a/Cargo.toml","target":{"name":"it"},"profile":{"test":true},"executable":"/w/target/debug/deps/it-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/a/Cargo.toml","target":{"name":"a"},"profile":{"test":false},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/b/Cargo.toml","target":{"name":"tiffin"},"profile":{"test":false},"executable":"/w/target/debug/tiffin"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\nnot json\n",
        );
        let found = parse(messages).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found[0].test);
        assert_eq!(found[0].name, "it");
        assert_eq!(found[0].path, Path::new("/w/target/debug/deps/it-1"));
        assert!(!found[1].test);
        assert_eq!(found[1].manifest, Path::new("/w/crates/b/Cargo.toml"));
    }
}
