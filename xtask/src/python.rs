//! `cargo xtask python`: the Python module (`python/tiffin`) against real models.
//!
//! Three ways to run `python/tests`:
//! - by default, against the module in the source tree and the debug `tiffin` (`TIFFIN_BIN`),
//!   in a pinned virtualenv made once from `python/requirements-test.txt`: a change on either
//!   side is tested without a wheel;
//! - `--wheel` (the CI step), against the wheel `cargo xtask wheel` builds, installed with its
//!   declared dependencies into a virtualenv made fresh for the run, from a folder outside the
//!   source tree, so the tests see only what `pip install tiffin` gives a user;
//! - `--torch`, the PyTorch tests (marked `torch`) in a virtualenv of
//!   `python/requirements-torch.txt`. PyPI's torch brings its CUDA libraries, about 3 GB, which
//!   is more than CI should download on every fresh machine: they run before a change to the
//!   torch export is merged, not in `cargo xtask ci`.
//!
//! Each test exports a model, packs it with the original model's outputs as parity evidence,
//! verifies and predicts through the package; the `PARITY` lines give the differences each
//! model kind's export shows.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::{dist, interop, process, wheel};

const REQUIREMENTS: &str = "python/requirements-test.txt";
const TORCH_REQUIREMENTS: &str = "python/requirements-torch.txt";

#[derive(Debug, clap::Args)]
pub(crate) struct PythonArgs {
    /// Test the wheel (`cargo xtask wheel`, from the static release binary) installed into a
    /// fresh virtualenv, instead of the source tree's module with the debug binary.
    #[arg(long, conflicts_with = "torch")]
    pub(crate) wheel: bool,
    /// Run the PyTorch tests instead, in their own virtualenv (PyPI's torch, about 3 GB).
    #[arg(long)]
    pub(crate) torch: bool,
}

pub(crate) fn run(args: &PythonArgs) -> Result<()> {
    let start = Instant::now();
    if args.wheel {
        test_wheel()?;
    } else {
        let (venv, requirements, markers) = if args.torch {
            ("python-torch-venv", TORCH_REQUIREMENTS, "torch")
        } else {
            ("python-venv", REQUIREMENTS, "not torch")
        };
        let interop::Tools { tiffin, python } = interop::tools(venv, requirements)?;
        let root = process::workspace_root();
        let mut pytest = pytest(&python, markers);
        pytest
            .env("TIFFIN_BIN", &tiffin)
            .env("PYTHONPATH", root.join("python"));
        process::announce(&process::shown(&pytest));
        process::run(&mut pytest).context("the Python tests of the tiffin module failed")?;
    }
    eprintln!(
        "    python passed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// pytest on `python/tests` with the given marker expression.
fn pytest(python: &Path, markers: &str) -> Command {
    let mut pytest = Command::new(python);
    pytest
        .args(["-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"])
        .args(["-m", markers])
        .arg(process::workspace_root().join("python").join("tests"))
        // Bytecode would be written into the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    pytest
}

/// Builds the wheel, installs it into a new virtualenv with the test requirements and runs the
/// tests there, then checks the module and the command came from the wheel.
fn test_wheel() -> Result<()> {
    let wheel = wheel::build()?;
    let venv = process::target_dir()?.join("python-wheel-venv");
    let python = interop::fresh_venv(&interop::system_python()?, &venv)?;
    let mut pip = interop::pip_install(&python);
    pip.arg("-r")
        .arg(process::workspace_root().join(REQUIREMENTS))
        // Installed with its declared dependencies, which the pins above must satisfy: a wheel
        // whose metadata asked for something else would fail here, not on a user's machine.
        .arg(&wheel);
    process::announce(&process::shown(&pip));
    process::run(&mut pip).context("cannot install the wheel and the test requirements")?;

    // From an empty folder, with nothing pointing into the source tree: `import tiffin` can only
    // find the installed module, and the module only the installed command.
    let outside = process::fresh_dir("tiffin-wheel-test")?;
    let mut pytest = pytest(&python, "not torch");
    pytest
        .arg("--import-mode=importlib")
        .current_dir(&outside)
        .env_remove("TIFFIN_BIN")
        .env_remove("PYTHONPATH");
    process::announce(&process::shown(&pytest));
    let result =
        process::run(&mut pytest).context("the Python tests failed on the installed wheel");
    let _ = std::fs::remove_dir_all(&outside);
    result?;

    let mut check = Command::new(&python);
    check
        .args([
            "-c",
            "import sys, sysconfig, subprocess, tiffin; \
             from pathlib import Path; \
             site = Path(sysconfig.get_paths()['purelib']); \
             scripts = Path(sysconfig.get_paths()['scripts']); \
             module = Path(tiffin.__file__).resolve(); \
             command = tiffin.find_tiffin().resolve(); \
             assert module.is_relative_to(site.resolve()), f'module from {module}'; \
             assert command.is_relative_to(scripts.resolve()), f'command from {command}'; \
             print(subprocess.run([str(command), '-V'], capture_output=True, \
             text=True, check=True).stdout.strip())",
        ])
        .current_dir(&venv)
        .env_remove("TIFFIN_BIN")
        .env_remove("PYTHONPATH");
    let output = check
        .output()
        .context("cannot run the wheel's installation check")?;
    ensure!(
        output.status.success(),
        "the installed wheel is not what it should be: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let expected = dist::workspace_version(process::workspace_root())?;
    ensure!(
        version.ends_with(&expected),
        "the wheel's tiffin says {version:?}, not version {expected}"
    );
    eprintln!(
        "    the module and `{version}` came from the wheel {}",
        wheel.display()
    );
    Ok(())
}
