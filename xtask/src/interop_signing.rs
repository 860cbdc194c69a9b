//! `cargo xtask interop-signing` (and the `interop-signing` step of `cargo xtask ci`): `tiffin
//! sign` and `tiffin verify --key` against OpenSSF `model_signing`, the reference implementation
//! of the format, both ways.
//!
//! In a temporary folder it makes two ECDSA P-256 keys with Python's `cryptography` (which
//! model_signing installs), packs a fixture, and checks that
//! - `model_signing verify key` accepts what `tiffin sign` wrote, in the folder and in the archive
//!   (extracted), and rejects it with the other key;
//! - `tiffin verify --key --signature` accepts what `model_signing sign key` wrote outside the
//!   folder, for the folder and for the archive;
//! - a tampered copy fails in both tools, each naming the file;
//! - in certificate mode, with a local CA made for the run, each tool accepts the other's bundle
//!   against the root, and tiffin refuses it against another root.
//!
//! model_signing runs in a virtualenv (`interop-signing-venv` in the target folder) holding the
//! pinned `requirements.txt` beside the Rust tests of tiffin-core, made once and reused while its
//! stamp matches, as for `cargo xtask interop`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::interop::{TempDir, Tools, run_quietly, tools};
use crate::process;

const REQUIREMENTS: &str = "crates/tiffin-core/tests/interop/requirements.txt";

/// The fixture signed: several files, one in a subfolder (the golden examples).
const FIXTURE: &str = "churn_model";

/// Writes `k.pem` (PKCS#8) and `pub.pem` (SPKI), and `other.pem` and `other.pub.pem`, in the
/// folder given as the first argument; the form model_signing's docs make with openssl.
const MAKE_KEYS: &str = r#"
import pathlib, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
out = pathlib.Path(sys.argv[1])
for name in ("k", "other"):
    key = ec.generate_private_key(ec.SECP256R1())
    (out / f"{name}.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (out / ("pub.pem" if name == "k" else "other.pub.pem")).write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;

/// Writes a local CA `root.pem` and a code-signing certificate `cert.pem` for `k.pem`, in the
/// folder given as the first argument (certificate mode, offline).
const MAKE_CERTIFICATES: &str = r#"
import datetime, pathlib, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
out = pathlib.Path(sys.argv[1])
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def usage(**flags):
    names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})
def certificate(subject, issuer, key, issuer_key, ca):
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
    else:
        builder = (builder.add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())
