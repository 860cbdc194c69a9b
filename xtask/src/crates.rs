//! `cargo xtask crates` (and the `crates` step of `cargo xtask ci`): the crates a library
//! consumer picks stay as light as ARCHITECTURE.md says, and their examples run.
//!
//! - Dependency lists (`cargo tree`, normal and build dependencies): verifying packages and
//!   their signatures (`tiffin-core` without its `run` feature) builds no tract, no HTTP client
//!   and no TLS; `tiffin-sign` stands on `tiffin-hash` alone among tiffin's crates;
//!   `tiffin-store` has the HTTP client but no tract. The counts are printed.
//! - The verify-only build compiles without a warning (`cargo clippy --no-default-features`).
//! - Every crate is ready to publish: `cargo publish --dry-run` packages each in the order of the
//!   arrows, without a warning.
//! - The examples run: `verify_signature` (built without `run`) accepts a package signed with
//!   the fixture key and refuses another key; `predict` answers; `embed` serves tiffin's routes
//!   beside its own. (`pull_into` of tiffin-store runs in the `registry` step, which has a
//!   registry.)

use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};

use crate::{process, test_build};

/// A build a consumer picks, and what it must not pull in.
struct Light {
    /// The package and the flags choosing its features.
    args: &'static [&'static str],
    /// Shown in the report.
    what: &'static str,
    /// Crate names (or prefixes ending in `-`) that must not be among its dependencies.
    forbidden: &'static [&'static str],
    /// When set, the only tiffin crates allowed in its tree.
    tiffin_crates: Option<&'static [&'static str]>,
}

/// Tract, ONNX Runtime, the HTTP client and TLS, the async stack: what a verifier does not need.
const HEAVY: &[&str] = &[
    "tract-", "ort", "ort-sys", "ureq", "rustls", "ring", "tokio", "axum", "hyper",
];

const LIGHT: &[Light] = &[
    Light {
        args: &["-p", "tiffin-core", "--no-default-features"],
        what: "verify packages and signatures (tiffin-core without `run`)",
        forbidden: HEAVY,
        tiffin_crates: Some(&[
            "tiffin-core",
            "tiffin-sign",
            "tiffin-hash",
            "tiffin-manifest",
        ]),
    },
    Light {
        args: &["-p", "tiffin-sign"],
        what: "model_signing bundles, keys and certificates (tiffin-sign)",
        forbidden: HEAVY,
        tiffin_crates: Some(&["tiffin-sign", "tiffin-hash"]),
    },
    Light {
        args: &["-p", "tiffin-store"],
        what: "the local store and the OCI client (tiffin-store)",
        forbidden: &["tract-", "ort", "ort-sys", "tokio", "axum", "hyper"],
        tiffin_crates: Some(&[
            "tiffin-store",
            "tiffin-core",
            "tiffin-sign",
            "tiffin-hash",
            "tiffin-manifest",
        ]),
    },
    Light {
        args: &["-p", "tiffin-manifest"],
        what: "the format (tiffin-manifest)",
        forbidden: HEAVY,
        tiffin_crates: Some(&["tiffin-manifest"]),
    },
];

pub(crate) fn run() -> Result<()> {
    for light in LIGHT {
        let crates = dependencies(light.args)?;
        for name in &crates {
            if let Some(bad) = light.forbidden.iter().find(|f| {
                if f.ends_with('-') {
                    name.starts_with(*f)
                } else {
                    name == *f
                }
            }) {
                bail!(
                    "{}: `cargo tree {}` holds `{name}` (matched `{bad}`), which this build must \
                     not pull in",
                    light.what,
                    light.args.join(" ")
                );
            }
            if let Some(allowed) = light.tiffin_crates
                && name.starts_with("tiffin-")
                && !allowed.contains(&name.as_str())
            {
                bail!(
                    "{}: `cargo tree {}` holds `{name}`; its tiffin crates may only be {}",
                    light.what,
                    light.args.join(" "),
                    allowed.join(", ")
                );
            }
        }
        eprintln!("    {}: {} crates", light.what, crates.len());
    }
    for (what, args) in [
        (
            "tiffin-core with `run` (load and predict)",
            &["-p", "tiffin-core"][..],
        ),
        ("the whole CLI (tiffin-cli)", &["-p", "tiffin-cli"][..]),
    ] {
        eprintln!(
            "    for comparison, {what}: {} crates",
            dependencies(args)?.len()
        );
    }

    let mut clippy = process::cargo();
    clippy.args([
        "clippy",
        "--locked",
        "-p",
        "tiffin-core",
        "-p",
        "tiffin-sign",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    process::announce(&process::shown(&clippy));
    process::run(&mut clippy)?;

    publish_dry_run()?;
    examples()
}

/// The library crates in the order their dependencies need them published, the CLI last.
const PUBLISH_ORDER: &[&str] = &[
    "tiffin-hash",
    "tiffin-manifest",
    "tiffin-runtime",
    "tiffin-sign",
    "tiffin-core",
    "tiffin-doctor",
    "tiffin-server",
    "tiffin-store",
    "tiffin-cli",
];

/// `cargo publish --dry-run` of the whole workspace but the xtask: cargo packages each crate
/// against the packages of the ones below it (the arrows' order), checking metadata, files and
/// dependency versions. `--no-verify` leaves out the build of each package, which the other
/// steps make; a warning (a missing description, licence or readme) fails the step.
fn publish_dry_run() -> Result<()> {
    let mut publish = process::cargo();
    publish.args([
        "publish",
        "--dry-run",
        "--workspace",
        "--exclude",
        "xtask",
        "--exclude",
        "tiffin-fuzz",
        "--exclude",
        "tiffin-testkit",
        "--no-verify",
        "--allow-dirty",
        "--locked",
    ]);
    process::announce(&process::shown(&publish));
    let output = publish
        .output()
        .with_context(|| format!("cannot run `{}`", process::shown(&publish)))?;
    let log = text(&output);
    ensure!(
        output.status.success(),
        "`{}` failed: {log}",
        process::shown(&publish)
    );
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("warning:") && !l.contains("aborting upload due to dry run"))
        .collect();
    ensure!(
        warnings.is_empty(),
        "publishing would warn: {}",
        warnings.join("; ")
    );
    let uploaded: Vec<&str> = log
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Uploading "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    ensure!(
        uploaded == PUBLISH_ORDER,
        "cargo would publish {uploaded:?}, not {PUBLISH_ORDER:?}"
    );
    eprintln!("    publish --dry-run: {}", uploaded.join(", "));
    Ok(())
}

