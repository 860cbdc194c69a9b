//! `cargo xtask python`: the Python module (`python/tiffin`) against real scikit-learn models.
//!
//! It builds `tiffin`, makes a pinned virtualenv from `python/requirements-test.txt` once
//! (scikit-learn, skl2onnx, onnx, pandas, pytest) and runs `python/tests` with `TIFFIN_BIN`
//! naming the built binary and the module taken from the source tree, so a change on either side
//! is tested without a wheel. Each test exports a model, packs it with the original model's
//! outputs as parity evidence, verifies and predicts through the package; the `PARITY` lines give
//! the differences each model kind's export shows.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::interop;
use crate::process;

const REQUIREMENTS: &str = "python/requirements-test.txt";

pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    let root = process::workspace_root();
    let interop::Tools { tiffin, python } = interop::tools("python-venv", REQUIREMENTS)?;
    let mut pytest = Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"])
        .arg(root.join("python/tests"))
        .env("TIFFIN_BIN", &tiffin)
        .env("PYTHONPATH", root.join("python"))
        // Bytecode would be written into the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    process::announce(&process::shown(&pytest));
    process::run(&mut pytest).context("the Python tests of the tiffin module failed")?;
    eprintln!(
        "    python passed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}