root_key = ec.generate_private_key(ec.SECP256R1())
root = certificate("tiffin interop root", "tiffin interop root", root_key, root_key, True)
signer = serialization.load_pem_private_key((out / "k.pem").read_bytes(), None)
leaf = certificate("tiffin interop signer", "tiffin interop root", signer, root_key, False)
(out / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
(out / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
"#;

/// Extracts the archive given first into the folder given second.
const EXTRACT: &str = r#"
import sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    archive.extractall(sys.argv[2], filter="data")
"#;

/// Runs the whole interop test, failing with what went wrong.
pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    let root = process::workspace_root();
    let Tools { tiffin, python } = tools("interop-signing-venv", REQUIREMENTS)?;
    let model_signing = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut command = Command::new(&python);
        command.args(["-m", "model_signing"]);
        for arg in args {
            command.arg(arg);
        }
        command
    };
    let tiffin_cmd = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut command = Command::new(&tiffin);
        command.arg("-q");
        for arg in args {
            command.arg(arg);
        }
        command
    };

    let temp = TempDir::new("tiffin-interop-signing")?;
    let dir = temp.path();
    let mut keys = Command::new(&python);
    keys.args(["-c", MAKE_KEYS]).arg(dir);
    run_quietly(&mut keys).context("cannot make the test keys with Python's cryptography")?;
    let (key, public, other) = (
        dir.join("k.pem"),
        dir.join("pub.pem"),
        dir.join("other.pub.pem"),
    );

    let packages = dir.join("packages");
    step(&mut tiffin_cmd(&[
        &"pack",
        &root.join("fixtures").join(FIXTURE),
        &"--out",
        &packages,
    ]))?;
    let folder = packages.join(FIXTURE).join("1.0.0");
    let archive = packages.join(format!("{FIXTURE}-1.0.0.tiffin"));
    ensure!(
        folder.is_dir() && archive.is_file(),
        "pack did not write {} and {} (did the fixture's version change?)",
        folder.display(),
        archive.display()
    );

    // tiffin signs, model_signing verifies.
    let bundle = folder.join("tiffin.sigstore.json");
    step(&mut tiffin_cmd(&[&"sign", &folder, &"--key", &key]))?;
    step(&mut tiffin_cmd(&[&"sign", &archive, &"--key", &key]))?;
    step(&mut model_signing(&[
        &"verify",
        &"key",
        &folder,
        &"--signature",
        &bundle,
        &"--public_key",
        &public,
    ]))?;
    let extracted = dir.join("extracted");
    std::fs::create_dir_all(&extracted)?;
    let mut extract = Command::new(&python);
    extract.args(["-c", EXTRACT]).arg(&archive).arg(&extracted);
    run_quietly(&mut extract).context("cannot extract the signed archive")?;
    step(&mut model_signing(&[
        &"verify",
        &"key",
        &extracted,
        &"--signature",
        &extracted.join("tiffin.sigstore.json"),
        &"--public_key",
        &public,
    ]))?;
    expect_failure(
        &mut model_signing(&[
            &"verify",
            &"key",
            &folder,
            &"--signature",
            &bundle,
            &"--public_key",
            &other,
        ]),
        "Key mismatch",
    )?;

    // model_signing signs outside the folder, tiffin verifies.
    let detached = dir.join("signatures").join("model.sig");
    std::fs::create_dir_all(dir.join("signatures"))?;
    step(&mut model_signing(&[
        &"sign",
        &"key",
        &folder,
        &"--private_key",
        &key,
        &"--signature",
        &detached,
    ]))?;
    for package in [&folder, &archive] {
        step(&mut tiffin_cmd(&[
            &"verify",
            package,
            &"--key",
            &public,
            &"--signature",
            &detached,
        ]))?;
    }
    expect_failure(
        &mut tiffin_cmd(&[
            &"verify",
            &folder,
            &"--key",
            &other,
            &"--signature",
            &detached,
        ]),
        "was signed by another key",
    )?;

    // A tampered copy fails in both tools, each naming the file.
    let tampered = dir.join("tampered");
    copy_tree(&folder, &tampered)?;
    let model = tampered.join("model.onnx");
    let mut bytes = std::fs::read(&model)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&model, bytes)?;
    expect_failure(
        &mut model_signing(&[
            &"verify",
            &"key",
            &tampered,
            &"--signature",
            &tampered.join("tiffin.sigstore.json"),
            &"--public_key",
            &public,
        ]),
        "Hash mismatch for 'model.onnx'",
    )?;
    expect_failure(
        &mut tiffin_cmd(&[&"verify", &tampered, &"--key", &public]),
        "model.onnx: content differs",
    )?;
    expect_failure(
        &mut tiffin_cmd(&[
            &"verify",
            &tampered,
            &"--key",
            &public,
            &"--signature",
            &detached,
        ]),
        "model.onnx: content differs",
    )?;

    // Certificate mode, with a local CA: each tool checks the other's bundle against the root.
    let mut certificates = Command::new(&python);
    certificates.args(["-c", MAKE_CERTIFICATES]).arg(dir);
    run_quietly(&mut certificates)
        .context("cannot make the test certificates with Python's cryptography")?;
    let (cert, root_cert) = (dir.join("cert.pem"), dir.join("root.pem"));
    let certified = dir.join("certified");
    copy_tree(&folder, &certified)?;
    step(&mut tiffin_cmd(&[
        &"sign", &certified, &"--key", &key, &"--cert", &cert,
    ]))?;
    step(&mut model_signing(&[
        &"verify",
        &"certificate",
        &certified,
        &"--signature",
        &certified.join("tiffin.sigstore.json"),
        &"--certificate_chain",
        &root_cert,
    ]))?;
    let detached_cert = dir.join("signatures").join("cert.sig");
    step(&mut model_signing(&[
        &"sign",
        &"certificate",
        &certified,
        &"--private_key",
        &key,
        &"--signing_certificate",
        &cert,
        &"--certificate_chain",
        &root_cert,
        &"--signature",
        &detached_cert,
    ]))?;
    step(&mut tiffin_cmd(&[
        &"verify",
        &certified,
        &"--root",
        &root_cert,
        &"--signature",
        &detached_cert,
    ]))?;
    expect_failure(
        &mut tiffin_cmd(&[
            &"verify",
            &certified,
            &"--root",
            &root.join("fixtures").join("keys").join("root.pem"),
            &"--signature",
            &detached_cert,
        ]),
        "does not lead to a root given",
    )?;

    eprintln!(
        "    interop-signing passed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// Runs one command that must succeed, showing it first.
fn step(command: &mut Command) -> Result<()> {
    process::announce(&process::shown(command));
    run_quietly(command)
}

/// Runs a command that must fail, and say `expected` in its output.
fn expect_failure(command: &mut Command, expected: &str) -> Result<()> {
    let shown = process::shown(command);
    process::announce(&format!("{shown}  (must fail: {expected})"));
    let output = command
        .output()
        .with_context(|| format!("cannot run `{shown}`"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        !output.status.success(),
        "`{shown}` succeeded, but must fail:\n{text}"
    );
    ensure!(
        text.contains(expected),
        "`{shown}` failed, but without saying `{expected}`:\n{text}"
    );
    Ok(())
}

/// Copies a package folder (flat, or one level of subfolders) to `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_and_the_fixture_exist() {
        let root = process::workspace_root();
        let requirements = std::fs::read_to_string(root.join(REQUIREMENTS)).unwrap();
        assert!(requirements.contains("model-signing==1.1.1"));
        for line in requirements.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                assert!(line.contains("=="), "{line} is not pinned");
            }
        }
        assert!(
            root.join("fixtures")
                .join(FIXTURE)
                .join("tiffin.toml")
                .is_file()
        );
    }
}
