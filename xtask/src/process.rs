//! Running cargo and other programs from the workspace root, and showing what runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

/// The variable that tells cargo whether to colour its output.
pub(crate) const COLOR_VAR: &str = "CARGO_TERM_COLOR";

/// The workspace root: the parent of this crate's folder.
///
/// It is taken from the compile-time manifest path, so every task works the same from any
/// current directory.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a folder of the workspace root")
}

/// A cargo command that runs in the workspace root.
///
/// It runs the cargo that runs us (cargo sets `CARGO`), so that `cargo +nightly xtask ci` checks
/// with nightly throughout instead of mixing toolchains.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(workspace_root());
    // `cargo xtask` runs this program with the variables cargo sets for a package being run
    // (`CARGO_PKG_NAME=xtask`, ...). Build scripts that read them (ring's does) ask cargo to
    // rebuild when they change, so passing them on rebuilt ring and everything over it on
    // every switch between `cargo build` and `cargo xtask`: the cargo we start gets the
    // environment a shell would give it.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if is_run_package_variable(name) {
            command.env_remove(name);
        }
    }
    command
}

/// Whether `name` is one of the variables `cargo run` sets for the package it runs.
fn is_run_package_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
        )
}

/// The cargo target folder, as cargo itself reports it, so that `CARGO_TARGET_DIR` and
/// `build.target-dir` are honoured.
pub(crate) fn target_dir() -> Result<PathBuf> {
    let mut command = cargo();
    command.args(["metadata", "--format-version", "1", "--no-deps"]);
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", shown(&command)))?;
    ensure!(
        output.status.success(),
        "`{}` failed ({}): {}",
        shown(&command),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Prints the line that introduces a step, on stderr so that it interleaves with cargo's own.
pub(crate) fn announce(what: &str) {
    eprintln!("==> {what}");
}

/// Runs a command with inherited output and fails, naming the command, unless it succeeds.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run `{}`", shown(command)))?;
    ensure!(status.success(), "`{}` failed ({status})", shown(command));
    Ok(())
}

/// A command as a person would type it: the variables it sets, the program's file name (not the
/// full path of the toolchain's cargo) and the arguments, quoted where a shell needs it.
pub(crate) fn shown(command: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in command.get_envs() {
        // A variable the command removes has no value; the line shows only what is added. The
        // colour choice is presentation, not part of what the command checks, so it is left out.
        if let Some(value) = value
            && key != COLOR_VAR
        {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    let program = Path::new(command.get_program());
    let name = program.file_name().unwrap_or(program.as_os_str());
    words.push(quote(&name.to_string_lossy()));
    words.extend(
        command
            .get_args()
            .map(OsStr::to_string_lossy)
            .map(|a| quote(&a)),
    );
    words.join(" ")
}

/// Quotes a word for a POSIX shell when it holds anything but plain characters.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A duration as people read it: `4.2s`, or `3m 07.5s` past a minute.
pub(crate) fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let minutes = (seconds / 60.0).floor();
        format!("{minutes}m {:04.1}s", seconds - minutes * 60.0)
    }
}

/// Where `program` is in a folder of `PATH`, if it is.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Installs Debian `packages` with apt-get; `apt-get update` and a second try only when a plain
/// install fails (a fresh machine's package lists may be missing or old). `why` says what needs
/// them, for the error.
pub(crate) fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    let install = || {
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive");
        announce(&shown(&apt));
        run(&mut apt)
    };
    if install().is_err() {
        let mut update = Command::new("apt-get");
        update.arg("update");
        announce(&shown(&update));
        run(&mut update).with_context(|| format!("apt-get update ({why}; run as root)"))?;
        install().with_context(|| format!("cannot install {}: {why}", packages.join(" ")))?;
    }
    Ok(())
}

/// Installs the Debian packages of `programs` (pairs of package and program) whose program is
/// not on `PATH`; `why` says what needs them, for the error.
pub(crate) fn install_missing(programs: &[(&str, &str)], why: &str) -> Result<()> {
    let missing: Vec<&str> = programs
        .iter()
        .filter(|(_, program)| which(program).is_none())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing, why)
}

/// An empty folder `PREFIX-PID` in the system's temporary folder. The process id keeps two runs
/// at once apart; a leftover of a killed run is replaced.
pub(crate) fn fresh_dir(prefix: &str) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    if path.exists() {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot remove {}", path.display()))?;
    }
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_is_started_without_the_variables_of_the_package_being_run() {
        assert!(is_run_package_variable("CARGO_PKG_NAME"));
        assert!(is_run_package_variable("CARGO_MANIFEST_DIR"));
        assert!(is_run_package_variable("CARGO_CRATE_NAME"));
        assert!(!is_run_package_variable("CARGO"));
        assert!(!is_run_package_variable("CARGO_HOME"));
        assert!(!is_run_package_variable("CARGO_TARGET_DIR"));
        // `cargo test` runs this test with CARGO_PKG_NAME set, as `cargo xtask` runs xtask.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let command = cargo();
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_owned())
            .collect();
        assert!(removed.iter().any(|n| n == "CARGO_PKG_NAME"), "{removed:?}");
        assert!(!removed.iter().any(|n| n == "CARGO_HOME"), "{removed:?}");
    }

    #[test]
    fn shows_a_command_as_typed() {
        let mut command = Command::new("/home/me/.rustup/toolchains/stable/bin/cargo");
        command
            .args(["doc", "--workspace"])
            .env("RUSTDOCFLAGS", "-D warnings")
            .env(COLOR_VAR, "always")
            .env_remove("TIFFIN_UPDATE_SCHEMA");
        assert_eq!(
            shown(&command),
            "RUSTDOCFLAGS='-D warnings' cargo doc --workspace"
        );
    }

    #[test]
    fn quotes_only_what_a_shell_would_split() {
        assert_eq!(quote("--all-targets"), "--all-targets");
        assert_eq!(quote("out/pkg/1.0.0"), "out/pkg/1.0.0");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(human_duration(Duration::from_millis(4_240)), "4.2s");
        assert_eq!(human_duration(Duration::from_millis(187_500)), "3m 07.5s");
    }

    #[test]
    fn finds_the_workspace_root() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
