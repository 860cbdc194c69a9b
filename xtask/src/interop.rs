//! `cargo xtask interop` (and the `interop-v2` step of `cargo xtask ci`): `tiffin serve` against
//! NVIDIA's Triton client, the KServe/Triton V2 client most tools use.
//!
//! It builds `tiffin`, packs three fixtures into a temporary folder, serves them on a free port
//! and runs `crates/tiffin-server/tests/interop/v2_client.py` in a virtualenv holding the pinned
//! `requirements.txt` beside it. The virtualenv (`interop-venv` in the target folder) is made once
//! and reused while a stamp of the requirements' sha256 and the Python version matches, so a warm
//! run costs the build and a second of checks. The Rust tests of tiffin-server check the wire
//! format as the spec says; this checks it as a real client reads it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::process;
use crate::served::Server;

/// How long the server may take to listen and then to load every package; a debug build loads
/// the three fixtures in well under a second, so reaching this means it is stuck.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The client script and its pinned environment, from the workspace root.
const SCRIPT: &str = "crates/tiffin-server/tests/interop/v2_client.py";
pub(crate) const REQUIREMENTS: &str = "crates/tiffin-server/tests/interop/requirements.txt";

/// The fixtures served: a string-label classifier, an integer-label one and an image model.
const FIXTURES: &[&str] = &["iris", "breast_cancer", "mnist_cnn"];

/// Runs the whole interop test, failing with what went wrong.
pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    let root = process::workspace_root();
    let Tools { tiffin, python } = tools("interop-venv", REQUIREMENTS)?;

    let packages = TempDir::new("tiffin-interop")?;
    process::announce(&format!(
        "tiffin -q pack fixtures/{{{}}} --out {}",
        FIXTURES.join(","),
        packages.path().display()
    ));
    for fixture in FIXTURES {
        let mut pack = Command::new(&tiffin);
        pack.arg("-q")
            .arg("pack")
            .arg(root.join("fixtures").join(fixture))
            .arg("--out")
            .arg(packages.path());
        run_quietly(&mut pack)?;
    }

    let mut serve = Command::new(&tiffin);
    serve
        .arg("serve")
        .arg(packages.path())
        .args(["--port", "0"])
        // The server's own log filter, set here so that a `TIFFIN_LOG=warn` in the caller's
        // environment cannot hide the line that tells the port.
        .env("TIFFIN_LOG", "info");
    process::announce(&process::shown(&serve));
    let mut server = Server::start(serve)?;
    let address = server.wait_until_ready(START_TIMEOUT)?;
    eprintln!("    serving on http://{address}");

    let mut client = Command::new(&python);
    client
        .arg(root.join(SCRIPT))
        .arg(&address)
        .arg(root.join("fixtures"));
    process::announce(&process::shown(&client));
    let outcome = process::run(&mut client);
    if outcome.is_err() {
        // The server's side of a failure (a 500's detail goes only to its log) is in its log.
        server.print_log();
    }
    outcome.context("the Triton client disagrees with tiffin serve (its FAIL lines say where)")?;
    drop(server);
    eprintln!(
        "    interop-v2 passed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// What an interop step runs: the debug `tiffin` and the Python of the step's virtualenv.
pub(crate) struct Tools {
    pub(crate) tiffin: PathBuf,
    pub(crate) python: PathBuf,
}

/// Checks for Python first (without it nothing else is worth building), builds `tiffin`, then
/// makes or reuses the virtualenv `venv` in the target folder holding `requirements` (a path from
/// the workspace root).
pub(crate) fn tools(venv: &str, requirements: &str) -> Result<Tools> {
    let system_python = system_python()?;
    let tiffin = build_tiffin()?;
    let python = venv_python(&system_python, venv, requirements)?;
    Ok(Tools { tiffin, python })
}

/// The Python of the virtualenv `venv` in the target folder holding `requirements` (a path from
/// the workspace root), made or reused.
pub(crate) fn python(venv: &str, requirements: &str) -> Result<PathBuf> {
    venv_python(&system_python()?, venv, requirements)
}

/// Like [`python`], for requirements that pin every package to install (pip runs with
/// `--no-deps`): for an SDK of which a small part is used and whose declared dependencies are
/// heavy.
pub(crate) fn python_locked(venv: &str, requirements: &str) -> Result<PathBuf> {
    virtualenv(
        &system_python()?,
        &process::target_dir()?.join(venv),
        &process::workspace_root().join(requirements),
        Deps::Listed,
    )
}

/// Which packages pip installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deps {
    /// The requirements and whatever they depend on.
    Resolved,
    /// The requirements alone (`--no-deps`).
    Listed,
}

fn venv_python(system_python: &Path, venv: &str, requirements: &str) -> Result<PathBuf> {
    virtualenv(
        system_python,
        &process::target_dir()?.join(venv),
        &process::workspace_root().join(requirements),
        Deps::Resolved,
    )
}

/// Builds the `tiffin` binary (debug, the one of the workspace's test build, see
/// [`test_build`](crate::test_build)) and returns its path.
pub(crate) fn build_tiffin() -> Result<PathBuf> {
    crate::test_build::tiffin()
}

