//! Pulls a package from an OCI registry into a folder, as KServe's storage initializer does:
//! blobs are checked against their digests as they arrive, the package is verified whole, and
//! only then does `DIR/NAME/VERSION/` appear.
//!
//! ```text
//! cargo run -p tiffin-store --example pull_into -- localhost:5000/models/churn:1.0.0 models/
//! ```
//!
//! Credentials come from `TIFFIN_REGISTRY_USERNAME` and `TIFFIN_REGISTRY_PASSWORD`, else from
//! the Docker config file, else none.

use std::path::PathBuf;
use std::process::ExitCode;

use tiffin_core::VerifyOptions;
use tiffin_core::hash::Algorithms;
use tiffin_store::oci::{self, ClientOptions, Credentials, Reference};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(reference), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: pull_into REFERENCE DIR");
        return ExitCode::from(2);
    };
    match pull(&reference, &PathBuf::from(dir)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pull(reference: &str, dir: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let reference: Reference = reference.parse()?;
    let options = ClientOptions {
        insecure: false,
        credentials: Credentials::lookup(&reference.registry)?,
    };
    // Digests are checked as the blobs arrive; the whole package is verified before it is
    // renamed into place (the model is not run: this crate has no runtime).
    let verify = VerifyOptions::digests(Algorithms::BLAKE3);
    let pulled = oci::pull_into(&reference, dir, &options, &verify, None)?;
    Ok(format!(
        "{} {} in {}",
        if pulled.new { "pulled" } else { "already had" },
        reference,
        pulled.folder.display()
    ))
}
