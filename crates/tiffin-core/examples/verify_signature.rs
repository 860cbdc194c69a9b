//! Verifies a package and its signature from Rust, as an admission check would: every file
//! against the manifest's digests, then the `model_signing` bundle with the signer's public key,
//! then every file against the signed list. Needs only tiffin-core without its `run` feature
//! (no tract, no HTTP client):
//!
//! ```text
//! cargo run -p tiffin-core --no-default-features --example verify_signature -- PKG PUB.pem
//! ```
//!
//! Exits 0 when the package is intact and signed by that key, 1 (listing every problem) when not.

use std::path::PathBuf;
use std::process::ExitCode;

use tiffin_core::hash::{Algorithms, NoProgress};
use tiffin_core::{PublicKey, SignatureOptions, Verifier, VerifyOptions, verify_signature};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(package), Some(key)) = (args.next(), args.next()) else {
        eprintln!("usage: verify_signature PACKAGE PUBLIC_KEY.pem");
        return ExitCode::from(2);
    };
    let key = match PublicKey::from_pem_file(&key) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = SignatureOptions {
        bundle: None,
        // Digests only: sha256 as well as blake3, since the signature signs sha256 digests.
        verify: VerifyOptions::digests(Algorithms::BOTH),
    };
    let report = match verify_signature(&package, &Verifier::Key(key), &options, &NoProgress) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let files = report.package.as_ref().map_or(0, |p| p.files_checked);
    if report.is_ok() {
        println!(
            "{}: signed by {} and intact ({} files signed, {files} checked)",
            package.display(),
            report.key_hint,
            report.signed_files,
        );
        return ExitCode::SUCCESS;
    }
    println!("{}: refused", package.display());
    let problems = report.package.iter().flat_map(|p| &p.problems);
    for problem in report.problems.iter().chain(problems) {
        println!("  {problem}");
    }
    ExitCode::FAILURE
}
