//! `tiffin pull`: a package from an OCI registry into the local store, verified on arrival.

use indicatif::HumanBytes;
use tiffin_core::oci::{self, Reference};
use tiffin_core::store::Store;
use tiffin_core::{VerifyOptions, hash::Algorithms};

use crate::Outcome;
use crate::args::PullArgs;

pub(crate) fn run(args: &PullArgs) -> anyhow::Result<Outcome> {
    let reference: Reference = args.reference.parse()?;
    let options = super::push::client_options(&args.registry, &reference)?;
    let store = Store::open_default()?;
    let verify = VerifyOptions {
        algorithms: Algorithms::BOTH,
        run_model: !args.no_run,
    };
    let report = oci::pull(&reference, &store, &options, &verify)?;
    if args.json {
        super::print_json(&report)?;
    } else {
        super::store::print_stored("pulled", &report.stored);
        println!("  manifest {}", report.manifest_digest);
        println!(
            "  blobs    {} fetched ({}), {} already in the store",
            report.fetched,
            HumanBytes(report.bytes_fetched),
            report.reused
        );
    }
    Ok(Outcome::Success)
}
