//! `cargo xtask bench runtime`: tract through tiffin against onnxruntime on the fixture models.
//!
//! The tiffin side is the criterion bench `model` of tiffin-runtime (load + optimize, and runs
//! at batch 1 and 64 for each fixture). The onnxruntime side is measured on the same inputs by
//! `crates/tiffin-runtime/benches/ort_models.py`, when a Python with onnxruntime is found; the
//! fixtures' own virtualenv (`fixtures/.venv`, see fixtures/README.md) is tried first.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use clap::Args;

use crate::process;

#[derive(Debug, Default, Args)]
pub(crate) struct RuntimeArgs {
    /// Only benchmarks whose name contains this (a criterion filter, e.g. `forest300`).
    #[arg(long)]
    filter: Option<String>,
}

pub(crate) fn run(args: &RuntimeArgs) -> Result<()> {
    let mut criterion = process::cargo();
    criterion.args([
        "bench",
        "-p",
        "tiffin-runtime",
        "--bench",
        "model",
        "--locked",
        "--",
    ]);
    if let Some(filter) = &args.filter {
        criterion.arg(filter);
    }
    process::announce(&process::shown(&criterion));
    process::run(&mut criterion)?;

    let root = process::workspace_root();
    let script = root.join("crates/tiffin-runtime/benches/ort_models.py");
    match python_with_onnxruntime() {
        Some(python) => {
            let mut ort = Command::new(&python);
            ort.arg(&script).arg(root.join("fixtures"));
            if let Some(filter) = &args.filter {
                ort.args(["--filter", filter]);
            }
            process::announce(&process::shown(&ort));
            process::run(&mut ort)
        }
        None => {
            eprintln!(
                "onnxruntime figures skipped: no Python with onnxruntime found (make fixtures/.venv as \
                 fixtures/README.md says, or `pip install onnxruntime numpy`)"
            );
            Ok(())
        }
    }
}

/// The first Python that imports onnxruntime: the fixtures' virtualenv, then `python3`.
fn python_with_onnxruntime() -> Option<PathBuf> {
    let venv = process::workspace_root().join("fixtures/.venv/bin/python");
    [venv, PathBuf::from("python3")].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import onnxruntime, numpy"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}