/// The distinct crates of a build's dependency tree (normal and build dependencies, the root
/// included), by name.
fn dependencies(args: &[&str]) -> Result<Vec<String>> {
    let mut tree = process::cargo();
    tree.args(["tree", "--locked", "-e", "normal,build", "--prefix", "none"])
        .args(args);
    let output = tree
        .output()
        .with_context(|| format!("cannot run `{}`", process::shown(&tree)))?;
    ensure!(
        output.status.success(),
        "`{}` failed: {}",
        process::shown(&tree),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(crate_names(&String::from_utf8_lossy(&output.stdout)))
}

/// The crate names of `cargo tree --prefix none` lines (`name vX.Y.Z (path) (*)`), once each.
fn crate_names(tree: &str) -> Vec<String> {
    let mut names: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Runs the examples of tiffin-core and tiffin-server on a package packed and signed here.
fn examples() -> Result<()> {
    let root = process::workspace_root();
    let work = process::fresh_dir("tiffin-examples")?;
    let tiffin = test_build::tiffin()?;
    let out = work.join("packages");
    let pack = Command::new(&tiffin)
        .args(["-q", "pack"])
        .arg(root.join("fixtures/iris"))
        .arg("--out")
        .arg(&out)
        .output()?;
    check(&pack, "tiffin pack fixtures/iris")?;
    let package = out.join("iris-1.0.0.tiffin");
    let keys = root.join("fixtures/keys");
    let sign = Command::new(&tiffin)
        .args(["-q", "sign"])
        .arg(&package)
        .arg("--key")
        .arg(keys.join("signer.pem"))
        .output()?;
    check(&sign, "tiffin sign")?;

    // Built here without `run`: the proof that a verifier needs nothing heavier.
    let verify = |key: &str| -> Result<Output> {
        let mut command = process::cargo();
        command
            .args([
                "run",
                "--locked",
                "-q",
                "-p",
                "tiffin-core",
                "--no-default-features",
                "--example",
                "verify_signature",
                "--",
            ])
            .arg(&package)
            .arg(keys.join(key));
        process::announce(&process::shown(&command));
        Ok(command.output()?)
    };
    let signed = verify("signer.pub.pem")?;
    check(&signed, "example verify_signature with the signer's key")?;
    expect(&signed, "intact", "verify_signature with the signer's key")?;
    let other = verify("other.pub.pem")?;
    ensure!(
        other.status.code() == Some(1),
        "example verify_signature accepted a package signed by another key: {}",
        text(&other)
    );
    expect(
        &other,
        "signed by another key",
        "verify_signature with another key",
    )?;

    let predict = Command::new(test_build::example("tiffin-core", "predict")?)
        .arg(&package)
        .arg(r#"{"X": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}"#)
        .output()?;
    check(&predict, "example predict")?;
    expect(
        &predict,
        r#""label":["setosa","virginica"]"#,
        "example predict",
    )?;

    let embed = Command::new(test_build::example("tiffin-server", "embed")?)
        .arg(&package)
        .output()?;
    check(&embed, "example embed")?;
    expect(&embed, "GET /hello -> 200 OK", "example embed")?;
    expect(&embed, r#""name":"iris""#, "example embed")?;
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn check(output: &Output, what: &str) -> Result<()> {
    ensure!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        text(output)
    );
    Ok(())
}

fn expect(output: &Output, needle: &str, what: &str) -> Result<()> {
    let all = text(output);
    ensure!(all.contains(needle), "{what} printed no `{needle}`: {all}");
    eprintln!("    {what}: ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_are_read_once_each() {
        let tree = "tiffin-core v0.1.0 (/src/crates/tiffin-core)\nserde v1.0.229\nserde_derive v1.0.229 (proc-macro)\nserde v1.0.229 (*)\n";
        assert_eq!(crate_names(tree), ["serde", "serde_derive", "tiffin-core"]);
    }
}
