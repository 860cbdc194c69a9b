//! The ONNX Runtime library that `--runtime ort` loads in tests and benchmarks: the shared
//! library of the pinned PyPI wheel (xtask/requirements-onnxruntime.txt), in a virtualenv of the
//! target folder made once.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{interop, process};

/// The environment variable tiffin (and the `ort` tests) read the library's path from.
pub(crate) const VARIABLE: &str = "TIFFIN_ORT_LIB";

/// The cargo arguments that build the workspace with ONNX Runtime support, as CI tests it.
pub(crate) const FEATURES: [&str; 2] = ["--features", "tiffin-cli/ort"];

/// The path of `libonnxruntime.so.<version>`, installing the wheel first when needed.
pub(crate) fn library() -> Result<PathBuf> {
    let python = interop::python_locked("onnxruntime-venv", "xtask/requirements-onnxruntime.txt")?;
    // Found without importing the package: its Python side needs numpy, which is not installed.
    let output = Command::new(&python)
        .args([
            "-c",
            "import importlib.util; print(importlib.util.find_spec('onnxruntime').submodule_search_locations[0])",
        ])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "the onnxruntime wheel is not where pip put it: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let capi = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("capi");
    let entries =
        std::fs::read_dir(&capi).with_context(|| format!("cannot list {}", capi.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        // The wheel ships `libonnxruntime.so.<version>` alone, with no unversioned link.
        if name.to_string_lossy().starts_with("libonnxruntime.so.") {
            let path = entry.path();
            eprintln!("    ONNX Runtime library: {}", path.display());
            return Ok(path);
        }
    }
    bail!(
        "{} holds no libonnxruntime.so.<version>; did the onnxruntime wheel change its layout?",
        capi.display()
    )
}

/// `cargo test --workspace` with ONNX Runtime support, the library's path in [`VARIABLE`].
pub(crate) fn workspace_tests() -> Result<()> {
    let library = library()?;
    let mut command = process::cargo();
    command
        .args(["test", "--workspace", "--locked"])
        .args(FEATURES)
        .env(VARIABLE, &library)
        .env_remove("TIFFIN_UPDATE_SCHEMA");
    if std::env::var_os(process::COLOR_VAR).is_none() {
        command.env(process::COLOR_VAR, "always");
    }
    process::announce(&process::shown(&command));
    process::run(&mut command)
}
