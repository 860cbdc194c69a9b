//! `tiffin pull`: a package from an OCI registry into the local store, verified on arrival.

use indicatif::HumanBytes;
use tiffin_core::{PublicKey, Verifier, VerifyOptions, hash::Algorithms};
use tiffin_store::Store;
use tiffin_store::oci::{self, Reference};

use crate::Outcome;
use crate::args::PullArgs;

pub(crate) fn run(args: &PullArgs) -> anyhow::Result<Outcome> {
    let reference: Reference = args.reference.parse()?;
    let options = super::push::client_options(&args.registry, &reference)?;
    let verify = VerifyOptions {
        // The store checks each file's sha256 against its blob's name, which the download
        // hashed: verify needs only blake3.
        algorithms: Algorithms::BLAKE3,
        run_model: !args.no_run,
        ..VerifyOptions::default()
    };
    let signer = match args.key.as_deref().and_then(|k| k.to_str()) {
        // TIFFIN_PULL_KEY may hold the key itself: a storage-initializer container can take it
        // from a ConfigMap through the environment, and cannot mount a file.
        Some(text) if text.trim_start().starts_with("-----BEGIN") => Some(Verifier::from(
            PublicKey::from_pem(text.as_bytes())
                .map_err(|e| anyhow::anyhow!("the key in TIFFIN_PULL_KEY: {e}"))?,
        )),
        _ => Verifier::from_pem_files(args.key.as_deref(), args.root.as_deref())?,
    };
    if let Some(dir) = args.into.as_ref().or(args.dest.as_ref()) {
        let pulled = oci::pull_into(&reference, dir, &options, &verify, signer.as_ref())?;
        if args.json {
            super::print_json(&pulled)?;
        } else {
            let entry = &pulled.pull.stored.entry;
            let what = if pulled.new {
                "pulled"
            } else {
                "already there"
            };
            outln!("{what} {} {}", entry.name, entry.version);
            outln!("  folder   {}", pulled.folder.display());
            outln!("  digest   {}", entry.digest);
            if signer.is_some() {
                outln!("  signed   signature valid; every file matches the signed digests");
            }
        }
        return Ok(Outcome::Success);
    }
    let store = Store::open_default()?;
    let report = oci::pull(&reference, &store, &options, &verify, signer.as_ref())?;
    if args.json {
        super::print_json(&report)?;
    } else {
        super::store::print_stored("pulled", &report.stored);
        outln!("  manifest {}", report.manifest_digest);
        if signer.is_some() {
            outln!("  signed   signature valid; every file matches the signed digests");
        }
        outln!(
            "  blobs    {} fetched ({}), {} already in the store",
            report.fetched,
            HumanBytes(report.bytes_fetched),
            report.reused
        );
    }
    Ok(Outcome::Success)
}
