//! `cargo xtask onnx-backend`: the ONNX backend node tests (1765 cases of the onnx 1.22.0 wheel)
//! through tiffin-runtime with each engine, against Python's onnxruntime on the same cases.
//!
//! Runs the example `onnx_backend` of tiffin-runtime (from the workspace's test build, which has
//! ONNX Runtime support) with tract and with ONNX Runtime, and
//! `crates/tiffin-runtime/examples/onnx_backend_ort.py` with Python's onnxruntime, under the
//! same rules (cases whose tensors JSON can carry; rtol 1e-3, atol 1e-7). Fails when a case
//! Python's onnxruntime passes fails through tiffin with ONNX Runtime.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{interop, onnxruntime, process, test_build};

pub(crate) fn run() -> Result<()> {
    let python = interop::python("onnx-backend-venv", "xtask/requirements-onnx-backend.txt")?;
    let output = Command::new(&python)
        .args([
            "-c",
            "import os, onnx.backend.test as t; print(os.path.join(os.path.dirname(t.__file__), 'data', 'node'))",
        ])
        .output()
        .context("cannot ask Python where the onnx test data is")?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let node = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let example = example("onnx_backend")?;
    let library = onnxruntime::library()?;
    let scratch = process::target_dir()?.join("onnx-backend");
    std::fs::create_dir_all(&scratch)?;

    let run = |extra: &[&std::ffi::OsStr], name: &str| -> Result<BTreeSet<String>> {
        let passed = scratch.join(format!("{name}-passed.txt"));
        let failures = scratch.join(format!("{name}-failures.txt"));
        let mut command = Command::new(&example);
        command
            .arg(&node)
            .args(extra)
            .arg("--passed")
            .arg(&passed)
            .arg("--failures")
            .arg(&failures);
        process::announce(&process::shown(&command));
        process::run(&mut command)?;
        eprintln!("    failures listed in {}", failures.display());
        read_names(&passed)
    };
    let _tract = run(&[], "tract")?;
    let ort = run(&["--ort-lib".as_ref(), library.as_os_str()], "ort")?;
    let reference = scratch.join("python-onnxruntime-passed.txt");
    let mut python_run = Command::new(&python);
    python_run
        .arg(process::workspace_root().join("crates/tiffin-runtime/examples/onnx_backend_ort.py"))
        .arg(&node)
        .arg(&reference);
    process::announce(&process::shown(&python_run));
    process::run(&mut python_run)?;
    let python_passed = read_names(&reference)?;
    let missing: Vec<&String> = python_passed.difference(&ort).collect();
    if !missing.is_empty() {
        bail!(
            "{} case(s) Python's onnxruntime passes fail through tiffin with ONNX Runtime: {}",
            missing.len(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "every one of the {} cases Python's onnxruntime passes passes through tiffin with ONNX Runtime ({} in all)",
        python_passed.len(),
        ort.len()
    );
    Ok(())
}

/// The names listed one per line in `path`.
fn read_names(path: &Path) -> Result<BTreeSet<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// The example `name` of tiffin-runtime, from the workspace's test build.
fn example(name: &str) -> Result<PathBuf> {
    test_build::executables()?
        .into_iter()
        .find(|e| !e.test && e.name == name && e.path.to_string_lossy().contains("examples"))
        .map(|e| e.path)
        .with_context(|| format!("the test build reported no example `{name}` of tiffin-runtime"))
}