/// The Python that makes the virtualenv: `python3`, or `python` on Windows where `python3` is
/// rarely installed. It must be Python 3, which CI provides; a missing one is an error, never a
/// skip, so that a CI image losing Python cannot turn the step silently green.
pub(crate) fn system_python() -> Result<PathBuf> {
    let name = if cfg!(windows) { "python" } else { "python3" };
    let output = Command::new(name).arg("--version").output();
    match output {
        Ok(output) if output.status.success() => {
            let version = String::from_utf8_lossy(&output.stdout);
            ensure!(
                version.starts_with("Python 3."),
                "`{name} --version` says {:?}; the interop steps need Python 3 with venv and \
                 pip (install it, e.g. `apt-get install python3 python3-venv`)",
                version.trim()
            );
            Ok(PathBuf::from(name))
        }
        _ => bail!(
            "`{name}` was not found: the interop steps need Python 3 with venv and pip to run \
             the Triton client and model_signing (CI has it; install it, e.g. \
             `apt-get install python3 python3-venv`)"
        ),
    }
}

/// The Python of an interop virtualenv in `dir` holding `requirements`, made or remade unless its
/// stamp matches the requirements and the Python that would make it.
fn virtualenv(
    system_python: &Path,
    dir: &Path,
    requirements: &Path,
    deps: Deps,
) -> Result<PathBuf> {
    let stamp_path = dir.join("tiffin-interop.stamp");
    let stamp = stamp(system_python, requirements)?;
    let python = venv_python_path(dir);
    if python.is_file() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        eprintln!(
            "    reusing the virtualenv {} (requirements unchanged)",
            dir.display()
        );
        return Ok(python);
    }

    let start = Instant::now();
    // A half-made or outdated virtualenv is removed, not patched: pip would keep packages the
    // new requirements no longer list.
    let python = fresh_venv(system_python, dir)?;
    let mut pip = pip_install(&python);
    if deps == Deps::Listed {
        pip.arg("--no-deps");
    }
    pip.arg("-r").arg(requirements);
    process::announce(&process::shown(&pip));
    process::run(&mut pip)
        .with_context(|| format!("cannot install {} from PyPI", requirements.display()))?;
    // The stamp is written last, so that an interrupted install is redone on the next run.
    std::fs::write(&stamp_path, &stamp)
        .with_context(|| format!("cannot write {}", stamp_path.display()))?;
    eprintln!(
        "    made the virtualenv in {}",
        process::human_duration(start.elapsed())
    );
    Ok(python)
}

/// The Python of the virtualenv at `dir`.
fn venv_python_path(dir: &Path) -> PathBuf {
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    }
}

/// A virtualenv made anew at `dir` (whatever was there is removed); returns its Python.
pub(crate) fn fresh_venv(system_python: &Path, dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let mut venv = Command::new(system_python);
    venv.args(["-m", "venv"]).arg(dir);
    process::announce(&process::shown(&venv));
    process::run(&mut venv).context(
        "cannot make a virtualenv (on Debian and Ubuntu, `apt-get install python3-venv`)",
    )?;
    Ok(venv_python_path(dir))
}

/// `python -m pip install`, quietly, for the caller to add what to install.
pub(crate) fn pip_install(python: &Path) -> Command {
    let mut pip = Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    pip
}

/// What the virtualenv was made from: the sha256 of the requirements and the Python version, so
/// that a new pin or a Python upgrade (which breaks a virtualenv's links) remakes it. Python's
/// hashlib computes the digest, which spares xtask a hashing dependency.
fn stamp(system_python: &Path, requirements: &Path) -> Result<String> {
    let mut command = Command::new(system_python);
    command
        .args([
            "-c",
            "import hashlib, sys; \
             print('sha256', hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest()); \
             print('python', sys.version.split()[0])",
        ])
        .arg(requirements);
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", system_python.display()))?;
    ensure!(
        output.status.success(),
        "cannot hash {}: {}",
        requirements.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout).context("Python printed a stamp that is not UTF-8")
}

/// Runs a command with its output captured, showing the output only when it fails.
pub(crate) fn run_quietly(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", process::shown(command)))?;
    ensure!(
        output.status.success(),
        "`{}` failed ({}):\n{}{}",
        process::shown(command),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A folder in the system's temporary folder, removed with everything in it when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        process::fresh_dir(prefix).map(Self)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Nothing can be done about a failure here; the folder is only litter in the temp folder.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_and_its_pins_exist() {
        let root = process::workspace_root();
        assert!(root.join(SCRIPT).is_file());
        let requirements = std::fs::read_to_string(root.join(REQUIREMENTS)).unwrap();
        // Every requirement is pinned exactly, so that every run installs the same client.
        for line in requirements.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                assert!(line.contains("=="), "{line} is not pinned");
            }
        }
        for fixture in FIXTURES {
            assert!(
                root.join("fixtures")
                    .join(fixture)
                    .join("tiffin.toml")
                    .is_file()
            );
        }
    }
}
